"""The official HeatFormer code's preprocessed databases (``*_db.pt``), read as sequences with ground truth.

kyotovision-public/HeatFormer keeps joblib dumps in data/preprocessed_data/ and the images in data/dataset/
(Human3.6M, MPI-INF-3DHP) or under the repository root (BEHAVE):

    h36m_*_db.pt     dict of per-image arrays: "img_name" (".../s_01_act_02_subact_01_ca_01_000001.jpg") and
                     "joints2D" (N, 49, 3): SPIN-49 pixels and confidence. Beside it, extra_data/ holds
                     Human36M_subject<S>_camera.json and Human36M_subject<S>_joint_3d.json (world joints, mm).
    mpii3d_*_db.pt   the same arrays, "img_name" ".../S1/Seq1/video_0/000001.jpg". Beside it, j3d_mpi_db.pt maps
                     ("1", "1", "0", str(frame - 1)) to SPIN-49 joints in that camera's frame (metres); the
                     cameras are the dataset's S1/Seq1/camera.calibration next to the video_<k> image folders.
    BEHAVE_*_db.pt   list of dicts: "img_name" (a frame folder holding k0.color.jpg, k1.color.jpg, ...), "K", "R",
                     "t" (per view, metres) and "w_3d_openpose" (25, 4): world BODY_25 joints and their score.

Images of one moment from several cameras become one `MultiviewSample` whose ground truth is H36M-17 joints in
world coordinates. Human3.6M's joint_3d.json is in Human3.6M's own joint order, which is `H36M17`'s; the official
code swaps its legs only to match VIBE's joint names, which are not used here.

Evidence: the database's 2D keypoints ("joints2D"); BEHAVE's database has none, so its evidence is the projection
of its 3D OpenPose joints unless a 2D detector is given. joblib files are pickles: they are read
with core.safe_pickle, which refuses any callable but the numpy classes such files hold.
"""
from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

import numpy as np

from core.calibration import load_calibration
from core.calibration.common import build_camera
from core.cameras import Camera, project_points
from core.dataset_io import read_image
from core.detector import DetectorConfig, TrackingDetector
from core.errors import InputError, reading
from core.files import read_json
from core.joints import BODY25, H36M17, convert_keypoints
from core.safe_pickle import load_joblib
from core.sample import GroundTruth, MultiviewSample

if TYPE_CHECKING:
    from core.sequence import MultiviewSequence

# For each H36M17 joint, its index in SPIN's 49 joints (the 24 ground-truth joints after OpenPose's 25) ...
SPIN49_TO_H36M17 = np.array([39, 27, 26, 25, 28, 29, 30, 41, 37, 43, 38, 34, 35, 36, 33, 32, 31])
# ... and in VIBE's 17-joint "h36m" order (the official code's), which lists the left leg first.
VIBE17_TO_H36M17 = np.array([0, 4, 5, 6, 1, 2, 3, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16])
BEHAVE_IMAGE_SIZE = (2048, 1536)  # Kinect colour frames (width, height), used when no image is found to measure
BEHAVE_MIN_SCORE = 0.3  # the official BEHAVE evaluation's default: joints scored lower are not ground truth
H36M_NAME = re.compile(r"s_(\d+)_act_(\d+)_subact_(\d+)_ca_(\d+)_(\d+)")


def is_heatformer_db(path: Path) -> bool:
    return path.is_file() and path.name.endswith("_db.pt")


class ImageFinder:
    """Finds the database's stored image paths on this disk. They carry the preprocessing machine's prefix, so the
    first candidate root under which some trailing part of a stored path exists is used from then on."""

    def __init__(self, roots: list[Path]):
        self.roots, self.found = roots, None

    def __call__(self, stored: str) -> Path | None:
        parts = PurePosixPath(str(stored).replace("\\", "/")).parts
        if self.found is not None:
            root, skip = self.found
            path = root.joinpath(*parts[skip:])
            return path if path.is_file() else None
        for root in self.roots:
            for skip in range(len(parts)):
                path = root.joinpath(*parts[skip:])
                if path.is_file():
                    self.found = (root, skip)
                    return path
        return None


def _default_roots(db_path: Path) -> list[Path]:
    here = db_path.resolve().parent
    return [here, here.parent / "dataset", here.parent, here.parent.parent]


def _frame(path: Path | None, camera: Camera) -> np.ndarray | None:
    """The image at ``path``, cropped to the calibrated size where it is a few rows or columns larger (Human3.6M's
    1000x1002 frames, cropped to 1000x1000 as the official code does); None when it is not on this disk."""
    if path is None:
        return None
    image = read_image(path)
    height, width = image.shape[:2]
    if 0 <= height - camera.height <= 8 and 0 <= width - camera.width <= 8:
        return image[: camera.height, : camera.width]
    raise InputError(path, f"image is {width}x{height} but camera {camera.name} is {camera.width}x{camera.height}")


def _keypoints(db: dict, path: Path) -> np.ndarray:
    """The database's "joints2D" in H36M-17 order."""
    joints2d = db.get("joints2D") if isinstance(db, dict) else None
    if joints2d is None:
        raise InputError(path, "no 'joints2D' array (expected the official HeatFormer/VIBE database layout)")
    try:
        joints2d = np.asarray(joints2d, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise InputError(path, f"'joints2D' is not numeric ({exc})") from exc
    if joints2d.ndim != 3 or joints2d.shape[1:] not in ((49, 3), (17, 3)) or len(joints2d) != len(db["img_name"]):
        raise InputError(path, f"'joints2D' has shape {joints2d.shape}; expected ({len(db['img_name'])}, 49 or 17, 3)")
    table = SPIN49_TO_H36M17 if joints2d.shape[1] == 49 else VIBE17_TO_H36M17
    out = joints2d[:, table]
    out[..., 2] = np.clip(out[..., 2], 0.0, 1.0)
    return out


def _image_names(db, path: Path) -> list[str]:
    if not isinstance(db, dict) or "img_name" not in db:
        raise InputError(path, "not a HeatFormer database: expected a dict with 'img_name' and 'joints2D'")
    return [str(n) for n in np.asarray(db["img_name"]).reshape(-1)]


class _Frames:
    """Groups a database's images into multiview moments: key -> {camera name: database index}."""

    def __init__(self):
        self.views: dict[tuple, dict[str, int]] = defaultdict(dict)

    def add(self, key: tuple, camera: str, index: int) -> None:
        self.views[key][camera] = index

    def multiview(self, path: Path) -> list[tuple]:
        keys = sorted(k for k, v in self.views.items() if len(v) >= 2)
        if not keys:
            raise InputError(path, "no moment is seen by two or more cameras")
        return keys


def _sequence(path: Path, keys: list[tuple], frame_name: Callable[[tuple], str],
              read: Callable[[int, tuple], MultiviewSample]) -> MultiviewSequence:
    from core.sequence import MultiviewSequence  # core.sequence opens these databases through this module

    def checked(f: int) -> MultiviewSample:
        with reading(path, f"database entry of frame {f}"):
            return read(f, keys[f])

    with reading(path, "database"):
        return MultiviewSequence(path.stem, path, [frame_name(k) for k in keys], checked)


def _detected(sample_kwargs: dict, tracker: TrackingDetector | None, frame: int) -> dict:
    """Replace the database's evidence by a detector's, where one is given and the images are on disk."""
    images = sample_kwargs["frames"]
    if tracker is None:
        return sample_kwargs
    if any(image is None for image in images):
        raise InputError(sample_kwargs["source"], "the 2D detector needs the images, which were not found")
    return {**sample_kwargs, "keypoints": tracker.detect_views(frame, images),
            "joint_set": tracker.detector.config.joint_set}


def _open_h36m(path: Path, db, finder: ImageFinder, tracker) -> MultiviewSequence:
    names, keypoints = _image_names(db, path), _keypoints(db, path)
    frames = _Frames()
    for index, name in enumerate(names):
        match = H36M_NAME.search(PurePosixPath(name).name)
        if match is None:
            raise InputError(path, f"img_name {name!r} is not a Human3.6M name (s_XX_act_XX_subact_XX_ca_XX_XXXXXX)")
        subject, action, subaction, camera, frame = (int(g) for g in match.groups())
        frames.add((subject, action, subaction, frame), str(camera), index)
    extra = path.parent / "extra_data"
    cameras, joints = {}, {}

    def subject_data(subject: int):
        if subject not in cameras:
            cameras[subject] = {c.name: c for c in
                                load_calibration(extra / f"Human36M_subject{subject}_camera.json", "h36m")}
            joints[subject] = (read_json(extra / f"Human36M_subject{subject}_joint_3d.json"),
                               extra / f"Human36M_subject{subject}_joint_3d.json")
        return cameras[subject], joints[subject]

    def read(f: int, key: tuple) -> MultiviewSample:
        subject, action, subaction, frame = key
        subject_cameras, (joint_table, joint_path) = subject_data(subject)
        views = sorted(frames.views[key], key=int)
        missing = [v for v in views if v not in subject_cameras]
        if missing:
            raise InputError(extra / f"Human36M_subject{subject}_camera.json", f"no camera {', '.join(missing)}")
        try:  # the official loader's indexing: frame numbers in image names start at 1, in the table at 0
            world = np.asarray(joint_table[str(action)][str(subaction)][str(frame - 1)], dtype=np.float64) / 1000.0
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(joint_path, f"no joints for action {action}, subaction {subaction}, frame {frame} "
                                         f"({exc})") from exc
        if world.shape != (len(H36M17), 3):
            raise InputError(joint_path, f"joints of frame {frame} have shape {world.shape}, expected (17, 3)")
        used = [subject_cameras[v] for v in views]
        indices = [frames.views[key][v] for v in views]
        sample = {"name": frame_name(key), "cameras": used, "frames": [_frame(finder(names[i]), c)
                                                                      for i, c in zip(indices, used)],
                  "keypoints": keypoints[indices], "joint_set": H36M17.name, "source": str(path), "frame": f,
                  "ground_truth": GroundTruth(joints3d=world, joint_set=H36M17.name)}
        return MultiviewSample(**_detected(sample, tracker, f))

    def frame_name(key: tuple) -> str:
        return "s_{:02d}_act_{:02d}_subact_{:02d}_{:06d}".format(*key)

    return _sequence(path, frames.multiview(path), frame_name, read)


def read_mpi_calibration(path: Path) -> dict[str, Camera]:
    """MPI-INF-3DHP's camera.calibration ("name", "size", "intrinsic" 4x4, "extrinsic" 4x4 with t in mm), by name."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(path, f"cannot read camera calibration ({exc})") from exc
    blocks, current = [], None
    for line in lines:
        key, _, value = line.strip().partition(" ")
        if key == "name":
            current = {"name": value.strip()}
            blocks.append(current)
        elif current is not None and key in ("size", "intrinsic", "extrinsic"):
            try:
                current[key] = np.array(value.split(), dtype=np.float64)
            except ValueError as exc:
                raise InputError(path, f"camera {current['name']}: {key} is not numbers") from exc
    cameras = {}
    for block in blocks:
        lacking = [k for k in ("size", "intrinsic", "extrinsic") if k not in block]
        if lacking or block["intrinsic"].size != 16 or block["extrinsic"].size != 16 or block["size"].size != 2:
            raise InputError(path, f"camera {block['name']}: needs size (2), intrinsic (16) and extrinsic (16)")
        K, Rt = block["intrinsic"].reshape(4, 4)[:3, :3], block["extrinsic"].reshape(4, 4)
        (width, height) = block["size"]
        cameras[block["name"]] = build_camera(path, block["name"], K, Rt[:3, :3], Rt[:3, 3] / 1000.0, width, height)
    if not cameras:
        raise InputError(path, "no camera found (expected 'name', 'size', 'intrinsic', 'extrinsic' lines)")
    return cameras


def _open_mpi(path: Path, db, finder: ImageFinder, tracker) -> MultiviewSequence:
    names, keypoints = _image_names(db, path), _keypoints(db, path)
    frames = _Frames()
    for index, name in enumerate(names):
        parts = PurePosixPath(name.replace("\\", "/")).with_suffix("").parts
        if len(parts) < 4 or not parts[-2].startswith("video_"):
            raise InputError(path, f"img_name {name!r} is not an MPI-INF-3DHP name (.../S1/Seq1/video_0/000001.jpg)")
        subject, sequence, video, frame = parts[-4:]
        frames.add((subject, sequence, int(frame)), video.removeprefix("video_"), index)
    j3d_path = path.parent / "j3d_mpi_db.pt"
    camera_joints = load_joblib(j3d_path)
    calibrations: dict[tuple, dict[str, Camera]] = {}

    def calibration(key: tuple, image: Path | None) -> dict[str, Camera]:
        if key[:2] not in calibrations:
            if image is None:
                raise InputError(path, f"{key[0]}/{key[1]}: the images and the camera.calibration beside them "
                                       "were not found (expected under data/dataset/images_mpii3d/)")
            calibrations[key[:2]] = read_mpi_calibration(image.parent.parent / "camera.calibration")
        return calibrations[key[:2]]

    def read(f: int, key: tuple) -> MultiviewSample:
        subject, sequence, frame = key
        views = sorted(frames.views[key], key=int)
        indices = [frames.views[key][v] for v in views]
        images = [finder(names[i]) for i in indices]
        cams = calibration(key, next((p for p in images if p is not None), None))
        missing = [v for v in views if v not in cams]
        if missing:
            raise InputError(path, f"{subject}/{sequence}/camera.calibration has no camera {', '.join(missing)}")
        used = [cams[v] for v in views]
        world = []
        for v, cam in zip(views, used):
            entry = (subject[-1], sequence[-1], v[-1], str(frame - 1))  # the official loader's keys
            if not isinstance(camera_joints, dict) or entry not in camera_joints:
                raise InputError(j3d_path, f"no joints for key {entry}")
            joints = np.asarray(camera_joints[entry], dtype=np.float64)
            if joints.shape[0] != 49 or joints.ndim != 2 or joints.shape[1] < 3:
                raise InputError(j3d_path, f"joints for {entry} have shape {joints.shape}, expected (49, 3)")
            world.append((joints[SPIN49_TO_H36M17, :3] - cam.t) @ cam.R)  # camera -> world: R^T (x - t)
        sample = {"name": frame_name(key), "cameras": used,
                  "frames": [_frame(p, c) for p, c in zip(images, used)],
                  "keypoints": keypoints[indices], "joint_set": H36M17.name, "source": str(path), "frame": f,
                  "ground_truth": GroundTruth(joints3d=np.mean(world, axis=0), joint_set=H36M17.name)}
        return MultiviewSample(**_detected(sample, tracker, f))

    def frame_name(key: tuple) -> str:
        return f"{key[0]}_{key[1]}_{key[2]:06d}"

    return _sequence(path, frames.multiview(path), frame_name, read)


def behave_ground_truth(body25: np.ndarray) -> np.ndarray:
    """(17, 3) H36M-17 world joints from BEHAVE's (25, 4) BODY_25 joints and scores. Joints BODY_25 lacks (nose
    between neck and head, head top) or scored below `BEHAVE_MIN_SCORE` are NaN; the spine is the midpoint of
    pelvis and thorax, as `core.body_model.h36m_regressor` defines it."""
    points = np.where(body25[:, 3:4] >= BEHAVE_MIN_SCORE, body25[:, :3], np.nan)
    padded = np.concatenate([points, np.ones((len(points), 1))], axis=1)
    converted = convert_keypoints(padded, BODY25, H36M17, synthesise=False)  # ground truth: only what it has
    joints = np.where(converted[:, 3:4] > 0, converted[:, :3], np.nan)
    joints[H36M17.index("spine")] = 0.5 * (joints[H36M17.index("pelvis")] + joints[H36M17.index("thorax")])
    return joints


def _open_behave(path: Path, db, finder: ImageFinder, tracker) -> MultiviewSequence:
    if not isinstance(db, list) or not db or not all(isinstance(e, dict) for e in db):
        raise InputError(path, "not a BEHAVE database: expected a non-empty list of dicts")
    required = ("img_name", "K", "R", "t", "w_3d_openpose")

    def read(f: int, index: int) -> MultiviewSample:
        entry = db[index]
        lacking = [k for k in required if k not in entry]
        if lacking:
            raise InputError(path, f"entry {index} lacks {', '.join(lacking)}")
        try:
            K, R, t = (np.asarray(entry[k], dtype=np.float64) for k in ("K", "R", "t"))
            body25 = np.asarray(entry["w_3d_openpose"], dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise InputError(path, f"entry {index}: K, R, t or w_3d_openpose is not numeric ({exc})") from exc
        if K.ndim != 3 or R.shape != K.shape or t.shape != (len(K), 3) or body25.shape != (25, 4):
            raise InputError(path, f"entry {index}: K {K.shape}, R {R.shape}, t {t.shape}, w_3d_openpose "
                                   f"{body25.shape}; expected (V, 3, 3) twice, (V, 3) and (25, 4)")
        found = [finder(f"{entry['img_name']}/k{v}.color.jpg") for v in range(len(K))]
        images = [None if p is None else read_image(p) for p in found]
        measured = next((image.shape[1::-1] for image in images if image is not None), BEHAVE_IMAGE_SIZE)
        cams = [build_camera(path, f"k{v}", K[v], R[v], t[v], *measured) for v in range(len(K))]
        keypoints = np.zeros((len(cams), len(BODY25), 3), dtype=np.float32)
        for v, cam in enumerate(cams):
            uv, depth = project_points(body25[:, :3], cam)
            keypoints[v, :, :2] = uv
            keypoints[v, :, 2] = np.where(depth > 0, np.clip(body25[:, 3], 0.0, 1.0), 0.0)
        sample = {"name": frame_name(index), "cameras": cams,
                  "frames": images, "keypoints": keypoints,
                  "joint_set": BODY25.name, "source": str(path), "frame": f,
                  "ground_truth": GroundTruth(joints3d=behave_ground_truth(body25), joint_set=H36M17.name)}
        return MultiviewSample(**_detected(sample, tracker, f))

    def frame_name(index: int) -> str:  # sequence and frame folders: Date01_Sub01_boxsmall_t0003.000
        name = db[index].get("img_name") if isinstance(db[index], dict) else None
        return "_".join(PurePosixPath(str(name)).parts[-2:]) if name is not None else f"{index:06d}"

    return _sequence(path, list(range(len(db))), frame_name, read)


def open_heatformer_db(path: str | Path, image_root: str | Path | None = None,
                       detector: DetectorConfig | None = None) -> MultiviewSequence:
    """A `MultiviewSequence` of the database's multiview moments. Its kind comes from the file name as the official
    code names it (h36m_*, mpii3d_*, BEHAVE_*); images are looked for under ``image_root`` or, by default, where the
    official layout puts them relative to the database."""
    path = Path(path)
    readers = {"h36m": _open_h36m, "mpii3d": _open_mpi, "behave": _open_behave}
    kind = next((k for k in readers if path.name.lower().startswith(k)), None)
    if kind is None:
        raise InputError(path, "unknown database: the official names start with h36m_, mpii3d_ or BEHAVE_")
    db = load_joblib(path)
    finder = ImageFinder([Path(image_root)] if image_root is not None else _default_roots(path))
    with reading(path, "database"):
        return readers[kind](path, db, finder, TrackingDetector(detector) if detector is not None else None)

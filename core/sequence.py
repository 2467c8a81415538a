"""Multiview sequences: many frames seen by the same calibrated cameras, each read as a `MultiviewSample` on demand.

Layouts (``open_sequence`` tells them apart; cameras are matched to folders and videos by name):

    DIR/<calibration>                    calibration.json, Calib.toml, intri.yml+extri.yml, calibration/*.toml|*.qca.txt|*.npz, cameras.npz (aitviewer)
    DIR/images/<cam>/<frame>.jpg|png     EasyMocap style: one image folder per camera, the same frame names in each
    DIR/videos/<cam>.mp4|avi|mov|mkv     Pose2Sim style: one video per camera, the same frame count in each

2D evidence for every frame and view, the first of these that exists:

    DIR/keypoints.npz                    "keypoints" (F, V, J, 3) in pixels and confidence, "joint_set"
    DIR/keypoints.npy                    (F, V, J, 3); J = 17 is H36M-17 (COCO-17 needs the .npz and its joint_set)
    DIR/openpose/<cam>/*.json            OpenPose-style files (BODY_25, HALPE_26, COCO-17), one per frame
    DIR/pose/<cam>_json/*.json           Pose2Sim's 2D output: the same files, in Pose2Sim's folder names
    DIR/annots/<cam>/*.json              EasyMocap annots, one per frame
    DIR/mmpose/<cam>/*.json              MMPose predictions (COCO-17, HALPE_26, COCO-WholeBody), one per frame
    DIR/mmpose/<cam>.json                MMPose predictions of a whole video ("instance_info"), one per camera
    DIR/coco/<cam>.json                  COCO keypoints of every frame (results or annotations), one per camera
    DIR/heatmaps.npz | heatmaps.npy      "heatmaps" (F, V, J, h, w), H36M-17; also used beside keypoints

Keypoint files are taken in sorted name order, one per frame, and their count must equal the frame count. Without
any of these, the built-in detector (BlazePose, core.association: one person among several, followed across
frames) makes the keypoints from the frames, or a user's ONNX pose model (core.detector) if one is given.
A single sample in the native layout (see core.dataset_io) is a sequence of one frame, and a folder of native
sample folders is a sequence with one sample per frame (such as a benchmark made by ``main.py synth``).
The official HeatFormer code's databases (h36m_*_db.pt, mpii3d_*_db.pt, BEHAVE_*_db.pt) open as sequences too.
"""
from __future__ import annotations

import zipfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from core.association import MultiviewTracker
from core.calibration import check_views_match, is_calibration_file, load_calibration
from core.cameras import Camera
from core.detector import DetectorConfig, TrackingDetector
from core.dataset_io import CALIBRATION_CANDIDATES, IMAGE_SUFFIXES, read_image, read_sample
from core.errors import InputError
from core.heatformer_db import is_heatformer_db, open_heatformer_db
from core.joints import H36M17, JOINT_SETS, SMPL24
from core.keypoint_formats import (SKELETONS, read_coco_frames, read_easymocap_annots, read_mmpose, read_mmpose_video,
                                   read_openpose, stack_detections)
from core.sample import MultiviewSample

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv")
NATIVE_MARKERS = ("sample.json", "keypoints.json", "ground_truth.json")
# Joint sets a bare .npy keypoint array is read in, by joint count.
NPY_JOINT_SETS = {len(js): js for js in (H36M17, SMPL24, *SKELETONS.values()) if js.name != "coco17"}


class MultiviewSequence:
    """F frames of V views. ``sequence[i]`` reads frame i from disk (images or video frames and its evidence)."""

    def __init__(self, name: str, source: Path, frame_names: list[str], read_frame: Callable[[int], MultiviewSample]):
        self.name, self.source, self.frame_names = name, source, frame_names
        self._read_frame = read_frame

    def __len__(self) -> int:
        return len(self.frame_names)

    def __getitem__(self, index: int) -> MultiviewSample:
        if not 0 <= index < len(self):
            raise IndexError(f"frame {index} of a sequence of {len(self)}")
        return self._read_frame(index)


class VideoFrames:
    """Random access to the frames of one video file through OpenCV (sequential reads skip the seek)."""

    def __init__(self, path: Path):
        self.path = path
        self.capture = cv2.VideoCapture(str(path))
        self.count = int(self.capture.get(cv2.CAP_PROP_FRAME_COUNT)) if self.capture.isOpened() else 0
        if self.count <= 0:
            raise InputError(path, "unreadable video (OpenCV cannot open it or finds no frames)")
        self.next_index = 0

    def read(self, index: int) -> np.ndarray:
        if index != self.next_index:
            self.capture.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, image = self.capture.read()
        if not ok:
            raise InputError(self.path, f"cannot read frame {index} of {self.count}")
        self.next_index = index + 1
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _calibration(folder: Path) -> list[Camera]:
    """The folder's calibration file, else the first TOML, Qualisys .qca.txt or aitviewer camera .npz in
    calibration/ (a Pose2Sim project)."""
    found = [folder / c for c in CALIBRATION_CANDIDATES if (folder / c).exists()]
    found += sorted((folder / "calibration").glob("*.toml")) + sorted((folder / "calibration").glob("*.qca.txt"))
    found += [p for p in sorted((folder / "calibration").glob("*.npz")) if is_calibration_file(p)]
    if not found:
        raise InputError(folder, f"no calibration file (looked for {', '.join(CALIBRATION_CANDIDATES)} "
                                 "and calibration/*.toml, *.qca.txt or *.npz)")
    return load_calibration(found[0])


def _image_frames(folder: Path, views: list[str]) -> tuple[list[str], Callable[[int, int], np.ndarray]]:
    stems = {}
    for view in views:
        files = {p.stem: p for p in (folder / "images" / view).glob("*") if p.suffix.lower() in IMAGE_SUFFIXES}
        if not files:
            raise InputError(folder / "images" / view, "no images (.jpg, .png, .bmp) for this camera")
        stems[view] = files
    first = views[0]
    for view in views[1:]:
        if stems[view].keys() != stems[first].keys():
            lacking = sorted(stems[first].keys() ^ stems[view].keys())[0]
            raise InputError(folder / "images", f"views {first} ({len(stems[first])} frames) and {view} "
                                                f"({len(stems[view])} frames) differ, e.g. in frame {lacking}")
    names = sorted(stems[first])
    return names, lambda v, f: read_image(stems[views[v]][names[f]])


def _video_frames(folder: Path, views: list[str]) -> tuple[list[str], Callable[[int, int], np.ndarray]]:
    videos = []
    for view in views:
        path = next((folder / "videos" / f"{view}{s}" for s in VIDEO_SUFFIXES
                     if (folder / "videos" / f"{view}{s}").exists()), None)
        if path is None:
            raise InputError(folder / "videos", f"no video for camera {view} ({'/'.join(VIDEO_SUFFIXES)})")
        videos.append(VideoFrames(path))
    for video in videos[1:]:
        if video.count != videos[0].count:
            raise InputError(video.path, f"{video.count} frames where {videos[0].path.name} has {videos[0].count}")
    return [f"{i:06d}" for i in range(videos[0].count)], lambda v, f: videos[v].read(f)


def _folder_views(folder: Path, sub: str) -> list[str]:
    return sorted(p.stem for p in (folder / sub).iterdir() if p.is_dir() or p.suffix.lower() in VIDEO_SUFFIXES)


def _array(folder: Path, stem: str, key: str) -> tuple[np.ndarray, str | None, Path] | None:
    """An evidence array from ``stem``.npz (with its joint set) or ``stem``.npy, if either exists, and its path."""
    for path in (folder / f"{stem}.npz", folder / f"{stem}.npy"):
        if not path.exists():
            continue
        try:
            if path.suffix == ".npy":
                return np.load(path, allow_pickle=False).astype(np.float32), None, path
            with np.load(path, allow_pickle=False) as archive:
                joint_set = str(archive["joint_set"]) if "joint_set" in archive.files else None
                return archive[key].astype(np.float32), joint_set, path
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as exc:
            raise InputError(path, f"cannot read {key} ({exc})") from exc
    return None


def _checked_frames(array: np.ndarray, dims: int, frames: int, views: int, path: Path) -> np.ndarray:
    """(F, V, ...) from an array of ``dims`` dimensions, or of one fewer when the sequence has a single frame."""
    if array.ndim == dims - 1 and frames == 1:
        array = array[None]
    if array.ndim != dims or array.shape[:2] != (frames, views):
        raise InputError(path, f"array has shape {array.shape}; expected ({frames} frames, {views} views, ...) "
                               f"with {dims} dimensions")
    if not np.all(np.isfinite(array)):
        raise InputError(path, "array contains NaN or infinity")
    return array


def _keypoint_files(folder: Path, views: list[str], frames: int):
    """Per-view keypoint files of a detector: (reader, [[path per view] per frame]) or None."""
    layouts = [("openpose/{}", read_openpose), ("pose/{}_json", read_openpose), ("annots/{}", read_easymocap_annots),
               ("mmpose/{}", read_mmpose)]
    for pattern, reader in layouts:
        if not (folder / pattern.format(views[0])).is_dir():
            continue
        per_view = []
        for view in views:
            directory = folder / pattern.format(view)
            files = sorted(directory.glob("*.json")) if directory.is_dir() else []
            if len(files) != frames:
                raise InputError(directory, f"{len(files)} keypoint files for {frames} frames")
            per_view.append(files)
        return reader, [list(paths) for paths in zip(*per_view)]
    return None


def _whole_video_files(directory: Path, views: list[str], frames: int, reader) -> tuple[np.ndarray, str]:
    """(F, V, K, 3) keypoints and their joint set from one file per camera that covers every frame."""
    paths = [directory / f"{view}.json" for view in views]
    per_view = []
    for path in paths:
        if not path.is_file():
            raise InputError(path, "no such file: every camera needs its keypoint file")
        per_view.append(reader(path))
        if len(per_view[-1]) != frames:
            raise InputError(path, f"keypoints for {len(per_view[-1])} frames; the sequence has {frames}")
    stacked, joints = stack_detections([per_view[v][f] for f in range(frames) for v in range(len(views))],
                                       [paths[v] for _ in range(frames) for v in range(len(views))])
    return stacked.reshape(frames, len(views), len(joints), 3), joints.name


def _evidence(folder: Path, views: list[str], frames: int) -> Callable[[int], dict] | None:
    """What each frame's sample gets as 2D evidence (keypoints, joint_set and/or heatmaps), if the folder has any."""
    keypoints = joint_set = heatmaps = None
    if (found := _array(folder, "keypoints", "keypoints")) is not None:
        keypoints, joint_set, path = found
        keypoints = _checked_frames(keypoints, 4, frames, len(views), path)
        if joint_set is None:
            joint_set = NPY_JOINT_SETS.get(keypoints.shape[2], H36M17).name
        if joint_set not in JOINT_SETS:
            raise InputError(path, f"unknown joint set {joint_set!r}; known: {', '.join(JOINT_SETS)}")
    elif (files := _keypoint_files(folder, views, frames)) is not None:
        reader, paths = files
        flat = [p for frame in paths for p in frame]
        stacked, joints = stack_detections([reader(p) for p in flat], flat)
        keypoints, joint_set = stacked.reshape(frames, len(views), len(joints), 3), joints.name
    elif (folder / "mmpose" / f"{views[0]}.json").is_file():
        keypoints, joint_set = _whole_video_files(folder / "mmpose", views, frames, read_mmpose_video)
    elif (folder / "coco").is_dir():
        keypoints, joint_set = _whole_video_files(folder / "coco", views, frames, read_coco_frames)
    if (found := _array(folder, "heatmaps", "heatmaps")) is not None:
        heatmaps = _checked_frames(found[0], 5, frames, len(views), found[2])
    if keypoints is None and heatmaps is None:
        return None
    return lambda f: {"keypoints": None if keypoints is None else keypoints[f], "heatmaps":
                      None if heatmaps is None else heatmaps[f], "joint_set": joint_set or H36M17.name}


def _camera_layout(folder: Path, detector: DetectorConfig | None) -> MultiviewSequence:
    cameras = _calibration(folder)
    sub = "videos" if (folder / "videos").is_dir() else "images"
    found_views = _folder_views(folder, sub)
    check_views_match(cameras, found_views, folder / sub)
    views = [c.name for c in cameras]
    names, read_view = (_video_frames if sub == "videos" else _image_frames)(folder, views)
    evidence = _evidence(folder, views, len(names))
    tracker = None
    if evidence is None:
        tracker = TrackingDetector(detector) if detector is not None else MultiviewTracker(cameras)

    def read_frame(f: int) -> MultiviewSample:
        images = [read_view(v, f) for v in range(len(views))]
        if tracker is not None:
            keypoints = tracker.detect_views(f, images)
            if not (keypoints[..., 2] > 0).any():
                raise InputError(folder, f"frame {names[f]}: the built-in detector found nobody whom two views agree "
                                         "on; give 2D keypoints (see the layouts above) or your own 2D detector")
            evidence_f = {"keypoints": keypoints, "joint_set": tracker.joint_set,
                          "evidence_notes": tracker.notes}
        else:
            evidence_f = evidence(f)
        return MultiviewSample(name=f"{folder.name} {names[f]}", cameras=cameras, frames=images,
                               source=str(folder), frame=f, **evidence_f)

    return MultiviewSequence(folder.name, folder, names, read_frame)


def open_sequence(folder: str | Path, detector: DetectorConfig | None = None,
                  calibration: str | Path | None = None) -> MultiviewSequence:
    """Open ``folder`` in whichever layout it has, or an official HeatFormer database file (core.heatformer_db);
    problems are reported with the file or folder they concern. ``calibration``: another calibration file's
    cameras replace the data's own (`with_calibration`).
    ``detector`` makes the keypoints of image and video layouts that have no 2D evidence of their own."""
    if calibration:
        return with_calibration(open_sequence(folder, detector), calibration)
    folder = Path(folder)
    if is_heatformer_db(folder):
        return open_heatformer_db(folder, detector=detector)
    if not folder.is_dir():
        raise InputError(folder, "not a folder (nor an official HeatFormer *_db.pt database)")
    if any((folder / marker).exists() for marker in NATIVE_MARKERS):
        sample = read_sample(folder)
        return MultiviewSequence(sample.name, folder, [sample.name], lambda f: sample)
    if (folder / "videos").is_dir() or (folder / "images").is_dir():
        return _camera_layout(folder, detector)
    samples = sorted(p for p in folder.iterdir() if (p / "sample.json").exists())
    if samples:
        def read_frame(f: int) -> MultiviewSample:
            sample = read_sample(samples[f])
            sample.source, sample.frame = str(folder), f  # found again as open_sequence(source)[frame]
            return sample

        return MultiviewSequence(folder.name, folder, [p.name for p in samples], read_frame)
    raise InputError(folder, "not a sample or sequence: expected sample.json/keypoints.json (native layout), "
                             "images/<cam>/ or videos/<cam>.mp4 with a calibration, or sample folders")


def with_calibration(sequence: MultiviewSequence, path: str | Path) -> MultiviewSequence:
    """The same frames seen through the cameras of another calibration file, matched to the views by name: to
    compare calibrations of one capture, or to correct one. Problems name that file."""
    path = Path(path)
    cameras = {c.name: c for c in load_calibration(path)}

    def read_frame(f: int) -> MultiviewSample:
        sample = sequence[f]
        missing = [v for v in sample.view_names if v not in cameras]
        if missing:
            raise InputError(path, f"no camera for view(s) {', '.join(missing)} (cameras: {', '.join(cameras)})")
        try:
            return replace(sample, cameras=[cameras[v] for v in sample.view_names], calibration=str(path))
        except InputError as exc:
            raise InputError(path, exc.problem) from exc

    return MultiviewSequence(sequence.name, sequence.source, sequence.frame_names, read_frame)

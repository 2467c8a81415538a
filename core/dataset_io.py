"""The native dataset layout: one folder per multiview sample.

    DIR/sample.json          {"format": "heatformer-sample", "version": 1, "name", "joint_set", "views",
                              "calibration": file name, "frame": frame stem}   (optional; inferred if absent)
    DIR/calibration.json     cameras, in any supported calibration format (see core.calibration)
    DIR/images/<view>/<frame>.jpg|png   one image per view (optional: views without images are allowed)
    DIR/keypoints.json       {"joint_set": "h36m17", "views": {"<view>": [[x, y, confidence], ...]}}
                             or, from a detector (core.keypoint_formats), one of:
    DIR/openpose/<view>/<frame>_keypoints.json   OpenPose-style output per view (BODY_25, HALPE_26, COCO)
    DIR/coco/<view>.json     COCO keypoints (results list or annotation file) per view
    DIR/heatmaps.npz         optional: "heatmaps" (V, J, h, w), "views"
    DIR/ground_truth.json    optional: {"smpl": {global_orient, body_pose, betas, transl}, "joints3d",
                              "joint_set", "body_model"}; world coordinates, metres
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import cv2
import numpy as np

from core.files import atomic_path, check_version, read_json, write_text
from core.calibration import check_views_match, load_calibration, save_calibration
from core.errors import InputError, reading
from core.joints import COCO17
from core.keypoint_formats import read_coco_keypoints, read_openpose, stack_detections
from core.sample import GroundTruth, MultiviewSample

FORMAT_TAG = "heatformer-sample"
VERSION = 1
CALIBRATION_CANDIDATES = ("calibration.json", "calibration.toml", "Calib.toml", "intri.yml", "cameras.json",
                          "cameras.npz")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


def read_image(path: Path) -> np.ndarray:
    """An image file as HxWx3 uint8 RGB, or a clear error naming the file."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise InputError(path, "cannot decode image (corrupt, truncated or not an image)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _find_image(folder: Path, view: str, frame: str) -> Path | None:
    for suffix in IMAGE_SUFFIXES:
        candidate = folder / "images" / view / f"{frame}{suffix}"
        if candidate.exists():
            return candidate
    return None


def _read_keypoints(path: Path, views: list[str]) -> tuple[np.ndarray, str]:
    data = read_json(path)
    joint_set = data.get("joint_set", "h36m17")
    per_view = data.get("views")
    if not isinstance(per_view, dict):
        raise InputError(path, "expected {'joint_set': ..., 'views': {view: [[x, y, confidence], ...]}}")
    missing = [v for v in views if v not in per_view]
    if missing:
        raise InputError(path, f"no keypoints for view(s) {', '.join(missing)}")
    try:
        keypoints = np.asarray([per_view[v] for v in views], dtype=np.float32)
    except (ValueError, TypeError) as exc:
        raise InputError(path, f"keypoints are not a (views, joints, 3) array ({exc})") from exc
    if keypoints.ndim != 3 or keypoints.shape[2] != 3:
        raise InputError(path, f"keypoints have shape {keypoints.shape}; expected (views, joints, 3)")
    if not np.all(np.isfinite(keypoints)):
        raise InputError(path, "keypoints contain NaN or infinity")
    return keypoints, joint_set


def _read_detector_keypoints(folder: Path, views: list[str], frame: str) -> tuple[np.ndarray, str] | None:
    """Keypoints from OpenPose or COCO files, one per view, if the folder has them; every view must have one."""
    if (folder / "openpose").is_dir():
        paths = [folder / "openpose" / v / f"{frame}_keypoints.json" for v in views]
    elif (folder / "coco").is_dir():
        paths = [folder / "coco" / f"{v}.json" for v in views]
    else:
        return None
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise InputError(missing[0], f"no such file ({len(missing)} of {len(paths)} views lack their keypoint file)")
    if (folder / "openpose").is_dir():
        keypoints, joints = stack_detections([read_openpose(p) for p in paths], paths)
        return keypoints, joints.name
    return np.stack([read_coco_keypoints(p) for p in paths]), COCO17.name


def _read_heatmaps(path: Path, views: list[str]) -> np.ndarray:
    try:
        with np.load(path, allow_pickle=False) as archive:
            heatmaps = archive["heatmaps"].astype(np.float32)
            stored_views = [str(v) for v in archive["views"]] if "views" in archive.files else views
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise InputError(path, f"cannot read heatmaps ({exc})") from exc
    if stored_views != views:
        raise InputError(path, f"heatmap views {stored_views} differ from the calibration's {views}")
    return heatmaps


def _read_ground_truth(path: Path) -> GroundTruth:
    data = read_json(path)
    smpl = data.get("smpl") or {}

    def array(value, size, key):
        if value is None:
            return None
        out = np.asarray(value, dtype=np.float64).reshape(-1)
        if out.size != size or not np.all(np.isfinite(out)):
            raise InputError(path, f"{key} must be {size} finite numbers")
        return out

    joints3d = data.get("joints3d")
    if joints3d is not None:
        joints3d = np.asarray(joints3d, dtype=np.float64)
        if joints3d.ndim != 2 or joints3d.shape[1] != 3 or not np.all(np.isfinite(joints3d)):
            raise InputError(path, "joints3d must be a (joints, 3) array of finite numbers")
    return GroundTruth(
        global_orient=array(smpl.get("global_orient"), 3, "global_orient"),
        body_pose=array(smpl.get("body_pose"), 69, "body_pose"),
        betas=array(smpl.get("betas"), len(smpl.get("betas") or []), "betas"),
        transl=array(smpl.get("transl"), 3, "transl"),
        joints3d=joints3d, joint_set=data.get("joint_set", "h36m17"), body_model=data.get("body_model", ""),
        occluded=None if data.get("occluded") is None else np.asarray(data["occluded"], dtype=bool),
    )


# sample.json's keys and the types they must have
META_TYPES = {"format": (str,), "name": (str,), "joint_set": (str,), "views": (list,), "calibration": (str,),
              "frame": (str, int)}


def _read_meta(path: Path) -> dict:
    meta = read_json(path)
    for key, kind in META_TYPES.items():
        if key in meta and (not isinstance(meta[key], kind) or isinstance(meta[key], bool)):
            raise InputError(path, f"{key!r} must be a {' or '.join(k.__name__ for k in kind)}, not {meta[key]!r}")
    if not all(isinstance(v, str) and v for v in meta.get("views", [])):
        raise InputError(path, "'views' must list view names")
    check_version(path, meta.get("version", VERSION), VERSION, "sample")
    name = meta.get("calibration")
    if name is not None and (Path(name).name != name or not name):
        raise InputError(path, f"'calibration' must name a file in the sample folder, not {name!r}")
    return meta


def read_sample(folder: str | Path) -> MultiviewSample:
    """Load one sample folder in the native layout; every problem is reported with the file it concerns."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(folder, "not a folder")
    meta_path = folder / "sample.json"
    meta = _read_meta(meta_path) if meta_path.exists() else {}
    calibration_name = meta.get("calibration") or next(
        (c for c in CALIBRATION_CANDIDATES if (folder / c).exists()), None)
    if calibration_name is None:
        raise InputError(folder, f"no calibration file (looked for {', '.join(CALIBRATION_CANDIDATES)})")
    cameras = load_calibration(folder / calibration_name)
    views = list(meta.get("views") or [c.name for c in cameras])
    check_views_match(cameras, views, folder / calibration_name)
    cameras = [next(c for c in cameras if c.name == v) for v in views]

    frame = str(meta.get("frame", "000000"))
    frames = []
    for view in views:
        image_path = _find_image(folder, view, frame)
        frames.append(read_image(image_path) if image_path else None)

    keypoints = heatmaps = None
    joint_set = meta.get("joint_set", "h36m17")
    if (folder / "keypoints.json").exists():
        with reading(folder / "keypoints.json", "keypoints"):
            keypoints, joint_set = _read_keypoints(folder / "keypoints.json", views)
    elif (detected := _read_detector_keypoints(folder, views, frame)) is not None:
        keypoints, joint_set = detected
    if (folder / "heatmaps.npz").exists():
        heatmaps = _read_heatmaps(folder / "heatmaps.npz", views)
    if keypoints is None and heatmaps is None:
        raise InputError(folder, "no 2D evidence: expected keypoints.json, openpose/ or coco/ keypoint files, "
                                 "and/or heatmaps.npz")
    ground_truth = None
    if (folder / "ground_truth.json").exists():
        with reading(folder / "ground_truth.json", "ground truth"):
            ground_truth = _read_ground_truth(folder / "ground_truth.json")
    return MultiviewSample(name=meta.get("name", folder.name), cameras=cameras, frames=frames, keypoints=keypoints,
                           heatmaps=heatmaps, joint_set=joint_set, ground_truth=ground_truth, source=str(folder))


def _list(array) -> list | None:
    return None if array is None else np.asarray(array).tolist()


CALIBRATION_FILE_NAMES = {"native": "calibration.json", "easymocap": "intri.yml", "toml": "calibration.toml",
                          "h36m": "cameras.json", "aitviewer": "cameras.npz"}


def write_sample(sample: MultiviewSample, folder: str | Path, frame: str = "000000",
                 calibration_format: str = "native") -> None:
    """Write ``sample`` in the native layout, its calibration in ``calibration_format``; each file atomically."""
    folder = Path(folder)
    views = sample.view_names
    calibration_name = CALIBRATION_FILE_NAMES[calibration_format]
    save_calibration(sample.cameras, folder / calibration_name, calibration_format)
    for view, image in zip(views, sample.frames):
        if image is not None:
            with atomic_path(folder / "images" / view / f"{frame}.jpg") as tmp:
                if not cv2.imwrite(str(tmp), cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92]):
                    raise OSError(f"could not write {tmp}")
    if sample.keypoints is not None:
        keypoints = {v: np.round(sample.keypoints[i].astype(np.float64), 3).tolist() for i, v in enumerate(views)}
        write_text(folder / "keypoints.json", json.dumps({"joint_set": sample.joint_set, "views": keypoints}))
    if sample.heatmaps is not None:
        with atomic_path(folder / "heatmaps.npz") as tmp:
            np.savez_compressed(tmp, heatmaps=sample.heatmaps.astype(np.float16), views=np.array(views))
    gt = sample.ground_truth
    if gt is not None:
        smpl = {k: _list(getattr(gt, k)) for k in ("global_orient", "body_pose", "betas", "transl")}
        write_text(folder / "ground_truth.json", json.dumps({
            "smpl": {k: v for k, v in smpl.items() if v is not None}, "joints3d": _list(gt.joints3d),
            "joint_set": gt.joint_set, "body_model": gt.body_model, "occluded": _list(gt.occluded)}, indent=1))
    write_text(folder / "sample.json", json.dumps({
        "format": FORMAT_TAG, "version": VERSION, "name": sample.name, "joint_set": sample.joint_set,
        "views": views, "calibration": calibration_name, "frame": frame}, indent=2))

"""2D evidence written by common detectors, read into (joints, 3) arrays of pixels and confidence (0 = missing).

- OpenPose-style JSON: one file per view and frame, ``{"people": [{"pose_keypoints_2d": [x, y, c] * K}]}``, K being
  25 (OpenPose BODY_25), 26 (HALPE_26: Pose2Sim's default, RTMPose/AlphaPose) or 17 (COCO); the most confident
  person is taken.
- EasyMocap annotations: one file per view and frame, ``{"annots": [{"personID", "keypoints": [[x, y, c], ...]}]}``.
- MMPose predictions (RTMPose and the like): one file per view and frame,
  ``[{"keypoints": [[x, y], ...], "keypoint_scores": [...], "bbox": ...}]``, or one per view for a whole video,
  ``{"instance_info": [{"frame_id": 1, "instances": [...]}, ...]}``; COCO-WholeBody's 133 points keep their
  first 17, the COCO body.
- COCO keypoints: one JSON per view, a COCO results list ``[{"image_id", "keypoints": [x, y, v] * 17, "score"}]``
  or a COCO annotation file ``{"annotations": [...]}``; the highest-scoring person is taken.

Every reader names the file and the problem when the content is not what the format says.
"""
from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np

from core.errors import InputError, reading
from core.sample import checked_confidences
from core.joints import BODY25, COCO17, HALPE26, JointSet

MAX_PIXELS = 1e6  # keypoint coordinates beyond this are no image position


def _reader(read):
    """A public reader whose malformed input (wrong types and shapes deep in the JSON) is an InputError."""
    @functools.wraps(read)
    def checked(path):
        with reading(path, "keypoint file"):
            return read(path)
    return checked


# Skeletons an OpenPose-style file can hold, told apart by their number of keypoints.
SKELETONS = {len(js): js for js in (BODY25, HALPE26, COCO17)}
WHOLEBODY_POINTS = 133  # COCO-WholeBody: the 17 COCO body points first, then feet, face and hands


def _load(path: Path):
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise InputError(path, f"cannot read JSON ({type(exc).__name__}: {exc})") from exc


def _as_keypoints(values, path: Path, joints: JointSet | None = None, scores: bool = True) -> np.ndarray:
    """(J, 3) finite keypoints; J is that of ``joints`` or, when None, of any skeleton in `SKELETONS`. With
    ``scores`` the third value is a confidence (see `checked_confidences`), else COCO's visibility flag."""
    try:
        array = np.asarray(values, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise InputError(path, f"keypoints are not numbers ({exc})") from exc
    allowed = [joints] if joints is not None else list(SKELETONS.values())
    if array.size not in [3 * len(js) for js in allowed]:
        expected = ", ".join(f"{3 * len(js)} for {js.name}" for js in allowed)
        raise InputError(path, f"{array.size} keypoint values; expected (x, y, score) per joint: {expected}")
    keypoints = array.reshape(-1, 3)
    if not np.all(np.isfinite(keypoints)):
        raise InputError(path, "keypoints contain NaN or infinity")
    if np.abs(keypoints[:, :2]).max(initial=0.0) > MAX_PIXELS:
        raise InputError(path, f"keypoint coordinates reach {np.abs(keypoints[:, :2]).max():.3g} pixels")
    if scores:
        keypoints[:, 2] = checked_confidences(keypoints[:, 2], path)
    return keypoints.astype(np.float32)


def _most_confident_person(path: str | Path, people_key: str, keypoints_key: str, expected: str) -> np.ndarray | None:
    """(K, 3) keypoints of the person with the highest summed confidence in ``data[people_key]``; None if empty."""
    path = Path(path)
    data = _load(path)
    people = data.get(people_key) if isinstance(data, dict) else None
    if not isinstance(people, list):
        raise InputError(path, f"not {expected}")
    return _best([_as_keypoints(p.get(keypoints_key) if isinstance(p, dict) else None, path) for p in people])


def _best(candidates: list[np.ndarray]) -> np.ndarray | None:
    return max(candidates, key=lambda k: float(k[:, 2].sum())) if candidates else None


@_reader
def read_openpose(path: str | Path) -> np.ndarray | None:
    """(K, 3) keypoints of the most confident person in the file's skeleton (see `SKELETONS`); None when nobody
    was detected."""
    return _most_confident_person(path, "people", "pose_keypoints_2d",
                                  "an OpenPose file: expected {\"people\": [...]}")


@_reader
def read_easymocap_annots(path: str | Path) -> np.ndarray | None:
    """(K, 3) keypoints of the most confident person of an EasyMocap annots file; None when it holds nobody."""
    return _most_confident_person(path, "annots", "keypoints",
                                  "an EasyMocap annots file: expected {\"annots\": [{\"keypoints\": ...}]}")


def _mmpose_instances(instances, path: Path) -> np.ndarray | None:
    """The most confident of MMPose's instances ``[{"keypoints": [[x, y], ...], "keypoint_scores": [...]}]``."""
    if not isinstance(instances, list) or not all(
            isinstance(i, dict) and {"keypoints", "keypoint_scores"} <= i.keys() for i in instances):
        raise InputError(path, "not MMPose predictions: expected "
                               "[{\"keypoints\": [[x, y], ...], \"keypoint_scores\": [...]}]")
    candidates = []
    for instance in instances:
        try:
            xy = np.asarray(instance["keypoints"], dtype=np.float32).reshape(-1, 2)
            scores = np.asarray(instance["keypoint_scores"], dtype=np.float32).reshape(-1)
        except (TypeError, ValueError) as exc:
            raise InputError(path, f"keypoints are not numbers ({exc})") from exc
        if len(xy) != len(scores):
            raise InputError(path, f"{len(xy)} keypoints but {len(scores)} scores")
        if len(xy) == WHOLEBODY_POINTS:
            xy, scores = xy[:len(COCO17)], scores[:len(COCO17)]
        candidates.append(_as_keypoints(np.column_stack([xy, scores]), path))
    return _best(candidates)


@_reader
def read_mmpose(path: str | Path) -> np.ndarray | None:
    """(K, 3) keypoints of the most confident instance in an MMPose per-image prediction file; None when it holds
    nobody."""
    path = Path(path)
    return _mmpose_instances(_load(path), path)


@_reader
def read_mmpose_video(path: str | Path) -> list[np.ndarray | None]:
    """Per frame, in frame_id order, the most confident instance of an MMPose whole-video prediction file
    ``{"meta_info": ..., "instance_info": [{"frame_id": 1, "instances": [...]}, ...]}``."""
    path = Path(path)
    data = _load(path)
    frames = data.get("instance_info") if isinstance(data, dict) else None
    if not isinstance(frames, list) or not all(isinstance(f, dict) and "instances" in f for f in frames):
        raise InputError(path, "not an MMPose video prediction file: expected "
                               "{\"instance_info\": [{\"frame_id\": ..., \"instances\": [...]}]}")
    try:
        frames = sorted(frames, key=lambda f: float(f.get("frame_id", 0)))
    except (TypeError, ValueError) as exc:
        raise InputError(path, f"frame_id is not a number ({exc})") from exc
    return [_mmpose_instances(f["instances"], path) for f in frames]


def stack_detections(detections: list[np.ndarray | None], paths: list[Path]) -> tuple[np.ndarray, JointSet]:
    """(N, K, 3) keypoints from N files of one detector, nobody-detected files as zeros (all joints missing).
    All files must share a skeleton; at least one must have somebody in it."""
    found = [(d, p) for d, p in zip(detections, paths) if d is not None]
    if not found:
        raise InputError(paths[0].parent if paths else None, f"nobody detected in any of {len(paths)} keypoint files")
    size = len(found[0][0])
    for keypoints, path in found:
        if len(keypoints) != size:
            raise InputError(path, f"{len(keypoints)} keypoints where {found[0][1].name} has {size}: "
                                   "files of one sequence must come from one detector")
    return (np.stack([d if d is not None else np.zeros((size, 3), np.float32) for d in detections]),
            SKELETONS[size])


def _coco_entries(path: Path, data) -> list[dict]:
    entries = data.get("annotations") if isinstance(data, dict) else data
    if not isinstance(entries, list) or not all(isinstance(e, dict) and "keypoints" in e for e in entries):
        raise InputError(path, "not COCO keypoints: expected a list of {\"keypoints\": [...]} "
                               "or {\"annotations\": [...]}")
    return entries


def _best_coco(entries: list[dict], path: Path) -> np.ndarray:
    """(17, 3) of the highest-scoring entry (all zeros for none). COCO's visibility flags (0, 1, 2) become
    confidences 0, 1, 1; result scores in [0, 1] are kept."""
    if not entries:
        return np.zeros((len(COCO17), 3), np.float32)
    best = max(entries, key=lambda e: float(e.get("score", e.get("num_keypoints", 0)) or 0))
    keypoints = _as_keypoints(best["keypoints"], path, COCO17, scores="score" in best)
    if "score" not in best:  # annotation visibility flags
        keypoints[:, 2] = (keypoints[:, 2] > 0).astype(np.float32)
    return keypoints


@_reader
def read_coco_keypoints(path: str | Path) -> np.ndarray:
    """(17, 3) COCO keypoints of the highest-scoring person in a results list or an annotation file."""
    path = Path(path)
    return _best_coco(_coco_entries(path, _load(path)), path)


@_reader
def read_coco_frames(path: str | Path) -> list[np.ndarray]:
    """Per image, in image_id order, the highest-scoring person of a COCO file that covers a whole video: the
    images are those of an annotation file's "images" list, or every image_id a results list names."""
    path = Path(path)
    data = _load(path)
    entries = _coco_entries(path, data)
    if any("image_id" not in e for e in entries):
        raise InputError(path, "a COCO file of several frames needs an image_id in every entry")
    images = data.get("images") if isinstance(data, dict) else None
    ids = [i.get("id") for i in images if isinstance(i, dict)] if isinstance(images, list) else []
    try:
        ids = sorted(set(ids or [e["image_id"] for e in entries]), key=lambda i: (isinstance(i, str), i))
    except TypeError as exc:
        raise InputError(path, f"image ids cannot be ordered ({exc})") from exc
    return [_best_coco([e for e in entries if e["image_id"] == i], path) for i in ids]

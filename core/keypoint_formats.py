"""2D evidence written by common detectors, read into (joints, 3) arrays of pixels and confidence (0 = missing).

- OpenPose: one JSON per view and frame, ``{"people": [{"pose_keypoints_2d": [x, y, c] * 25}]}`` (BODY_25);
  the most confident person is taken.
- COCO keypoints: one JSON per view, a COCO results list ``[{"image_id", "keypoints": [x, y, v] * 17, "score"}]``
  or a COCO annotation file ``{"annotations": [...]}``; the highest-scoring person is taken.

Every reader names the file and the problem when the content is not what the format says.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from core.errors import InputError
from core.joints import BODY25, COCO17, JointSet


def _load(path: Path):
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(path, f"cannot read JSON ({exc})") from exc


def _as_keypoints(values, joints: JointSet, path: Path) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=np.float32).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise InputError(path, f"keypoints are not numbers ({exc})") from exc
    if array.size != 3 * len(joints):
        raise InputError(path, f"{array.size} keypoint values; {joints.name} needs {3 * len(joints)} (x, y, score)")
    keypoints = array.reshape(len(joints), 3)
    if not np.all(np.isfinite(keypoints)):
        raise InputError(path, "keypoints contain NaN or infinity")
    return keypoints


def read_openpose(path: str | Path) -> np.ndarray:
    """(25, 3) BODY_25 keypoints of the most confident person; all zeros when nobody was detected."""
    path = Path(path)
    data = _load(path)
    people = data.get("people") if isinstance(data, dict) else None
    if not isinstance(people, list):
        raise InputError(path, "not an OpenPose file: expected {\"people\": [...]}")
    candidates = [_as_keypoints(p.get("pose_keypoints_2d") if isinstance(p, dict) else None, BODY25, path)
                  for p in people]
    if not candidates:
        return np.zeros((len(BODY25), 3), np.float32)
    return max(candidates, key=lambda k: float(k[:, 2].sum()))


def read_coco_keypoints(path: str | Path) -> np.ndarray:
    """(17, 3) COCO keypoints of the highest-scoring person in a results list or an annotation file. COCO's
    visibility flags (0, 1, 2) become confidences 0, 1, 1; result scores in [0, 1] are kept."""
    path = Path(path)
    data = _load(path)
    entries = data.get("annotations") if isinstance(data, dict) else data
    if not isinstance(entries, list) or not all(isinstance(e, dict) and "keypoints" in e for e in entries):
        raise InputError(path, "not COCO keypoints: expected a list of {\"keypoints\": [...]} or {\"annotations\": [...]}")
    if not entries:
        return np.zeros((len(COCO17), 3), np.float32)
    best = max(entries, key=lambda e: float(e.get("score", e.get("num_keypoints", 0)) or 0))
    keypoints = _as_keypoints(best["keypoints"], COCO17, path)
    if "score" not in best:  # annotation visibility flags
        keypoints[:, 2] = (keypoints[:, 2] > 0).astype(np.float32)
    return keypoints

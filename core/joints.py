"""Joint sets used in the project: names, kinematic parents, skeleton edges and the mappings between them.

Every joint order lives here and nowhere else, so that a keypoint file, a heatmap stack and a regressor can be
checked against one definition.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class JointSet:
    """An ordered list of joints; ``parents[i]`` is the index of joint i's parent (-1 for a root)."""

    name: str
    names: tuple[str, ...]
    parents: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.names)

    def index(self, joint_name: str) -> int:
        return self.names.index(joint_name)

    @property
    def edges(self) -> list[tuple[int, int]]:
        """(parent, child) pairs, for drawing a skeleton."""
        return [(p, c) for c, p in enumerate(self.parents) if p >= 0]

    @property
    def flip_permutation(self) -> np.ndarray:
        """Index map that swaps every left joint with its right twin (identity for centre joints)."""
        perm = []
        for joint_name in self.names:
            if joint_name.startswith("left_"):
                perm.append(self.index("right_" + joint_name[5:]))
            elif joint_name.startswith("right_"):
                perm.append(self.index("left_" + joint_name[6:]))
            else:
                perm.append(self.index(joint_name))
        return np.asarray(perm)


SMPL24 = JointSet(
    "smpl24",
    (
        "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2", "left_ankle",
        "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar", "right_collar", "head",
        "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
        "left_hand", "right_hand",
    ),
    (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21),
)

# Human3.6M's 17 evaluation joints in Human3.6M's own order (that of its joint_3d.json files). VIBE's names, which
# the official HeatFormer code uses, call joints 1-3 the left leg; the official loader swaps the legs to match.
H36M17 = JointSet(
    "h36m17",
    (
        "pelvis", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle", "spine",
        "thorax", "neck_nose", "head_top", "left_shoulder", "left_elbow", "left_wrist", "right_shoulder",
        "right_elbow", "right_wrist",
    ),
    (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15),
)

COCO17 = JointSet(
    "coco17",
    (
        "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
        "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
        "right_knee", "left_ankle", "right_ankle",
    ),
    # COCO has no tree; these parents give the usual drawing skeleton rooted at the nose.
    (-1, 0, 0, 1, 2, 0, 0, 5, 6, 7, 8, 5, 6, 11, 12, 13, 14),
)

# OpenPose BODY_25, in OpenPose's order. Joints that coincide with an H36M-17 joint carry its name (MidHip is the
# pelvis, Neck the thorax), so `convert_keypoints` maps them; the rest keep OpenPose's meaning.
BODY25 = JointSet(
    "body25",
    (
        "nose", "thorax", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder", "left_elbow",
        "left_wrist", "pelvis", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle",
        "right_eye", "left_eye", "right_ear", "left_ear", "left_big_toe", "left_small_toe", "left_heel",
        "right_big_toe", "right_small_toe", "right_heel",
    ),
    (1, -1, 1, 2, 3, 1, 5, 6, 1, 8, 9, 10, 8, 12, 13, 0, 0, 15, 16, 14, 19, 14, 11, 22, 11),
)

# HALPE_26 (AlphaPose, RTMPose-Halpe; Pose2Sim's default): COCO-17 plus head top, neck, mid-hip and six foot points.
HALPE26 = JointSet(
    "halpe26",
    COCO17.names + ("head_top", "thorax", "pelvis", "left_big_toe", "right_big_toe", "left_small_toe",
                    "right_small_toe", "left_heel", "right_heel"),
    (18, 0, 0, 1, 2, 18, 18, 5, 6, 7, 8, 19, 19, 11, 12, 13, 14, 18, 19, -1, 15, 16, 15, 16, 15, 16),
)

JOINT_SETS = {js.name: js for js in (SMPL24, H36M17, COCO17, BODY25, HALPE26)}

# H36M-17 joints that coincide with an SMPL-24 joint; the rest (spine, thorax, nose, head top) are defined by
# `core.body_model.h36m_regressor`.
H36M_FROM_SMPL = {
    "pelvis": "pelvis", "right_hip": "right_hip", "right_knee": "right_knee", "right_ankle": "right_ankle",
    "left_hip": "left_hip", "left_knee": "left_knee", "left_ankle": "left_ankle", "left_shoulder": "left_shoulder",
    "left_elbow": "left_elbow", "left_wrist": "left_wrist", "right_shoulder": "right_shoulder",
    "right_elbow": "right_elbow", "right_wrist": "right_wrist",
}


def mapping(source: JointSet, target: JointSet) -> np.ndarray:
    """For each target joint, the index of the same-named source joint, or -1 where the source lacks it."""
    return np.asarray([source.names.index(n) if n in source.names else -1 for n in target.names])


# Points of a detector's skeleton that the joints it lacks are made from: midpoints of left/right pairs, or one joint.
ANCHORS = {"hips": ("left_hip", "right_hip"), "shoulders": ("left_shoulder", "right_shoulder"),
           "ears": ("left_ear", "right_ear"), "nose": ("nose",)}
# H36M-17 joints that COCO-17 (and BODY_25, HALPE_26 where they lack them) has not, as affine combinations of the
# anchors: base + sum of weight * (anchor - base). The weights are least-squares fits to the H36M regressor of the
# bundled body model over 200 random poses and shapes; tests/test_keypoint_formats.py measures the error on the
# body model's own joints (about 1-2 cm mean).
SYNTHESISED = {
    "pelvis": ("hips", {"shoulders": 0.04}),
    "thorax": ("hips", {"shoulders": 1.0, "ears": 0.14}),
    "spine": ("hips", {"shoulders": 0.46, "ears": 0.11}),
    "neck_nose": ("nose", {}),
    "head_top": ("shoulders", {"ears": 1.74, "nose": -0.18}),
}


def _anchor(keypoints: np.ndarray, source: JointSet, name: str) -> np.ndarray | None:
    """(..., C) an anchor point (position, then confidence last) with the lowest confidence of the joints it is
    made of; None if the source lacks one of them."""
    parts = ANCHORS[name]
    if not all(p in source.names for p in parts):
        return None
    points = np.stack([keypoints[..., source.index(p), :] for p in parts])
    return np.concatenate([points[..., :-1].mean(0), points[..., -1:].min(0)], -1)


def convert_keypoints(keypoints: np.ndarray, source: JointSet, target: JointSet,
                      synthesise: bool = True) -> np.ndarray:
    """Re-order (..., J_source, C) keypoints (confidence last) into ``target`` order. Into H36M-17, joints the source lacks are
    made from those it has (`SYNTHESISED`), with the lowest confidence of what they are made of; any other
    missing joint gets all zeros (so its confidence says 'missing')."""
    idx = mapping(source, target)
    out = np.zeros(keypoints.shape[:-2] + (len(target), keypoints.shape[-1]), dtype=keypoints.dtype)
    present = idx >= 0
    out[..., present, :] = keypoints[..., idx[present], :]
    if synthesise and target.name == H36M17.name:
        for joint in synthesised_joints(source):
            base, weights = SYNTHESISED[joint]
            anchors = {name: _anchor(keypoints, source, name) for name in (base, *weights)}
            made = anchors[base].copy()
            for name, weight in weights.items():
                made[..., :-1] += weight * (anchors[name][..., :-1] - anchors[base][..., :-1])
                made[..., -1] = np.minimum(made[..., -1], anchors[name][..., -1])
            out[..., target.index(joint), :] = made
    return out


def synthesised_joints(source: JointSet) -> list[str]:
    """The H36M-17 joints that `convert_keypoints` makes for ``source`` rather than takes from it."""
    return [joint for joint, (base, weights) in SYNTHESISED.items() if joint not in source.names
            and all(all(p in source.names for p in ANCHORS[a]) for a in (base, *weights))]

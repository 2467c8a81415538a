"""A learnt lifter from one view's 2D joints to that camera's 3D joints: uncalibrated mode's start is read off the
views' lifts once they are put together (core.self_calibration; `HeatFormerConfig.view_lifter`).

Without the cameras' poses nothing can be triangulated, and a start from the mean body facing the camera left the
uncalibrated estimate far off (its orientation never recovered). One view's joints already say much of a body's
3D pose: bodies are not free sets of points. The lifter reads the joints as rays, turned so that the root's ray
is the optical axis (where the body sits in the frame then does not matter) and scaled to a fixed spread (how far
away it is does not either), and returns root-relative joints in metres in that turned frame; the body's size it
cannot see, so it learns the training bodies' usual one. Not in the paper (its uncalibrated mode reads image
features); trained on its own (`core.prior_training`), on synthetic bodies.
"""
from __future__ import annotations

import cv2
import numpy as np
import torch
from torch import nn

from core.cameras import Camera
from core.model.layers import mlp

MIN_CONFIDENCE = 0.1  # a joint below it counts as unseen, as triangulation counts it
STEP_M = 0.3  # metres per unit of the network's output


def ray_frame(direction: np.ndarray) -> np.ndarray:
    """The rotation (3, 3) that turns the unit ray ``direction`` (3,) onto the optical axis (0, 0, 1)."""
    axis = np.cross(direction, [0.0, 0.0, 1.0])
    sine = np.linalg.norm(axis)
    if sine < 1e-12:
        return np.eye(3)
    angle = np.arctan2(sine, direction[2])
    return cv2.Rodrigues(axis / sine * angle)[0]


def lifter_input(keypoints: np.ndarray, camera: Camera, root: int = 0) -> tuple[np.ndarray, np.ndarray] | None:
    """(J, 3) pixels and confidence of one view -> the lifter's (J, 3) input (centred, scaled ray coordinates and
    whether each joint was seen) and the ray frame's rotation (3, 3) from camera axes; None where fewer than six
    joints were seen (too little to lift)."""
    seen = keypoints[:, 2] >= MIN_CONFIDENCE
    if seen.sum() < 6:
        return None
    rays = cv2.undistortPoints(keypoints[:, None, :2].astype(np.float64), camera.K, camera.dist).reshape(-1, 2)
    rays = np.concatenate([rays, np.ones((len(rays), 1))], 1)
    centre = rays[root] if seen[root] else rays[seen].mean(0)
    turn = ray_frame(centre / np.linalg.norm(centre))
    turned = rays @ turn.T
    planar = turned[:, :2] / turned[:, 2:]
    planar = np.where(seen[:, None], planar - (planar[root] if seen[root] else 0.0), 0.0)
    spread = np.sqrt((planar ** 2).sum() / seen.sum())
    features = np.concatenate([planar / max(spread, 1e-9), seen[:, None]], 1)
    return features.astype(np.float32), turn


class ViewLifter(nn.Module):
    def __init__(self, num_joints: int, width: int, depth: int = 4):
        super().__init__()
        self.net = mlp(num_joints * 3, width, depth, num_joints * 3)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(N, J, 3) `lifter_input` features -> (N, J, 3) joints relative to the root, metres, in the ray frame."""
        out = STEP_M * self.net(features.flatten(1)).view_as(features)
        return out - out[:, :1]

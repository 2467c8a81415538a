"""Errors in millimetres, as the HeatFormer paper reports them: MPJPE and MPVPE after aligning the root joints
(computed in `core.inference.evaluate`, in each camera's frame), PA-MPJPE after a similarity (Procrustes)
alignment. Arrays are (..., N, 3) in metres. Without ground truth (real footage): the body's height and how far
the per-view estimates lie apart."""
from __future__ import annotations

import numpy as np

from core.joints import H36M17

MM = 1000.0


def procrustes_align(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """``pred`` (..., N, 3) moved by the similarity transform that best fits it to ``gt``."""
    mu_p, mu_g = pred.mean(-2, keepdims=True), gt.mean(-2, keepdims=True)
    p, g = pred - mu_p, gt - mu_g
    u, s, vt = np.linalg.svd(np.swapaxes(p, -1, -2) @ g)
    d = np.sign(np.linalg.det(u @ vt))
    fix = np.ones(s.shape)
    fix[..., -1] = d
    rotation = (u * fix[..., None, :]) @ vt
    scale = (s * fix).sum(-1) / (p ** 2).sum((-1, -2))
    return scale[..., None, None] * (p @ rotation) + mu_g


def pa_mpjpe(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    return np.linalg.norm(procrustes_align(pred, gt) - gt, axis=-1).mean(-1) * MM


def body_height(joints3d: np.ndarray) -> np.ndarray:
    """(...,) metres from the head top to the mean of the ankles of H36M-17 joints (..., 17, 3)."""
    ankles = [H36M17.index("left_ankle"), H36M17.index("right_ankle")]
    return np.linalg.norm(joints3d[..., H36M17.index("head_top"), :] - joints3d[..., ankles, :].mean(-2), axis=-1)


def view_spread(joints3d: np.ndarray) -> np.ndarray:
    """(...,) metres: the mean distance of each view's joints (..., V, J, 3) from the views' mean."""
    return np.linalg.norm(joints3d - joints3d.mean(-3, keepdims=True), axis=-1).mean((-2, -1))

"""Errors in millimetres, as the HeatFormer paper reports them: MPJPE and MPVPE after aligning the root joints,
PA-MPJPE after a similarity (Procrustes) alignment. Arrays are (..., N, 3) in metres."""
from __future__ import annotations

import numpy as np

MM = 1000.0


def root_aligned(points: np.ndarray, root: np.ndarray) -> np.ndarray:
    """Subtract ``root`` (..., 3) from every point (..., N, 3)."""
    return points - root[..., None, :]


def mpjpe(pred: np.ndarray, gt: np.ndarray, pred_root: np.ndarray, gt_root: np.ndarray) -> np.ndarray:
    """Mean per-joint (or per-vertex) position error after root alignment, in mm, over the last two axes."""
    return np.linalg.norm(root_aligned(pred, pred_root) - root_aligned(gt, gt_root), axis=-1).mean(-1) * MM


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

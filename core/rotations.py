"""Rotation conversions, in one place: axis-angle (SMPL's storage), 6D (the network's output) and matrices.

All functions are batched over leading dimensions and work on torch tensors (CPU or CUDA), but for
`angle_between_deg`, which compares numpy rotation matrices.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def axis_angle_to_matrix(axis_angle: torch.Tensor) -> torch.Tensor:
    """(..., 3) axis-angle -> (..., 3, 3) rotation matrices (Rodrigues), stable at zero angle, gradients
    included: written with the unnormalised vector's cross-product matrix K as I + sinc(a) K + (1 - cos a)/a^2 K^2,
    whose factors are smooth at a = 0 (an optimiser starting from the rest pose gets a gradient)."""
    angle = axis_angle.norm(dim=-1)[..., None, None]
    x, y, z = axis_angle.unbind(-1)
    zero = torch.zeros_like(x)
    skew = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=-1).reshape(axis_angle.shape[:-1] + (3, 3))
    first = torch.sinc(angle / torch.pi)  # sin(a) / a
    second = 0.5 * torch.sinc(angle / (2 * torch.pi)) ** 2  # (1 - cos a) / a^2
    eye = torch.eye(3, dtype=axis_angle.dtype, device=axis_angle.device).expand(skew.shape)
    return eye + first * skew + second * (skew @ skew)


def matrix_to_axis_angle(matrix: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) rotation matrices -> (..., 3) axis-angle, via quaternions for stability near 0 and pi."""
    return quaternion_to_axis_angle(matrix_to_quaternion(matrix))


def matrix_to_quaternion(matrix: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) -> (..., 4) unit quaternions (w, x, y, z), choosing the best-conditioned branch."""
    m = matrix
    m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    # Four candidate solutions, each accurate where its leading component is large.
    q_abs = torch.sqrt(torch.clamp(torch.stack([
        1.0 + m00 + m11 + m22,
        1.0 + m00 - m11 - m22,
        1.0 - m00 + m11 - m22,
        1.0 - m00 - m11 + m22,
    ], dim=-1), min=1e-12))
    candidates = torch.stack([
        torch.stack([q_abs[..., 0] ** 2, m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0],
                     m[..., 1, 0] - m[..., 0, 1]], dim=-1),
        torch.stack([m[..., 2, 1] - m[..., 1, 2], q_abs[..., 1] ** 2, m[..., 1, 0] + m[..., 0, 1],
                     m[..., 0, 2] + m[..., 2, 0]], dim=-1),
        torch.stack([m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] + m[..., 0, 1], q_abs[..., 2] ** 2,
                     m[..., 2, 1] + m[..., 1, 2]], dim=-1),
        torch.stack([m[..., 1, 0] - m[..., 0, 1], m[..., 2, 0] + m[..., 0, 2], m[..., 2, 1] + m[..., 1, 2],
                     q_abs[..., 3] ** 2], dim=-1),
    ], dim=-2) / (2.0 * q_abs[..., None])
    best = q_abs.argmax(dim=-1)
    quat = torch.gather(candidates, -2, best[..., None, None].expand(best.shape + (1, 4))).squeeze(-2)
    return F.normalize(quat, dim=-1)


def quaternion_to_axis_angle(quat: torch.Tensor) -> torch.Tensor:
    """(..., 4) quaternions (w, x, y, z) -> (..., 3) axis-angle with angle in [0, pi]."""
    quat = torch.where(quat[..., :1] < 0, -quat, quat)
    xyz = quat[..., 1:]
    sin_half = xyz.norm(dim=-1, keepdim=True)
    angle = 2.0 * torch.atan2(sin_half, quat[..., :1])
    # angle / sin(angle/2) -> 2 as the angle -> 0
    scale = torch.where(sin_half > 1e-6, angle / sin_half.clamp_min(1e-12), torch.full_like(angle, 2.0))
    return xyz * scale


def rot6d_to_matrix(rot6d: torch.Tensor) -> torch.Tensor:
    """(..., 6) -> (..., 3, 3): Gram-Schmidt on two columns (Zhou et al. 2019), as HMR-style heads use.

    The 6 numbers are the first two *columns* of the matrix, interleaved row by row ((a1x, a2x, a1y, ...)),
    the layout of the official HeatFormer/SPIN code, so that their mean-pose parameters load unchanged.
    """
    pairs = rot6d.reshape(rot6d.shape[:-1] + (3, 2))
    a1, a2 = pairs[..., 0], pairs[..., 1]
    b1 = F.normalize(a1, dim=-1)
    b2 = F.normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1, dim=-1)
    b3 = torch.cross(b1, b2, dim=-1)
    return torch.stack([b1, b2, b3], dim=-1)


def matrix_to_rot6d(matrix: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) -> (..., 6), the inverse of `rot6d_to_matrix` for rotation matrices."""
    return matrix[..., :, :2].reshape(matrix.shape[:-2] + (6,))


def angle_between_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(...) the angle in degrees between (..., 3, 3) rotation matrices ``a`` and ``b``, from their distance
    |a - b|_F = 2 sqrt(2) sin(angle / 2): unlike the arccos of the trace, exact near zero."""
    chord = np.linalg.norm(np.asarray(a) - np.asarray(b), axis=(-2, -1)) / (2 * np.sqrt(2))
    return np.degrees(2 * np.arcsin(np.clip(chord, 0, 1)))

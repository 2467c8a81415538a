"""Gaussian joint heatmaps: rendering from 2D joints and decoding back, batched torch (CPU or CUDA).

Coordinates: a heatmap of size (h, w) covers an image of size (H, W); pixel centres follow OpenCV's
convention (pixel i covers [i - 0.5, i + 0.5]), so image point u maps to heatmap point (u + 0.5) * w / W - 0.5.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def image_to_heatmap(points: torch.Tensor, image_size: tuple[int, int], heatmap_size: tuple[int, int]) -> torch.Tensor:
    """(..., 2) image pixels -> heatmap pixels. Sizes are (width, height)."""
    scale = points.new_tensor([heatmap_size[0] / image_size[0], heatmap_size[1] / image_size[1]])
    return (points + 0.5) * scale - 0.5


def heatmap_to_image(points: torch.Tensor, image_size: tuple[int, int], heatmap_size: tuple[int, int]) -> torch.Tensor:
    scale = points.new_tensor([image_size[0] / heatmap_size[0], image_size[1] / heatmap_size[1]])
    return (points + 0.5) * scale - 0.5


def render_heatmaps(joints: torch.Tensor, heatmap_size: tuple[int, int], sigma: float = 2.0,
                    visibility: torch.Tensor | None = None, window: float | None = None) -> torch.Tensor:
    """Unnormalised Gaussians (peak 1) at joint positions given in heatmap pixels.

    joints (..., J, 2) as (x, y); visibility (..., J) in [0, 1] scales each map (0 = empty map); with ``window``,
    each Gaussian is cut to the square within ``window`` sigmas of its centre (zero outside, as the official code
    renders them with 3). Returns (..., J, h, w). Differentiable in the joint positions.
    """
    width, height = heatmap_size
    xs = torch.arange(width, dtype=joints.dtype, device=joints.device)
    ys = torch.arange(height, dtype=joints.dtype, device=joints.device)
    dx, dy = xs - joints[..., 0:1], ys - joints[..., 1:2]  # (..., J, w), (..., J, h)
    gx = torch.exp(-(dx ** 2) / (2 * sigma ** 2))
    gy = torch.exp(-(dy ** 2) / (2 * sigma ** 2))
    if window is not None:
        gx = gx * (dx.abs() <= window * sigma)
        gy = gy * (dy.abs() <= window * sigma)
    maps = gy[..., :, None] * gx[..., None, :]  # separable Gaussian, (..., J, h, w)
    if visibility is not None:
        maps = maps * visibility[..., None, None].to(maps.dtype)
    return maps


def render_coarse_heatmaps(joints: torch.Tensor, heatmap_size: tuple[int, int], sigma: float, grid: int,
                           window: float = 3.0, visibility: torch.Tensor | None = None,
                           drop_outside: bool = False) -> torch.Tensor:
    """Heatmaps as the official HeatFormer renders them, which its checkpoints were trained on: each Gaussian
    on a coarse ``grid`` x ``grid`` map of the H x H square centred on the (W, H) crop, at the cell nearest the
    joint (an integer centre), cut to ``window`` sigmas, then resized bilinearly to H x H and cut to the crop's W
    middle columns. The peak therefore sits up to half a coarse cell (1.3 px at 96 over 256) off the joint.

    joints (..., J, 2) in crop pixels, ``sigma`` in crop pixels; a joint is drawn whole where its visibility
    (..., J) exceeds 0.5 and not at all elsewhere, as the official code draws it; ``drop_outside`` empties the maps of joints outside the square, as the official code does for the maps it
    renders from the current estimate (not for its input maps). Returns (..., J, H, W); not differentiable.
    """
    width, height = heatmap_size
    pad = (height - width) // 2
    stride = height / grid
    coarse_sigma = sigma / stride
    half = math.floor(window * coarse_sigma)
    square = joints + joints.new_tensor([pad, 0.0])
    centre = torch.trunc(square / stride + 0.5)  # the official cast to an integer truncates towards zero
    cells = torch.arange(grid, dtype=joints.dtype, device=joints.device)
    offset_x, offset_y = cells - centre[..., 0:1], cells - centre[..., 1:2]  # (..., J, grid)
    gx = torch.exp(-offset_x ** 2 / (2 * coarse_sigma ** 2)) * (offset_x.abs() <= half)
    gy = torch.exp(-offset_y ** 2 / (2 * coarse_sigma ** 2)) * (offset_y.abs() <= half)
    maps = gy[..., :, None] * gx[..., None, :]
    keep = torch.ones(joints.shape[:-1], dtype=joints.dtype, device=joints.device)
    if drop_outside:
        keep = keep * ((square >= 0) & (square < height)).all(-1)
    if visibility is not None:
        keep = keep * (visibility > 0.5)
    maps = maps * keep[..., None, None]
    lead = maps.shape[:-2]
    full = F.interpolate(maps.reshape(-1, 1, grid, grid), size=(height, height), mode="bilinear",
                         align_corners=False, antialias=True)  # what torchvision's resize does for tensors
    return full[..., pad: pad + width].reshape(*lead, height, width)


def decode_heatmaps(heatmaps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(..., J, h, w) -> ((..., J, 2) positions in heatmap pixels, (..., J) confidence = peak value).

    The arg-max is refined to sub-pixel precision by fitting a parabola to log-heatmap values on each axis
    (exact for a Gaussian), falling back to the integer peak at the border or where the map is flat.
    """
    *lead, h, w = heatmaps.shape
    flat = heatmaps.reshape(-1, h * w)
    conf, index = flat.max(dim=-1)
    py, px = index // w, index % w
    log_map = torch.log(heatmaps.reshape(-1, h, w).clamp_min(1e-10))
    rows = torch.arange(flat.shape[0], device=heatmaps.device)

    def offset(center, before, after):
        denom = before - 2 * center + after
        step = 0.5 * (before - after) / torch.where(denom.abs() > 1e-8, denom, torch.ones_like(denom))
        return torch.where(denom < -1e-8, step.clamp(-0.5, 0.5), torch.zeros_like(step))

    c = log_map[rows, py, px]
    left = log_map[rows, py, (px - 1).clamp_min(0)]
    right = log_map[rows, py, (px + 1).clamp_max(w - 1)]
    up = log_map[rows, (py - 1).clamp_min(0), px]
    down = log_map[rows, (py + 1).clamp_max(h - 1), px]
    inner_x = (px > 0) & (px < w - 1)
    inner_y = (py > 0) & (py < h - 1)
    dx = torch.where(inner_x, offset(c, left, right), torch.zeros_like(c))
    dy = torch.where(inner_y, offset(c, up, down), torch.zeros_like(c))
    positions = torch.stack([px.to(heatmaps.dtype) + dx, py.to(heatmaps.dtype) + dy], dim=-1)
    return positions.reshape(*lead, 2), conf.reshape(lead)

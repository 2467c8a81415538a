"""Crop boxes around the person in each view, and the maps between image pixels and crop (heatmap) pixels.

A box is (x0, y0, width, height) in continuous image coordinates, where pixel i covers [i - 0.5, i + 0.5]; a
crop of size (W, H) samples it so that crop pixel centres follow the same convention.
"""
from __future__ import annotations

import cv2
import numpy as np
import torch

from core.model.image_encoder import IMAGE_MEAN, IMAGE_STD

MIN_KEYPOINTS = 2


def crop_boxes(keypoints: np.ndarray, image_sizes: list[tuple[int, int]], aspect: float, scale: float) -> np.ndarray:
    """(V, 4) boxes of width/height ``aspect`` around each view's confident keypoints (V, J, 3), enlarged by
    ``scale``; a view with fewer than two keypoints gets its whole image."""
    boxes = np.zeros((len(image_sizes), 4))
    for v, (width, height) in enumerate(image_sizes):
        seen = keypoints[v, keypoints[v, :, 2] > 0, :2]
        if len(seen) >= MIN_KEYPOINTS:
            low, high = seen.min(0), seen.max(0)
            centre, extent = (low + high) / 2, np.maximum(high - low, 1.0)
            box_w = max(extent[0], extent[1] * aspect) * scale
        else:
            centre, box_w = np.array([width / 2 - 0.5, height / 2 - 0.5]), max(width, height * aspect)
        box_h = box_w / aspect
        boxes[v] = [centre[0] - box_w / 2, centre[1] - box_h / 2, box_w, box_h]
    return boxes


def image_to_crop(points: torch.Tensor, boxes: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(..., V, N, 2) image pixels -> crop pixels of a (W, H) crop, for boxes (..., V, 4)."""
    scale = points.new_tensor(size) / boxes[..., None, 2:]
    return (points - boxes[..., None, :2] + 0.5) * scale - 0.5


def crop_to_image(points: torch.Tensor, boxes: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    scale = boxes[..., None, 2:] / points.new_tensor(size)
    return (points + 0.5) * scale + boxes[..., None, :2] - 0.5


def crop_affines(boxes: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(V, 3, 3) image pixels -> crop pixels of a (W, H) crop, the map `image_to_crop` applies, as matrices."""
    width, height = size
    sx, sy = width / boxes[:, 2], height / boxes[:, 3]
    affines = np.zeros((len(boxes), 3, 3))
    affines[:, 0, 0], affines[:, 1, 1], affines[:, 2, 2] = sx, sy, 1.0
    affines[:, 0, 2] = (0.5 - boxes[:, 0]) * sx - 0.5
    affines[:, 1, 2] = (0.5 - boxes[:, 1]) * sy - 0.5
    return affines


def crop_images(frames: list[np.ndarray | None], boxes: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """(V, 3, H, W) float crops, normalised with ImageNet statistics; missing frames give zeros (the mean)."""
    width, height = size
    out = np.zeros((len(frames), 3, height, width), dtype=np.float32)
    mean, std = np.array(IMAGE_MEAN, np.float32), np.array(IMAGE_STD, np.float32)
    affines = crop_affines(np.asarray(boxes, dtype=np.float64), size)
    for v, frame in enumerate(frames):
        if frame is None:
            continue
        crop = cv2.warpAffine(frame, affines[v, :2], (width, height), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT,
                              borderValue=(124, 116, 104))  # the ImageNet mean colour
        out[v] = ((crop.astype(np.float32) / 255.0 - mean) / std).transpose(2, 0, 1)
    return torch.from_numpy(out)

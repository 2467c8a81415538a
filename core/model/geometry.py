"""How a per-view body estimate lands in that view's heatmap, in either mode.

calibrated:   the body's root is placed at the fused root position in the camera frame and its joints are
              projected with the camera's intrinsics and distortion.
uncalibrated: a weak-perspective camera (s, tx, ty) per view maps root-relative joints to normalised crop
              coordinates (crop centre = 0, half the crop height = 1); no extrinsics are used.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from core.cameras import project_camera_points
from core.crops import crop_to_image, image_to_crop

MODES = ("calibrated", "uncalibrated")


@dataclass
class ViewGeometry:
    """Per-view tensors, batched (B, V, ...)."""

    mode: str
    boxes: torch.Tensor  # (B, V, 4) crop boxes in image pixels
    heatmap_size: tuple[int, int]  # (W, H)
    K: torch.Tensor  # (B, V, 3, 3)
    dist: torch.Tensor  # (B, V, 8)
    root_cam: torch.Tensor | None = None  # (B, V, 3) calibrated root in each camera frame, metres
    # (B, V, 3, 3) calibrated: the triangulated torso's orientation in each camera (NaN where none), read by a
    # network whose `orientation_init` is "triangulated"
    orient_cam: torch.Tensor | None = None
    # (B, V, J, 3) calibrated: the triangulated joints relative to the fused root, in each camera's orientation
    # (NaN where not triangulated), read by a network whose config `reads_triangulated_joints`
    joints_cam: torch.Tensor | None = None
    # (B, 23, 3, 3) and (B, num_betas) calibrated: iteration 0's body pose and shape from the triangulated joints
    # (NaN where the torso was not triangulated), read by a network whose `pose_init` is "triangulated"
    pose_init: torch.Tensor | None = None
    betas_init: torch.Tensor | None = None

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"unknown mode {self.mode!r}; expected one of {MODES}")
        if self.mode == "calibrated" and self.root_cam is None:
            raise ValueError("calibrated mode needs the fused root position in every camera")

    def to_image(self, joints: torch.Tensor, cam: torch.Tensor, root_index: int) -> torch.Tensor:
        """(B, V, J, 3) joints in camera orientation -> (B, V, J, 2) image pixels."""
        return self.relative_to_image(joints - joints[..., root_index: root_index + 1, :], cam)

    def relative_to_image(self, relative: torch.Tensor, cam: torch.Tensor) -> torch.Tensor:
        """(B, V, N, 3) root-relative points in camera orientation -> (B, V, N, 2) image pixels (calibrated:
        placed at the fused root and projected directly, without the round trip through the crop)."""
        if self.mode == "calibrated":
            return project_camera_points(relative + self.root_cam[..., None, :], self.K, self.dist)[0]
        return self.heatmap_to_image(self._weak_perspective(relative, cam))

    def to_heatmap(self, joints: torch.Tensor, cam: torch.Tensor, root_index: int) -> torch.Tensor:
        """(B, V, J, 3) joints in camera orientation -> (B, V, J, 2) heatmap pixels."""
        relative = joints - joints[..., root_index: root_index + 1, :]
        if self.mode == "calibrated":
            return image_to_crop(self.relative_to_image(relative, cam), self.boxes, self.heatmap_size)
        return self._weak_perspective(relative, cam)

    def _weak_perspective(self, relative: torch.Tensor, cam: torch.Tensor) -> torch.Tensor:
        """Uncalibrated mode: root-relative points -> heatmap pixels through the camera (s, tx, ty)."""
        normalised = cam[..., None, :1] * relative[..., :2] + cam[..., None, 1:]
        width, height = self.heatmap_size
        return normalised * (height / 2) + relative.new_tensor([width / 2, height / 2]) - 0.5

    def heatmap_to_image(self, points: torch.Tensor) -> torch.Tensor:
        return crop_to_image(points, self.boxes, self.heatmap_size)

"""Pinhole cameras with OpenCV distortion, world -> camera (x_cam = R X + t; x right, y down, z forward).

`project_points` is the project's single projection function; the NumPy entry point calls the torch one.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from core.errors import InputError

MAX_DISTORTION = 8  # OpenCV's rational model: k1 k2 p1 p2 k3 k4 k5 k6
# Plausible ranges, far beyond real cameras: values outside them are a broken or misread calibration.
MAX_FOCAL = 1e6  # pixels
MAX_IMAGE_SIDE = 65536  # pixels
MAX_TRANSLATION = 1e4  # metres
MAX_DISTORTION_COEFFICIENT = 1e3


@dataclass(frozen=True, eq=False)
class Camera:
    """One calibrated view. Units: metres for t, pixels for K, image size as (width, height)."""

    name: str
    K: np.ndarray
    R: np.ndarray
    t: np.ndarray
    width: int
    height: int
    dist: np.ndarray = field(default_factory=lambda: np.zeros(5))
    # The calibration file gave no image size, so it was guessed (EasyMocap without H_/W_): the real images'
    # size replaces it (see `MultiviewSample`).
    size_guessed: bool = False
    # The calibration's (width, height) where the image is its top-left part, a few pixels smaller (a video codec
    # padded the calibrated frame: 1088 for 1080); None where the image is the calibrated size.
    calibrated_size: tuple[int, int] | None = None

    def __post_init__(self):
        for attr, shape in (("K", (3, 3)), ("R", (3, 3)), ("t", (3,))):
            value = np.asarray(getattr(self, attr), dtype=np.float64)
            if value.shape != shape and value.size == int(np.prod(shape)):
                value = value.reshape(shape)
            if value.shape != shape:
                raise InputError(f"camera {self.name!r}", f"{attr} has shape {value.shape}, expected {shape}")
            object.__setattr__(self, attr, value)
        dist = np.asarray(self.dist, dtype=np.float64).reshape(-1)
        if dist.size > MAX_DISTORTION:
            raise InputError(f"camera {self.name!r}", f"{dist.size} distortion coefficients, at most 8 supported")
        object.__setattr__(self, "dist", dist)
        for attr in ("K", "R", "t", "dist"):
            if not np.all(np.isfinite(getattr(self, attr))):
                raise InputError(f"camera {self.name!r}", f"{attr} contains NaN or infinity")
        orthonormality = np.abs(self.R @ self.R.T - np.eye(3)).max()
        if orthonormality > 1e-4 or np.linalg.det(self.R) < 0:
            raise InputError(
                f"camera {self.name!r}",
                f"R is not a rotation (|R R^T - I| = {orthonormality:.2g}, det = {np.linalg.det(self.R):.3f})",
            )
        where = f"camera {self.name!r}"
        if not (0 < self.K[0, 0] <= MAX_FOCAL and 0 < self.K[1, 1] <= MAX_FOCAL):
            raise InputError(where, f"focal lengths in K must be positive pixels up to {MAX_FOCAL:g}, not "
                                    f"{self.K[0, 0]:.4g} and {self.K[1, 1]:.4g}")
        if np.abs(self.K[2] - [0, 0, 1]).max() > 1e-6 or self.K[1, 0] != 0:
            raise InputError(where, f"K's last row must be (0, 0, 1) and K[1, 0] zero: {self.K.tolist()}")
        for size in (self.width, self.height):
            if isinstance(size, bool) or not float(size).is_integer() or not 0 < size <= MAX_IMAGE_SIDE:
                raise InputError(where, f"image size {self.width}x{self.height} is not whole pixels from 1 to "
                                        f"{MAX_IMAGE_SIDE}")
        object.__setattr__(self, "width", int(self.width))
        object.__setattr__(self, "height", int(self.height))
        centre, size = self.K[:2, 2], np.array([self.width, self.height])
        if (centre < -size).any() or (centre > 2 * size).any():
            raise InputError(where, f"principal point {centre.tolist()} is far outside the {self.width}x{self.height} "
                                    "image")
        if np.abs(self.t).max() > MAX_TRANSLATION:
            raise InputError(where, f"translation {self.t.tolist()} is beyond {MAX_TRANSLATION:g} m (units?)")
        if np.abs(self.dist).max(initial=0.0) > MAX_DISTORTION_COEFFICIENT:
            raise InputError(where, f"distortion coefficients {self.dist.tolist()} are beyond "
                                    f"{MAX_DISTORTION_COEFFICIENT:g}")

    @property
    def center(self) -> np.ndarray:
        """Camera centre in world coordinates, C = -R^T t."""
        return -self.R.T @ self.t

    @property
    def image_size(self) -> tuple[int, int]:
        return self.width, self.height

    def project(self, points_world: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(..., 3) world points -> ((..., 2) pixels, (...,) depth along the optical axis)."""
        return project_points(points_world, self)

    def to_camera(self, points_world: np.ndarray) -> np.ndarray:
        return np.asarray(points_world) @ self.R.T + self.t


def stack_cameras(cameras: list[Camera], device: torch.device | str = "cpu",
                  dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    """Batched tensors for `project_points_torch`: K (V,3,3), R (V,3,3), t (V,3), dist (V,8)."""
    dist = np.zeros((len(cameras), MAX_DISTORTION))
    for i, cam in enumerate(cameras):
        dist[i, : cam.dist.size] = cam.dist

    def as_tensor(a):
        return torch.as_tensor(np.asarray(a), dtype=dtype, device=device)

    return {
        "K": as_tensor([c.K for c in cameras]),
        "R": as_tensor([c.R for c in cameras]),
        "t": as_tensor([c.t for c in cameras]),
        "dist": as_tensor(dist),
    }


def distort(xy: torch.Tensor, dist: torch.Tensor) -> torch.Tensor:
    """Apply OpenCV's distortion to normalised image coordinates. xy (..., N, 2), dist (..., 8) zero-padded.
    Terms whose coefficients are all zero are skipped: they would add zero, or divide by one, exactly."""
    d = dist[..., None, :]  # broadcast over points
    k1, k2, p1, p2, k3, k4, k5, k6 = d.unbind(-1)
    x, y = xy.unbind(-1)
    r2 = x * x + y * y
    radial = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
    if bool(dist[..., 5:].any()):  # the rational model
        radial = radial / (1 + r2 * (k4 + r2 * (k5 + r2 * k6)))
    if not bool(dist[..., 2:4].any()):  # no tangential distortion
        return xy * radial[..., None]
    x_d = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    y_d = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    return torch.stack([x_d, y_d], dim=-1)


def project_points_torch(points_world: torch.Tensor, K: torch.Tensor, R: torch.Tensor, t: torch.Tensor,
                         dist: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Project world points into cameras, differentiably.

    points_world (..., N, 3) with leading dims broadcastable against the cameras' (..., 3, 3) K and R,
    (..., 3) t and (..., 8) dist. Returns pixels (..., N, 2) and depth (..., N). Points at or behind the
    camera plane get their depth clamped to 1e-6 for the division only; callers mask with depth > 0.
    """
    return project_camera_points(points_world @ R.transpose(-1, -2) + t[..., None, :], K, dist)


def project_camera_points(points_cam: torch.Tensor, K: torch.Tensor, dist: torch.Tensor | None = None
                          ) -> tuple[torch.Tensor, torch.Tensor]:
    """`project_points_torch` for points already in the camera frame (..., N, 3): pixels and depth."""
    depth = points_cam[..., 2]
    xy = points_cam[..., :2] / depth.clamp_min(1e-6)[..., None]
    if dist is not None and bool(dist.any()):  # all zero: the identity, exactly (a third of the projection time)
        xy = distort(xy, dist)
    # K's first two rows as an affine map, written out: a broadcast matmul of N 2-vectors took twice as long
    uv = xy[..., :1] * K[..., None, :2, 0] + xy[..., 1:] * K[..., None, :2, 1] + K[..., None, :2, 2]
    return uv, depth


def project_points(points_world: np.ndarray, camera: Camera) -> tuple[np.ndarray, np.ndarray]:
    """NumPy entry point of `project_points_torch` for one camera: (..., 3) -> ((..., 2), (...,))."""
    points = torch.as_tensor(np.asarray(points_world, dtype=np.float64))
    flat = points.reshape(-1, 3)
    dist = np.zeros(MAX_DISTORTION)
    dist[: camera.dist.size] = camera.dist
    uv, depth = project_points_torch(
        flat, torch.as_tensor(camera.K), torch.as_tensor(camera.R), torch.as_tensor(camera.t),
        torch.as_tensor(dist),
    )
    return uv.numpy().reshape(points.shape[:-1] + (2,)), depth.numpy().reshape(points.shape[:-1])


def look_at(eye: np.ndarray, target: np.ndarray, up: np.ndarray = np.array([0.0, 0.0, 1.0])) -> tuple[
        np.ndarray, np.ndarray]:
    """World -> camera (R, t) for a camera at ``eye`` looking at ``target``, image y pointing along -up."""
    eye, target = np.asarray(eye, float), np.asarray(target, float)
    forward = target - eye
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, up)
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    R = np.stack([right, down, forward])
    return R, -R @ eye


def frustum_corners(camera: Camera, depth: float) -> np.ndarray:
    """(4, 3) world points of the image corners (ignoring distortion) at ``depth`` along the optical axis,
    in the order top-left, top-right, bottom-right, bottom-left."""
    w, h = camera.width, camera.height
    pixels = np.array([[0, 0, 1], [w, 0, 1], [w, h, 1], [0, h, 1]], dtype=np.float64)
    rays = pixels @ np.linalg.inv(camera.K).T  # z = 1 in the camera frame
    return (rays * depth - camera.t) @ camera.R

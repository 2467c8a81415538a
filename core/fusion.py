"""Calibrated evidence fusion: robust, confidence-weighted triangulation of each joint from every view, then
reprojection into every view.

This is our stand-in for the official AdaFuse: instead of fusing heatmaps along epipolar lines, each joint is
triangulated by weighted DLT from the views that detect it; the view that disagrees most is dropped while its
reprojection error exceeds a threshold and at least two views remain. The fused 2D joints of a view are the
triangulated joints projected into it, so an occluded or mis-detected joint gets the other views' evidence.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from core.cameras import Camera, project_points_torch, stack_cameras
from core.joints import H36M17, JointSet


@dataclass
class FusedEvidence:
    joints3d: np.ndarray  # (J, 3) world, NaN where fewer than two views agree
    keypoints: np.ndarray  # (V, J, 3) the triangulated joints reprojected, confidence 0 where missing
    inliers: np.ndarray  # (V, J) bool: views used for each joint
    reprojection_error: np.ndarray  # (V, J) pixels against the input keypoints (NaN where not detected)
    root: np.ndarray  # (3,) world position of the root joint


def _undistorted(keypoints: np.ndarray, camera: Camera) -> np.ndarray:
    """(J, 2) pixels -> (J, 2) normalised camera coordinates without distortion."""
    points = keypoints.reshape(-1, 1, 2).astype(np.float64)
    return cv2.undistortPoints(points, camera.K, camera.dist).reshape(-1, 2)


def _solve(normalised: np.ndarray, weights: np.ndarray, cameras: list[Camera]) -> np.ndarray:
    """Weighted DLT for every joint at once. normalised (V, J, 2), weights (V, J) -> (J, 3)."""
    rows = []
    for v, cam in enumerate(cameras):
        P = np.hstack([cam.R, cam.t[:, None]])  # normalised projection
        x, y = normalised[v, :, 0:1], normalised[v, :, 1:2]
        w = weights[v][:, None]
        rows += [w * (x * P[2] - P[0]), w * (y * P[2] - P[1])]
    A = np.stack(rows, axis=1)  # (J, 2V, 4)
    _, _, vt = np.linalg.svd(A)
    X = vt[:, -1]
    with np.errstate(divide="ignore", invalid="ignore"):
        return X[:, :3] / X[:, 3:]


def triangulate(keypoints: np.ndarray, cameras: list[Camera], joints: JointSet = H36M17,
                min_confidence: float = 0.1, outlier_fraction: float = 0.03) -> FusedEvidence:
    """Fuse (V, J, 3) keypoints (pixels, confidence) from calibrated ``cameras``.

    A view is an outlier for a joint when its reprojection error exceeds ``outlier_fraction`` of its image
    diagonal (at least 8 px)."""
    views, num_joints = keypoints.shape[:2]
    use = keypoints[..., 2] >= min_confidence
    normalised = np.stack([_undistorted(keypoints[v, :, :2], cam) for v, cam in enumerate(cameras)])
    thresholds = np.array([max(8.0, outlier_fraction * np.hypot(c.width, c.height)) for c in cameras])
    cams = stack_cameras(cameras, dtype=torch.float64)

    def project(points3d):  # (J, 3) -> (V, J, 2) pixels, (V, J) depth: every view in one call
        uv, depth = project_points_torch(torch.from_numpy(np.nan_to_num(points3d)), cams["K"], cams["R"],
                                         cams["t"], cams["dist"])
        return uv.numpy(), depth.numpy()

    def errors(uv, depth):  # (V, J) pixels from the keypoints, infinite behind a camera
        return np.where(depth > 0, np.linalg.norm(uv - keypoints[..., :2], axis=-1), np.inf)

    for _ in range(max(views - 2, 1)):
        X = _solve(normalised, np.where(use, keypoints[..., 2], 0.0), cameras)
        err = np.where(use, errors(*project(X)), -1.0)
        worst = err.argmax(0)
        drop = (use.sum(0) > 2) & (err[worst, np.arange(num_joints)] > thresholds[worst])
        if not drop.any():
            break
        use[worst[drop], np.flatnonzero(drop)] = False
    X = _solve(normalised, np.where(use, keypoints[..., 2], 0.0), cameras)
    valid = (use.sum(0) >= 2) & np.all(np.isfinite(X), axis=1)
    X[~valid] = np.nan

    fused = np.zeros_like(keypoints)
    confidence = np.where(valid, (keypoints[..., 2] * use).sum(0) / np.maximum(use.sum(0), 1), 0.0)
    uv, depth = project(X)
    ok = valid & (depth > 0)
    fused[..., :2] = np.where(ok[..., None], uv, 0.0)
    fused[..., 2] = np.where(ok, confidence, 0.0)
    measured = keypoints[..., 2] > 0
    reprojection = np.where(measured & valid[None], errors(uv, depth), np.nan)
    return FusedEvidence(X, fused.astype(np.float32), use & valid[None], reprojection, _root(X, joints))


def procrustes_rotation(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Rotation R (..., 3, 3) with ``source @ R`` closest to ``target``, for centred (..., N, 3) point sets whose
    rows are the points (its transpose turns a point of ``source``, as a column, onto ``target``)."""
    u, _, vt = np.linalg.svd(np.swapaxes(source, -1, -2) @ target)
    fix = np.ones(u.shape[:-2] + (3,))
    fix[..., -1] = np.sign(np.linalg.det(u @ vt))
    return (u * fix[..., None, :]) @ vt


# The joints that move least with the body pose: what a global orientation is read from.
TORSO = [H36M17.index(n) for n in ("pelvis", "left_hip", "right_hip", "spine", "thorax", "left_shoulder",
                                   "right_shoulder")]


def torso_orientation(rest_joints: np.ndarray, joints3d: np.ndarray) -> np.ndarray | None:
    """World rotation (3, 3) that turns the body's rest-pose torso (H36M-17 ``rest_joints``) onto the triangulated
    one; None where fewer than three torso joints were triangulated. It needs no image and cannot face the wrong
    way, however unlike the training frames the images are."""
    usable = [j for j in TORSO if np.all(np.isfinite(joints3d[j]))]
    if len(usable) < 3:
        return None
    source, target = rest_joints[usable], joints3d[usable]
    return procrustes_rotation(source - source.mean(0), target - target.mean(0)).T


def _root(joints3d: np.ndarray, joints: JointSet) -> np.ndarray:
    """The pelvis if the joint set has it and it was triangulated, else the middle of the hips, else the mean of
    what was triangulated."""
    if "pelvis" in joints.names and np.all(np.isfinite(pelvis := joints3d[joints.index("pelvis")])):
        return pelvis
    hips = joints3d[[joints.index("left_hip"), joints.index("right_hip")]]
    if np.all(np.isfinite(hips)):
        return hips.mean(0)
    finite = joints3d[np.all(np.isfinite(joints3d), axis=1)]
    if len(finite) == 0:
        raise ValueError("no joint could be triangulated: fewer than two views detect any joint")
    return finite.mean(0)

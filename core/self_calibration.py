"""Uncalibrated mode's start: where the views stand around the body, found from the body itself.

Each view's joints are lifted to 3D in that camera's frame (core.model.view_lifter); the lifts of one body differ
only by the cameras' rotations, so rotating them onto a common frame (view 1's, weighted Procrustes) places the
views and averages the lifts. Each camera's position then follows from its 2D joints (linear, intrinsics known),
and a few rounds of triangulating with the placed cameras and re-placing each camera on the triangulated joints
(PnP) pull the joints onto every view's evidence. The scale stays the lifter's: one frame cannot tell a large body
far away from a small one nearby.

One frame's 17 joints pin the rotations only loosely (a few degrees to a few tens): this is a start for the
network, not a calibration to keep.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from core.cameras import Camera
from core.errors import InputError
from core.fusion import procrustes_rotation, triangulate
from core.model.view_lifter import MIN_CONFIDENCE, ViewLifter, lifter_input
from core.rotations import angle_between_deg

UNSEEN_WEIGHT = 0.05  # a lifted joint no view saw still counts a little: the lifter fills it in from the rest
# A view re-placed by PnP keeps its new rotation only where the body then faces that camera within this of what the
# view's own lift says. One frame's joints leave the cameras and the body's depth ambiguous together: PnP on joints
# triangulated with misplaced cameras can settle, with a low reprojection error, on a consistent but turned
# configuration (on `val30` a view of 6 samples in 30 ended 33-69 degrees off, 3 with this check); the lift knows
# how bodies look.
MAX_TURN_FROM_LIFT_DEG = 20.0


@dataclass
class SelfCalibration:
    rotations: np.ndarray  # (V, 3, 3) world -> camera, world = view 1's axes (NaN where a view could not be placed)
    joints3d: np.ndarray  # (J, 3) root-relative joints in world axes, metres at the lifter's scale
    translations: np.ndarray  # (V, 3) world -> camera, the joints' root at the world's origin (NaN: not placed)


def _weighted_rotation(source: np.ndarray, target: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """World -> camera rotation R with ``source @ R.T`` closest to ``target`` (root-relative (J, 3) sets)."""
    root = np.sqrt(weights)[:, None]
    return procrustes_rotation(source * root, target * root).T


def _camera_position(joints: np.ndarray, rotation: np.ndarray, keypoints: np.ndarray, camera: Camera) -> np.ndarray:
    """Translation t (3,) that puts ``joints`` (world, rotated by ``rotation``) on the view's seen keypoints:
    each ray x gives x × (R X + t) = 0, two linear equations in t."""
    seen = (keypoints[:, 2] >= MIN_CONFIDENCE) & np.all(np.isfinite(joints), axis=1)
    rays = cv2.undistortPoints(keypoints[seen, None, :2].astype(np.float64), camera.K, camera.dist).reshape(-1, 2)
    rotated = joints[seen] @ rotation.T
    rows, values = [], []
    for (x, y), p in zip(rays, rotated):
        rows += [[1.0, 0.0, -x], [0.0, 1.0, -y]]
        values += [x * p[2] - p[0], y * p[2] - p[1]]
    return np.linalg.lstsq(np.asarray(rows), np.asarray(values), rcond=None)[0]


def self_calibrate(lifter: ViewLifter, keypoints: np.ndarray, cameras: list[Camera], root: int = 0,
                   rounds: int = 3) -> SelfCalibration | None:
    """Place the views of (V, J, 3) ``keypoints`` (pixels, confidence; intrinsics from ``cameras``, their poses
    unread) around the body: ``rounds`` of averaging the lifts, then as many of re-placing the cameras on the
    triangulated joints. None where no view saw enough joints to lift."""
    lifted = [lifter_input(k, c, root) for k, c in zip(keypoints, cameras)]
    placed = [v for v, item in enumerate(lifted) if item is not None]
    if not placed:
        return None
    parameter = next(lifter.parameters())
    features = torch.as_tensor(np.stack([lifted[v][0] for v in placed]), dtype=parameter.dtype,
                               device=parameter.device)
    with torch.no_grad():
        in_rays = lifter(features).double().cpu().numpy()
    lifts = np.stack([joints @ lifted[v][1] for joints, v in zip(in_rays, placed)])  # each in its camera's axes
    weights = np.clip(keypoints[placed, :, 2], 0, 1) * (keypoints[placed, :, 2] >= MIN_CONFIDENCE) + UNSEEN_WEIGHT
    rotations = np.stack([np.eye(3)] + [_weighted_rotation(lifts[0], lifts[i], weights[0] * weights[i])
                                        for i in range(1, len(placed))])
    for _ in range(rounds):  # the average of the lifts in world axes, and each view turned onto it
        world = np.einsum("vj,vjk,vkl->jl", weights, lifts, rotations) / weights.sum(0)[:, None]
        rotations = np.stack([_weighted_rotation(world, lifts[i], weights[i]) for i in range(len(placed))])
        rotations = rotations @ rotations[0].T  # world stays the first placed view's axes
    joints = np.einsum("vj,vjk,vkl->jl", weights, lifts, rotations) / weights.sum(0)[:, None]
    size = np.sqrt((joints ** 2).sum(1).mean())
    evidence = keypoints[placed]
    views = [cameras[v] for v in placed]
    for _ in range(rounds if len(placed) > 1 else 0):
        try:
            estimate = [Camera(c.name, c.K, R, _camera_position(joints, R, k, c), c.width, c.height, c.dist)
                        for c, R, k in zip(views, rotations, evidence)]
        except InputError:  # a degenerate view placed absurdly far: keep the rotations found so far
            break
        try:
            triangulated = triangulate(evidence, estimate).joints3d
        except ValueError:  # too few joints agree with the placed cameras: keep the lifts
            break
        found = np.all(np.isfinite(triangulated), axis=1)
        if not found[root] or found.sum() < 6:
            break
        triangulated = triangulated - triangulated[root]
        triangulated *= size / np.sqrt((triangulated[found] ** 2).sum(1).mean())
        joints = np.where(found[:, None], triangulated, joints)
        for i, (camera, k) in enumerate(zip(estimate, evidence)):
            usable = (k[:, 2] >= MIN_CONFIDENCE) & found
            if usable.sum() < 6:
                continue
            turn = cv2.Rodrigues(camera.R)[0]
            ok, turn, _ = cv2.solvePnP(joints[usable], k[usable, :2].astype(np.float64), camera.K, camera.dist,
                                       turn, camera.t.reshape(3, 1).copy(), useExtrinsicGuess=True,
                                       flags=cv2.SOLVEPNP_ITERATIVE)
            turned = cv2.Rodrigues(turn)[0]
            lifted_rotation = _weighted_rotation(joints, lifts[i], weights[i])
            if ok and angle_between_deg(turned, lifted_rotation) <= MAX_TURN_FROM_LIFT_DEG:
                rotations[i] = turned
        anchor = rotations[0].copy()  # back to the first placed view's axes
        rotations, joints = rotations @ anchor.T, joints @ anchor.T
    every = np.full((len(cameras), 3, 3), np.nan)
    every[placed] = rotations
    translations = np.full((len(cameras), 3), np.nan)
    translations[placed] = [_camera_position(joints, R, k, c) for R, k, c in zip(rotations, evidence, views)]
    return SelfCalibration(every, joints, translations)

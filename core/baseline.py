"""The classical baseline HeatFormer is compared with: multiview SMPLify-style fitting of the body model to the same
2D evidence with the same calibrated cameras.

Starting from the rest pose placed and turned by the triangulated torso, Adam minimises, over all views, the
confidence-weighted robust (Geman-McClure) reprojection error of the 17 joints, plus an L2 pose prior and an L2
shape prior — first orientation and translation on the torso joints, then everything. SMPLify's GMM pose prior
is fitted to registration-only data, so it is not used.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from core.body_model import BodyModel
from core.cameras import project_points_torch, stack_cameras
from core.fusion import TORSO, torso_orientation
from core.inference import evidence_keypoints, triangulate_sample
from core.joints import H36M17
from core.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from core.sample import MultiviewSample

@dataclass
class FitSettings:
    stage_steps: tuple[int, int] = (40, 160)  # orientation + translation on the torso, then everything
    lr: float = 0.03
    robust_sigma: float = 0.15  # Geman-McClure scale, as a fraction of the image diagonal (SMPLify: 100 px)
    pose_prior: float = 2e-4
    shape_prior: float = 1e-4


@dataclass
class BaselineFit:
    global_orient: np.ndarray  # (3,) axis-angle, world
    body_pose: np.ndarray  # (69,)
    betas: np.ndarray  # (10,)
    transl: np.ndarray  # (3,)
    joints3d: np.ndarray  # (17, 3) world, metres
    vertices: np.ndarray  # (N, 3) world, metres
    seconds: float
    reprojection_px: float  # confidence-weighted mean over views and joints


def _initial_placement(body: BodyModel, fused_joints: np.ndarray, root: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Orientation (axis-angle) and translation that put the rest pose's torso on the triangulated one."""
    with torch.no_grad():
        rest = body.rest().joints_h36m[0].cpu().numpy()
    rotation = torso_orientation(rest, fused_joints)
    rotation = np.eye(3) if rotation is None else rotation
    orient = matrix_to_axis_angle(torch.as_tensor(rotation, dtype=torch.float32)).numpy()
    pelvis = rest[H36M17.index("pelvis")]
    return orient, root - pelvis  # the global rotation turns the body about its pelvis


def fit_smplify(sample: MultiviewSample, body: BodyModel, settings: FitSettings | None = None,
                device: str | torch.device = "cpu") -> BaselineFit:
    """Fit ``body`` to ``sample``'s 2D evidence in its calibrated views (ground truth is never read)."""
    settings = settings or FitSettings()
    device = torch.device(device)
    body = body.to(device)
    start = time.perf_counter()
    keypoints = evidence_keypoints(sample)
    fused = triangulate_sample(sample, keypoints, "the baseline needs at least two calibrated views")
    orient0, transl0 = _initial_placement(body, fused.joints3d, fused.root)

    cams = stack_cameras(sample.cameras, device=device)
    target = torch.as_tensor(keypoints[..., :2], device=device)
    confidence = torch.as_tensor(keypoints[..., 2], device=device)
    diagonal = torch.as_tensor([np.hypot(c.width, c.height) for c in sample.cameras], dtype=torch.float32,
                               device=device)[:, None]
    torso = torch.zeros(len(H36M17.names), dtype=torch.bool, device=device)
    torso[TORSO] = True

    def tensor(value):
        return torch.tensor(np.asarray(value), dtype=torch.float32, device=device, requires_grad=True)

    orient, transl = tensor(orient0), tensor(transl0)
    pose, betas = tensor(np.zeros(69)), tensor(np.zeros(body.num_betas))

    def joints() -> torch.Tensor:
        rotations = axis_angle_to_matrix(torch.cat([orient, pose]).reshape(24, 3))
        return body.joints_h36m(rotations[None, :1], rotations[None, 1:], betas[None])[0] + transl

    def reprojection(points: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        uv, depth = project_points_torch(points[None], cams["K"], cams["R"], cams["t"], cams["dist"])
        residual = ((uv - target).norm(dim=-1) / diagonal) ** 2
        robust = residual / (residual + settings.robust_sigma ** 2)
        weights = weights * (depth > 0)
        return (weights * robust).sum() / weights.sum().clamp_min(1e-6)

    stages = ((settings.stage_steps[0], [orient, transl], confidence * torso, False),
              (settings.stage_steps[1], [orient, transl, pose, betas], confidence, True))
    for steps, params, weights, with_priors in stages:
        optimiser = torch.optim.Adam(params, lr=settings.lr)
        for _ in range(steps):
            optimiser.zero_grad()
            loss = reprojection(joints(), weights)
            if with_priors:
                loss = loss + settings.pose_prior * (pose ** 2).sum() + settings.shape_prior * (betas ** 2).sum()
            loss.backward()
            optimiser.step()

    with torch.no_grad():
        out = body(orient[None], pose[None], betas[None], transl[None])
        uv, _ = project_points_torch(out.joints_h36m, cams["K"], cams["R"], cams["t"], cams["dist"])
        error = (uv - target).norm(dim=-1)
        reprojection_px = float((error * confidence).sum() / confidence.sum().clamp_min(1e-6))
    seconds = time.perf_counter() - start
    return BaselineFit(orient.detach().cpu().numpy(), pose.detach().cpu().numpy(), betas.detach().cpu().numpy(),
                       transl.detach().cpu().numpy(), out.joints_h36m[0].cpu().numpy(), out.vertices[0].cpu().numpy(),
                       seconds, reprojection_px)

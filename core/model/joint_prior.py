"""A learnt prior on where a body's joints lie, given its triangulated ones: calibrated mode's start is read off
the joints it returns (`HeatFormerConfig.joint_prior`).

Triangulation fits each joint alone, so its detector jitter and misses stay in the joints, and the closed-form
start (core.inverse_kinematics) turns every bone onto them exactly. Bodies are not free sets of 17 points: a
network that sees all the joints at once, in the body's own frame, learns which of their configurations occur and
moves the triangulated ones towards them, filling in joints that were not triangulated. Not in the paper (its
AdaFuse fuses heatmaps instead); trained on its own (`core.prior_training`), on synthetic bodies.
"""
from __future__ import annotations

import torch
from torch import nn

from core.model.layers import mlp

SCALE_M = 0.5  # metres per unit of the network's input
STEP_M = 0.1  # metres per unit of its output, a correction of the input


class JointPrior(nn.Module):
    def __init__(self, num_joints: int, width: int, depth: int = 3):
        super().__init__()
        self.net = mlp(num_joints * 4, width, depth, num_joints * 3)
        nn.init.zeros_(self.net[-1].weight)  # an untrained prior returns the triangulated joints as they are
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, joints: torch.Tensor) -> torch.Tensor:
        """(N, J, 3) triangulated joints relative to the root, in the body's frame (NaN where not triangulated) ->
        (N, J, 3) where the true ones likely are, relative to the root, every joint filled in."""
        seen = torch.isfinite(joints).all(-1, keepdim=True)
        known = torch.where(seen, joints, torch.zeros_like(joints))
        features = torch.cat([known / SCALE_M, seen.to(joints.dtype)], -1).flatten(1)
        out = known + STEP_M * self.net(features).view_as(joints)
        return out - out[:, :1]

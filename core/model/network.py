"""The HeatFormer network: a neural optimizer that refines per-view SMPL parameters over decoder iterations.

Iteration 0: mean body pose and shape (with `pose_init` "triangulated", calibrated: those read off the triangulated
joints) with a global orientation and camera estimated per view. Iteration k:
render the current estimate's joints as heatmaps in every view, encode them with the HeatEncoder, let the decoder
compare them (queries) with the input heatmaps and the image (keys/values; see `image_features`) across all
views, and add the decoded residuals to the body pose (6D) and shape (and, with `refine_orientation`, to the
global orientation). With `joint_offsets` the queries also carry each joint's offset from the estimate to the
evidence in the heatmaps, with `triangulated_offsets` its 3D offset to the triangulated joints.
`forward` returns every iteration's state.
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, fields

import numpy as np
import torch
from torch import nn

from core.body_model import BodyModel
from core.fusion import TORSO, procrustes_rotation
from core.heatmaps import decode_heatmaps, render_coarse_heatmaps, render_heatmaps
from core.joints import H36M17
from core.model.config import HeatFormerConfig
from core.model.geometry import MODES, ViewGeometry
from core.model.heat_encoder import HeatEncoder
from core.model.image_encoder import build_image_encoder
from core.model.joint_prior import JointPrior
from core.model.view_lifter import ViewLifter
from core.model.layers import Block, PositionalEncoding3D
from core.rotations import matrix_to_rot6d, rot6d_to_matrix

ROOT = H36M17.index("pelvis")
KNEES_AND_ANKLES = [H36M17.index(n) for n in ("left_knee", "right_knee", "left_ankle", "right_ankle")]
# A person upright in front of a camera: the y-up, +z-facing body turned by 180 degrees about x.
FACING_CAMERA = torch.diag(torch.tensor([1.0, -1.0, -1.0]))
WEAK_PERSPECTIVE_INIT = (0.9, 0.0, 0.0)  # a 1.7 m person filling about 80 % of the crop height
LONGEST_RUN = 8  # the most iterations inference runs (HeatFormerConfig.iterations' limit)


@dataclass
class IterationState:
    """One iteration's estimate for every view, batched (B, V, ...)."""

    global_orient: torch.Tensor  # (B, V, 3, 3) body -> camera rotation
    body_pose: torch.Tensor  # (B, V, 23, 3, 3)
    betas: torch.Tensor  # (B, V, 10)
    cam: torch.Tensor  # (B, V, 3) weak-perspective camera (uncalibrated mode)
    joints: torch.Tensor  # (B, V, J, 3) H36M joints, camera orientation, root at the origin
    root: torch.Tensor  # (B, V, 3) where the root joint was before centring (body-model frame, rotated)
    heatmap_joints: torch.Tensor  # (B, V, J, 2) where they land in the heatmaps
    heatmaps: torch.Tensor  # (B, V, J, H, W) rendered from this estimate

    def select(self, index: int) -> IterationState:
        """Batch element ``index`` alone (the batch dimension kept, of size 1)."""
        return IterationState(**{f.name: getattr(self, f.name)[index:index + 1] for f in fields(self)})


class OrientationHead(nn.Module):
    """Per view, one learned query attends to the view's feature tokens and gives a 6D global orientation and a
    weak-perspective camera (official: GCEstimator, used once before the iterations)."""

    def __init__(self, config: HeatFormerConfig, context_dim: int):
        super().__init__()
        self.query = nn.Parameter(torch.randn(1, 1, config.orient_dim) * 0.02)
        self.blocks = nn.ModuleList(Block(config.orient_dim, config.orient_heads, config.orient_head_dim,
                                          config.orient_mlp, context_dim=context_dim, cross=True)
                                    for _ in range(config.orient_depth))
        self.orient = nn.Linear(config.orient_dim, 6)
        self.camera = nn.Linear(config.orient_dim, 3)
        for head in (self.orient, self.camera):
            nn.init.normal_(head.weight, std=1e-3)
            nn.init.zeros_(head.bias)

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """tokens (N, T, C) -> (6D orientation delta (N, 6), camera delta (N, 3))."""
        x = self.query.expand(tokens.shape[0], -1, -1)
        for block in self.blocks:
            x = block(x, tokens)
        return self.orient(x[:, 0]), self.camera(x[:, 0])


class HeatFormer(nn.Module):
    def __init__(self, config: HeatFormerConfig, body: BodyModel):
        super().__init__()
        config.validate()
        self.config = config
        # Not a registered submodule: checkpoints never carry body-model data (SMPL files are registration-only).
        object.__setattr__(self, "body", body)
        self.heat_encoder = HeatEncoder(config)
        self.image_encoder = build_image_encoder(config) if config.reads_images else None
        dim = config.token_dim
        context = config.image_dim + (config.heat_dim if config.orient_context == "image+heat" else 0)
        self.orientation = OrientationHead(config, context)
        self.position = PositionalEncoding3D(dim)
        self.query_embed = nn.Linear(dim, dim)
        self.decoder = nn.ModuleList(Block(dim, config.decoder_heads, config.decoder_head_dim, config.decoder_mlp,
                                           context_dim=dim, cross=True, cross_dropout=config.decoder_cross_dropout)
                                     for _ in range(config.decoder_depth))
        self.pose_head = nn.Linear(dim, 23 * 6)
        self.shape_head = nn.Linear(dim, body.num_betas)
        self.reset_update_heads()
        if config.joint_offsets:
            self.offset_embed = nn.Sequential(nn.Linear(config.num_joints * 3, dim), nn.GELU(), nn.Linear(dim, dim))
            nn.init.zeros_(self.offset_embed[-1].weight)  # as the orientation head below
            nn.init.zeros_(self.offset_embed[-1].bias)
            read = torch.ones(config.num_joints, dtype=torch.bool)
            if config.offset_joints == "above_knees":
                read[KNEES_AND_ANKLES] = False
            self.register_buffer("offset_read", read, persistent=False)  # a function of the config, not a weight
        if config.triangulated_offsets:
            self.triangulated_embed = nn.Sequential(nn.Linear(config.num_joints * 4, dim), nn.GELU(),
                                                    nn.Linear(dim, dim))
            nn.init.zeros_(self.triangulated_embed[-1].weight)
            nn.init.zeros_(self.triangulated_embed[-1].bias)
        if config.iteration_embedding:
            self.iteration_embed = nn.Parameter(torch.zeros(LONGEST_RUN, dim))
        if config.mode_embedding:
            self.mode_embed = nn.Parameter(torch.zeros(len(MODES), dim))
        if config.evidence_scale:
            self.scale_embed = nn.Sequential(nn.Linear(1, dim), nn.GELU(), nn.Linear(dim, dim))
            nn.init.zeros_(self.scale_embed[-1].weight)
            nn.init.zeros_(self.scale_embed[-1].bias)
        if config.step_gate:
            self.step_gate = nn.Sequential(nn.Linear(2, 32), nn.GELU(), nn.Linear(32, 1))
            nn.init.zeros_(self.step_gate[-1].weight)
            nn.init.zeros_(self.step_gate[-1].bias)
        if config.refine_orientation:
            # Zero: a network fine-tuned with this head starts as the same function as without it.
            self.orient_head = nn.Linear(dim, 6)
            nn.init.zeros_(self.orient_head.weight)
            nn.init.zeros_(self.orient_head.bias)
        self.joint_prior = JointPrior(config.num_joints, config.joint_prior) if config.joint_prior else None
        self.view_lifter = ViewLifter(config.num_joints, config.view_lifter) if config.view_lifter else None
        self.init_orient = nn.Parameter(matrix_to_rot6d(FACING_CAMERA))
        self.init_pose = nn.Parameter(matrix_to_rot6d(torch.eye(3).expand(23, 3, 3)).clone())
        self.init_betas = nn.Parameter(torch.zeros(body.num_betas))
        self.init_cam = nn.Parameter(torch.tensor(WEAK_PERSPECTIVE_INIT))
        self.stage_seconds: dict[str, float] = {}  # filled by `forward`, per stage, summed over iterations
        # Official checkpoints carry their 2D estimator (core.model.adafuse), set by the loader; with
        # `official_2d` the evidence of every sample comes from it rather than from the sample's own keypoints.
        self.adafuse: nn.Module | None = None
        self.official_2d = False
        self._rest_joints: np.ndarray | None = None

    def reset_update_heads(self) -> None:
        """Pose and shape heads that output almost nothing: every iteration then leaves the estimate nearly as it
        was, which a network fine-tuned onto a much closer start (`pose_init`) begins from."""
        for head in (self.pose_head, self.shape_head):
            nn.init.normal_(head.weight, std=1e-3)
            nn.init.zeros_(head.bias)

    def rescale_triangulated_offsets(self, previous_unit: float) -> None:
        """Weights fine-tuned from a network that read the triangulated offsets in ``previous_unit`` metres: the
        first layer's offset weights scaled so that the network is the same function in this config's unit."""
        with torch.no_grad():
            weight = self.triangulated_embed[0].weight.unflatten(1, (self.config.num_joints, 4))
            weight[..., :3] *= self.config.triangulated_offset_unit / previous_unit

    def rest_joints(self) -> np.ndarray:
        """(17, 3) H36M joints of the body model's rest pose (cached: the triangulated orientation reads them for
        every sample)."""
        if self._rest_joints is None:
            with torch.no_grad():
                self._rest_joints = self.body.rest().joints_h36m[0].cpu().numpy()
        return self._rest_joints

    @contextlib.contextmanager
    def _stage(self, name: str):
        start = time.perf_counter()
        yield
        self.stage_seconds[name] = self.stage_seconds.get(name, 0.0) + time.perf_counter() - start

    def encode_heatmaps(self, heatmaps: torch.Tensor) -> torch.Tensor:
        """(B, V, J, H, W) -> (B, V, C, rows, cols)."""
        b, v = heatmaps.shape[:2]
        return self.heat_encoder(heatmaps.flatten(0, 1)).unflatten(0, (b, v))

    def render_heatmaps(self, joints: torch.Tensor, visibility: torch.Tensor | None = None, estimate: bool = False
                        ) -> torch.Tensor:
        """(..., J, 2) heatmap pixels -> (..., J, H, W) heatmaps, rendered as this network was trained on them
        (`HeatFormerConfig.heatmap_render`); ``estimate``: rendered from the current estimate, not the evidence."""
        config = self.config
        if config.heatmap_render == "coarse":
            return render_coarse_heatmaps(joints, config.heatmap_size, config.sigma, config.coarse_grid,
                                          config.heatmap_window or 3.0, visibility, drop_outside=estimate)
        return render_heatmaps(joints, config.heatmap_size, config.sigma, visibility, config.heatmap_window)

    def offset_features(self, evidence: tuple[torch.Tensor, torch.Tensor], estimate: torch.Tensor) -> torch.Tensor:
        """(B, V, J*3): per joint, the offset from the estimate's heatmap position to the evidence's peak (in heatmap
        widths and heights, within one either way; zero where the evidence has no peak) and the evidence's peak
        value; joints whose offsets `HeatFormerConfig.offset_joints` leaves out read as unseen. The estimate is
        read, not differentiated: a joint behind a camera lands at an infinite position
        (training met one at step 1420 of its first run with offsets, and its loss became NaN)."""
        positions, peak = evidence
        width, height = self.config.heatmap_size
        peak = peak * self.offset_read
        seen = (peak > 0.1).unsqueeze(-1)
        offset = (positions - estimate.detach()) / estimate.new_tensor([width, height])
        offset = torch.nan_to_num(offset, nan=0.0).clamp(-1.0, 1.0)
        return torch.cat([torch.where(seen, offset, torch.zeros_like(offset)), peak.unsqueeze(-1)], -1).flatten(-2)

    def triangulated_features(self, geometry: ViewGeometry, estimate: torch.Tensor) -> torch.Tensor:
        """(B, V, J*4): per joint, the 3D offset from the estimate's root-relative joint (``estimate`` (B, V, J, 3),
        camera orientation) to the triangulated one (in `triangulated_offset_unit`s, within ten and a metre either
        way) and whether it was triangulated; all zeros without triangulated joints (uncalibrated mode). Read, not
        differentiated, as the heatmap offsets."""
        if geometry.joints_cam is None:
            return estimate.new_zeros(*estimate.shape[:2], estimate.shape[2] * 4)
        seen = torch.isfinite(geometry.joints_cam).all(-1, keepdim=True)
        offset = (torch.nan_to_num(geometry.joints_cam) - estimate.detach()).clamp(-1.0, 1.0)
        offset = (offset / self.config.triangulated_offset_unit).clamp(-10.0, 10.0)
        return torch.cat([torch.where(seen, offset, torch.zeros_like(offset)), seen.to(offset.dtype)], -1).flatten(-2)

    def evidence_scale_features(self, geometry: ViewGeometry) -> torch.Tensor:
        """(B, V, 1): log2 of the image pixels one heatmap pixel spans in each view's crop (`evidence_scale`)."""
        return torch.log2(geometry.boxes[..., 3:4].clamp_min(1.0) / self.config.heatmap_size[1])

    def pass_gate(self, scale: torch.Tensor, k: int) -> torch.Tensor:
        """(B, V, 1) the `step_gate` of pass ``k`` (passes past those trained read as the last) in each view, from
        the views' `evidence_scale_features` ``scale``."""
        index = torch.full_like(scale, float(min(k, self.config.iterations - 1)))
        return 2.0 * torch.sigmoid(self.step_gate(torch.cat([scale, index], -1)))

    def posed_torso_orientation(self, geometry: ViewGeometry, orient6d: torch.Tensor, pose6d: torch.Tensor,
                                betas: torch.Tensor) -> torch.Tensor:
        """(B, V, 6) each view's orientation that turns the estimate's own torso (its pose and shape, turned as
        the root's identity) onto the triangulated one (`torso_alignment` "posed"); ``orient6d`` where fewer than
        three torso joints were triangulated. Read from the estimate, not differentiated: it is a fit, as the
        triangulated rest torso of iteration 0 is."""
        b, v = betas.shape[:2]
        with torch.no_grad():
            upright = torch.eye(3, dtype=betas.dtype, device=betas.device).expand(b * v, 1, 3, 3)
            joints = self.body.joints_h36m(upright, rot6d_to_matrix(pose6d).flatten(0, 1), betas.flatten(0, 1))
            source = (joints - joints[:, ROOT: ROOT + 1])[:, TORSO].double().cpu().numpy()
            target = geometry.joints_cam.flatten(0, 1)[:, TORSO].double().cpu().numpy()
        seen = np.isfinite(target).all(-1, keepdims=True)  # (BV, T, 1); an unseen joint is left out of the fit
        count = np.maximum(seen.sum(1, keepdims=True), 1)
        target = np.nan_to_num(target)
        source = seen * (source - (seen * source).sum(1, keepdims=True) / count)
        target = seen * (target - (seen * target).sum(1, keepdims=True) / count)
        rotation = torch.as_tensor(np.swapaxes(procrustes_rotation(source, target), -1, -2), dtype=betas.dtype,
                                   device=betas.device)
        known = torch.as_tensor(seen.sum((1, 2)) >= 3, device=betas.device).unflatten(0, (b, v))[..., None]
        return torch.where(known, matrix_to_rot6d(rotation).unflatten(0, (b, v)), orient6d)

    def state(self, geometry: ViewGeometry, orient6d, pose6d, betas, cam) -> IterationState:
        """Pose the body for every view and render where its joints land."""
        b, v = betas.shape[:2]
        global_orient = rot6d_to_matrix(orient6d)
        body_pose = rot6d_to_matrix(pose6d)
        joints = self.body.joints_h36m(global_orient.flatten(0, 1)[:, None], body_pose.flatten(0, 1),
                                       betas.flatten(0, 1)).unflatten(0, (b, v))
        root = joints[..., ROOT, :]
        joints = joints - root[..., None, :]
        heatmap_joints = geometry.to_heatmap(joints, cam, ROOT)
        heatmaps = self.render_heatmaps(heatmap_joints, estimate=True)
        return IterationState(global_orient, body_pose, betas, cam, joints, root, heatmap_joints, heatmaps)

    def forward(self, images: torch.Tensor, heatmaps: torch.Tensor, geometry: ViewGeometry,
                iterations: int | None = None) -> list[IterationState]:
        """images (B, V, 3, Hi, Wi) normalised crops; heatmaps (B, V, J, H, W) input evidence in the crops.
        Returns iterations + 1 states: index 0 is the initial estimate."""
        iterations = self.config.iterations if iterations is None else iterations
        self.stage_seconds = {}
        b, v = heatmaps.shape[:2]
        rows, cols = self.config.grid
        if self.image_encoder is None:
            image_feat = heatmaps.new_zeros(b, v, self.config.image_dim, rows, cols)
        else:
            with self._stage("image encoder"):
                image_feat = self.image_encoder(images.flatten(0, 1)).unflatten(0, (b, v))  # (B, V, Ci, rows, cols)
        if image_feat.shape[-2:] != (rows, cols):
            raise ValueError(f"image features on a {tuple(image_feat.shape[-2:])} grid, heatmaps on {(rows, cols)}")
        with self._stage("heat encoder"):
            input_feat = self.encode_heatmaps(heatmaps)

        def tokens(feat):  # (B, V, C, rows, cols) -> (B, V, rows*cols, C)
            return feat.flatten(3).transpose(-1, -2)

        context = tokens(image_feat)
        if self.config.orient_context == "image+heat":
            context = torch.cat([context, tokens(input_feat)], dim=-1)
        with self._stage("orientation head"):
            d_orient, d_cam = self.orientation(context.flatten(0, 1))
        orient6d = (self.init_orient + d_orient).unflatten(0, (b, v))
        if self.config.orientation_init == "triangulated" and geometry.orient_cam is not None:
            known = torch.isfinite(geometry.orient_cam).flatten(-2).all(-1, keepdim=True)  # (B, V, 1)
            triangulated = matrix_to_rot6d(torch.nan_to_num(geometry.orient_cam))
            orient6d = torch.where(known, triangulated, orient6d)
        cam = (self.init_cam + d_cam).unflatten(0, (b, v))
        pose6d = self.init_pose.expand(b, v, 23, 6)
        betas = self.init_betas.expand(b, v, -1)
        if self.config.pose_init == "triangulated" and geometry.pose_init is not None:
            known = torch.isfinite(geometry.pose_init).flatten(1).all(1)[:, None, None]  # (B, 1, 1)
            triangulated = matrix_to_rot6d(torch.nan_to_num(geometry.pose_init))[:, None].expand(b, v, 23, 6)
            pose6d = torch.where(known[..., None], triangulated, pose6d)
            betas = torch.where(known, torch.nan_to_num(geometry.betas_init)[:, None].expand(b, v, -1), betas)

        position = self.position(v, rows, cols, heatmaps.device)  # (V*rows*cols, C)
        decoder_image = tokens(image_feat if self.config.image_features == "all" else torch.zeros_like(image_feat))
        keys = torch.cat([decoder_image, tokens(input_feat)], dim=-1).flatten(1, 2) + position
        with self._stage("decoder"):
            cross_context = [block.cross.keys_values(keys) for block in self.decoder]  # the same every iteration
        evidence = decode_heatmaps(heatmaps) if self.config.joint_offsets else None
        scale = self.evidence_scale_features(geometry)  # (B, V, 1), the same every iteration
        scale_offsets = self.scale_embed(scale) if self.config.evidence_scale else None
        with self._stage("body + heatmap rendering"):
            states = [self.state(geometry, orient6d, pose6d, betas, cam)]
        for k in range(iterations):
            with self._stage("heat encoder"):
                estimate_feat = self.encode_heatmaps(states[-1].heatmaps)
            with self._stage("decoder"):
                queries = torch.cat([decoder_image, tokens(estimate_feat)], dim=-1).flatten(1, 2) + position
                if self.config.query == "pooled":
                    queries = queries.unflatten(1, (v, rows * cols)).mean(2)  # one token per view
                x = self.query_embed(queries)
                offsets = []  # (B, V, C) each: one per view, added to every query of the view
                if evidence is not None:
                    offsets.append(self.offset_embed(self.offset_features(evidence, states[-1].heatmap_joints)))
                if self.config.triangulated_offsets:
                    offsets.append(self.triangulated_embed(self.triangulated_features(geometry, states[-1].joints)))
                if scale_offsets is not None:
                    offsets.append(scale_offsets)
                if self.config.iteration_embedding:
                    x = x + self.iteration_embed[min(k, self.config.iterations - 1)]  # as trained
                if self.config.mode_embedding:
                    x = x + self.mode_embed[MODES.index(geometry.mode)]
                for per_view_offsets in offsets:
                    x = x + (per_view_offsets if self.config.query == "pooled"
                             else per_view_offsets.repeat_interleave(rows * cols, 1))
                for block, context in zip(self.decoder, cross_context):
                    x = block(x, context)
                per_view = x if self.config.query == "pooled" else x.unflatten(1, (v, rows * cols)).mean(2)
                gate = self.pass_gate(scale, k) if self.config.step_gate else 1.0  # (B, V, 1)
                pose6d = pose6d + (gate * self.pose_head(per_view)).unflatten(-1, (23, 6))
                betas = betas + gate * self.shape_head(per_view)
                if self.config.refine_orientation:
                    orient6d = orient6d + self.orient_head(per_view)
            if self.config.torso_alignment == "posed" and geometry.joints_cam is not None:
                with self._stage("torso alignment"):
                    orient6d = self.posed_torso_orientation(geometry, orient6d, pose6d, betas)
            with self._stage("body + heatmap rendering"):
                states.append(self.state(geometry, orient6d, pose6d, betas, cam))
        return states

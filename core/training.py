"""Training the compact HeatFormer on synthetic multiview data generated on the fly (CPU or CUDA).

Supervision follows the paper (supplement Sec. 1): 3D joints, 2D joints, global orientation, body pose, betas,
vertices at every iteration, and a per-iteration heatmap loss (rendered-from-estimate vs input heatmaps). Our
weights are our own (metres and normalised pixels); the adversarial pose prior is not used. Every iteration is
supervised, later ones more, so that each decoder pass is trained to improve on the last.
"""
from __future__ import annotations

import contextlib
import copy
import json
import math
import time
from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from core.body_model import BodyModel
from core.crops import image_to_crop
from core.files import atomic_path
from core.errors import InputError
from core.inference import PreparedInput, prepare, stack_prepared
from core.model.checkpoint import load_model, save_checkpoint
from core.model.config import COMPACT, HeatFormerConfig
from core.model.geometry import ViewGeometry
from core.model.network import ROOT, HeatFormer
from core.render import render
from core.rotations import axis_angle_to_matrix
from core.sample import MultiviewSample
from core.synthetic import EvidenceFaults, RigConfig, generate_sample, rig_preset

# What fine-tuning (`init`) may change in a checkpoint's configuration: switches that add a zero-initialised head
# (the orientation refinement, the joint offsets of either kind, the iteration and mode embeddings) or drop a part
# (the image encoder), where an estimate starts (orientation, pose and shape), the number of iterations trained and
# the decoder's queries, spatial or pooled (the same weights either way), and the unit the triangulated offsets
# are read in (their embedding rescaled; values here only stand in for any).
FINE_TUNABLE = {"refine_orientation": False, "orientation_init": "head", "torso_alignment": "rest",
                "image_features": "all", "joint_offsets": False, "offset_joints": "all",
                "triangulated_offsets": False, "pose_init": "mean", "iteration_embedding": False,
                "mode_embedding": False, "evidence_scale": False, "step_gate": False, "iterations": 3,
                "query": "spatial", "triangulated_offset_unit": 1.0, "start_fit_steps": 0, "start_view_fit_steps": 0,
                "uncalibrated_fit_steps": 0}
TRAINING_DEPTH_LAYERS = 8  # frames drawn like the shipped sample's, but in depth slabs: much faster


def fast_render(meshes, camera, image=None):
    return render(meshes, camera, image, depth_layers=TRAINING_DEPTH_LAYERS)


def blank_frame(meshes, camera, image=None):
    """For a network that reads no frames (`image_features` "none"): drawing them would be wasted time."""
    return np.zeros((camera.height, camera.width, 3), dtype=np.uint8)


DESCRIPTION = "trained on synthetic multiview data only (free body model, random poses, rigs and detector faults)"


def describe(config: HeatFormerConfig) -> str:
    """The checkpoint's description: what it was trained on, and whether it reads the frames at all."""
    return DESCRIPTION if config.reads_images else DESCRIPTION + "; it reads the evidence's heatmaps, not the frames"


@dataclass
class LossWeights:
    joints3d: float = 1.0  # L1, metres, root-relative in each camera
    joints2d: float = 1.0  # L1, in units of the heatmap height
    orient: float = 0.2  # squared error of rotation matrices
    pose: float = 0.1
    betas: float = 0.01
    vertices: float = 1.0  # L1, metres, a fixed subset of vertices
    heatmap: float = 10.0  # mean squared error, peak 1


@dataclass
class TrainingConfig:
    steps: int = 3000
    batch_size: int = 8
    views: tuple[int, int] = (3, 5)  # views per batch, drawn in this range
    rigs: tuple[str, ...] = ("ring",)  # core.synthetic.RIG_PRESETS drawn from, one per batch
    iterations: int = 3
    lr: float = 3e-4
    weight_decay: float = 1e-4
    milestones: tuple[float, float] = (0.6, 0.85)  # fractions of `steps` where the rate drops x0.2
    image_size: tuple[int, int] = (256, 256)
    # frame widths drawn from, one per batch, in place of image_size's (empty: image_size's alone). The detector's
    # jitter is in pixels: on wider frames the triangulation is closer, and a start trained only on 256-pixel frames
    # does not know that (docs/training-design.md)
    image_widths: tuple[int, ...] = ()
    # the body in the frames clustered on a grid of this many metres (0: the full mesh): the frames cost per face,
    # and at the crops' 96x128 pixels a 3 cm body differs from the full one in about 1 % of them
    render_cell: float = 0.03
    appearance: bool = False  # dressed people, cluttered backgrounds, camera faults (core.appearance)
    definition_offset_m: float = 0.0  # core.synthetic.EvidenceFaults: detector joints defined unlike the body's
    bend_deg: float = 0.0  # core.synthetic.generate_sample: bodies bent forward at the hips, of this spread
    fresh_heads: bool = False  # fine-tuning: the pose and shape heads start anew (HeatFormer.reset_update_heads)
    # fine-tuning: the learning rate of parameters the checkpoint lacks (a switch's new embedding), times the rest's.
    # An embedding that starts at zero moves by about the learning rate a step under AdamW: at 1e-4, thousands of
    # steps pass before it can change what the decoder does.
    new_lr_scale: float = 1.0
    # calibrated mode's closed-form start (`pose_init`), each joint turned by a random rotation of this spread
    # (degrees per axis) in half the samples, their betas moved by a tenth of it: a decoder that always starts
    # from the same kind of estimate can learn one correction and apply it at every pass; from starts of every
    # kind it must read how far the estimate is from the evidence
    start_noise_deg: float = 0.0
    # Which iterations the losses on the evidence (the 2D joints and the rendered heatmaps) reach: "all", or "start":
    # the 2D joints' at iteration 0 alone, which trains the uncalibrated weak-perspective camera, and no heatmap
    # loss. From a start nearer the truth than the evidence, they rewarded the passes for pulling the body back
    # towards the raw triangulation; without any, the camera went untrained (runs 47-48, docs/training-design.md).
    evidence_losses: str = "all"
    seed: int = 0
    log_every: int = 20
    save_every: int = 200
    weights: LossWeights = field(default_factory=LossWeights)

    def __post_init__(self):
        if self.evidence_losses not in ("all", "start"):  # the CLI offers the same two
            raise ValueError(f"evidence_losses is 'all' or 'start', not {self.evidence_losses!r}")


@dataclass
class Targets:
    orient: torch.Tensor  # (B, V, 3, 3) body -> camera
    pose: torch.Tensor  # (B, 23, 3, 3)
    betas: torch.Tensor  # (B, 10)
    joints3d: torch.Tensor  # (B, V, J, 3) root-relative, camera axes
    joints2d: torch.Tensor  # (B, V, J, 2) heatmap pixels
    visible: torch.Tensor  # (B, V, J) inside the image
    vertices: torch.Tensor  # (B, V, n, 3) root-relative, camera axes, the supervised subset


def draw_rig(rng: np.random.Generator, config: TrainingConfig) -> RigConfig:
    """One of the run's rigs, with a view count in its range: a batch's cameras."""
    views = int(rng.integers(config.views[0], config.views[1] + 1))
    name = str(rng.choice(config.rigs))
    width = int(rng.choice(config.image_widths)) if config.image_widths else config.image_size[0]
    return rig_preset(name, views=views, width=width)


def draw_sample(body: BodyModel, rng: np.random.Generator, rig: RigConfig, config: TrainingConfig,
                reads_images: bool) -> MultiviewSample:
    """A fresh synthetic sample in ``rig``: a random body, 0-2 occluders, the run's detector faults; frames drawn
    only for a network that reads them."""
    return generate_sample(body, int(rng.integers(2 ** 31)), rig, occluders=int(rng.integers(0, 3)),
                           faults=EvidenceFaults(definition_offset_m=config.definition_offset_m),
                           renderer=fast_render if reads_images else blank_frame, render_cell=config.render_cell,
                           appearance=config.appearance and reads_images, bend_deg=config.bend_deg)


def make_batch(model: HeatFormer, rng: np.random.Generator, config: TrainingConfig, mode: str, vertex_index,
               device: torch.device) -> tuple[PreparedInput, Targets]:
    """A batch of fresh synthetic samples, prepared exactly as at inference, with their targets."""
    body = model.body
    rig = draw_rig(rng, config)
    items, truths = [], []
    while len(items) < config.batch_size:
        sample = draw_sample(body, rng, rig, config, model.config.reads_images)
        try:
            items.append(prepare(sample, model, mode, device))
        except Exception:  # e.g. too few views agree to triangulate: draw another sample
            continue
        truths.append(sample)
    prepared = stack_prepared(items, mode)
    if config.start_noise_deg > 0 and prepared.geometry.pose_init is not None:
        prepared = replace(prepared, geometry=perturbed_start(prepared.geometry, rng, config.start_noise_deg))
    gt = [s.ground_truth for s in truths]
    R = torch.tensor(np.stack([[c.R for c in s.cameras] for s in truths]), dtype=torch.float32, device=device)
    world_orient = axis_angle_to_matrix(torch.tensor(np.stack([g.global_orient for g in gt]), dtype=torch.float32,
                                                     device=device))
    pose = axis_angle_to_matrix(torch.tensor(np.stack([g.body_pose for g in gt]), dtype=torch.float32,
                                             device=device).reshape(-1, 23, 3))
    betas = torch.tensor(np.stack([g.betas for g in gt]), dtype=torch.float32, device=device)
    joints_world = torch.tensor(np.stack([g.joints3d for g in gt]), dtype=torch.float32, device=device)
    out = body.posed(world_orient[:, None], pose, betas)
    root_world = out.joints_h36m[:, ROOT]
    verts = out.vertices[:, vertex_index] - root_world[:, None]
    rel = joints_world - joints_world[:, ROOT: ROOT + 1]
    uv = torch.tensor(np.stack([np.stack([c.project(g.joints3d)[0] for c in s.cameras]) for s, g in zip(truths, gt)]),
                      dtype=torch.float32, device=device)
    sizes = torch.tensor([[c.width, c.height] for c in truths[0].cameras], dtype=torch.float32, device=device)
    visible = ((uv >= 0) & (uv < sizes[None, :, None])).all(-1)
    targets = Targets(
        orient=R @ world_orient[:, None], pose=pose, betas=betas,
        joints3d=torch.einsum("bvij,bnj->bvni", R, rel), joints2d=image_to_crop(uv, prepared.geometry.boxes,
                                                                             model.config.heatmap_size),
        visible=visible, vertices=torch.einsum("bvij,bnj->bvni", R, verts))
    return prepared, targets


def perturbed_start(geometry: ViewGeometry, rng: np.random.Generator, spread_deg: float) -> ViewGeometry:
    """``geometry`` whose closed-form start is turned, joint by joint, by random rotations of ``spread_deg`` per
    axis in about half the samples (the others kept), with betas moved by ``spread_deg / 10`` (TrainingConfig.
    start_noise_deg)."""
    pose, betas = geometry.pose_init, geometry.betas_init
    chosen = torch.as_tensor(rng.random(pose.shape[0]) < 0.5, dtype=pose.dtype)
    turn = rng.normal(0.0, np.radians(spread_deg), pose.shape[:2] + (3,))
    turn = axis_angle_to_matrix(torch.as_tensor(turn, dtype=pose.dtype) * chosen[:, None, None])
    shift = torch.as_tensor(rng.normal(0.0, spread_deg / 10, betas.shape), dtype=betas.dtype) * chosen[:, None]
    return replace(geometry, pose_init=pose @ turn, betas_init=betas + shift)


@contextlib.contextmanager
def single_threaded():
    """Torch and the BLAS libraries on one thread meanwhile, restored after. A float sum split over threads
    depends on how many there are, and the DataLoader's workers run torch on one thread while this process may
    run many: on one thread everywhere, a batch comes out bit for bit the same wherever it is drawn."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            yield
    finally:
        torch.set_num_threads(threads)


class SyntheticBatches(torch.utils.data.Dataset):
    """Batch ``step`` of a run, drawn on the CPU from its own generator seeded by (seed, step): bit for bit the
    same batches however many worker processes make them and however many threads they have (see
    `single_threaded`), and again after a resume. ``model`` supplies the configuration and body model (its
    weights are not used), so it must be on the CPU."""

    def __init__(self, model: HeatFormer, config: TrainingConfig, vertex_index: torch.Tensor):
        self.model, self.config, self.vertex_index = model, config, vertex_index.cpu()

    def __len__(self) -> int:
        return self.config.steps

    def __getitem__(self, step: int) -> tuple[str, PreparedInput, Targets]:
        rng = np.random.default_rng([self.config.seed, step])
        mode = "calibrated" if rng.random() < 0.6 else "uncalibrated"
        with torch.no_grad(), single_threaded():
            prepared, targets = make_batch(self.model, rng, self.config, mode, self.vertex_index,
                                           torch.device("cpu"))
        return mode, prepared, targets


def moved(value, device: torch.device):
    """``value`` with every tensor in it (through nested dataclasses) on ``device``."""
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if is_dataclass(value):
        return replace(value, **{f.name: moved(getattr(value, f.name), device) for f in fields(value) if f.init})
    return value


def compute_losses(model: HeatFormer, states, prepared: PreparedInput, targets: Targets, vertex_index,
                   weights: LossWeights, evidence_losses: str = "all") -> dict[str, torch.Tensor]:
    body = model.body
    height = model.config.heatmap_size[1]
    n = len(states) - 1
    zero = torch.zeros((), device=prepared.heatmaps.device)  # a term no iteration reaches is still a tensor
    terms = {k: zero for k in ("joints3d", "joints2d", "orient", "pose", "betas", "vertices", "heatmap")}
    visible = targets.visible.float()[..., None]
    for k, state in enumerate(states):
        w = 1.0 if k == 0 else 1.0 + k / n  # later iterations count more
        b, v = state.betas.shape[:2]
        if k == 0 or evidence_losses == "all":
            error2d = ((state.heatmap_joints - targets.joints2d).abs() * visible).sum()
            terms["joints2d"] = terms["joints2d"] + w * error2d / (visible.sum() * 2 * height).clamp_min(1)
        if k == 0 or model.config.refine_orientation:
            terms["orient"] = terms["orient"] + w * ((state.global_orient - targets.orient) ** 2).mean()
        if k == 0:
            continue
        terms["joints3d"] = terms["joints3d"] + w * (state.joints - targets.joints3d).abs().mean()
        terms["pose"] = terms["pose"] + w * ((state.body_pose - targets.pose[:, None]) ** 2).mean()
        terms["betas"] = terms["betas"] + w * ((state.betas - targets.betas[:, None]) ** 2).mean()
        rotations = torch.cat([state.global_orient.flatten(0, 1)[:, None], state.body_pose.flatten(0, 1)], dim=1)
        verts = body._skin(rotations, state.betas.flatten(0, 1), vertex_index).unflatten(0, (b, v))
        terms["vertices"] = terms["vertices"] + w * (verts - state.root[..., None, :] - targets.vertices).abs().mean()
        if evidence_losses == "all":
            terms["heatmap"] = terms["heatmap"] + w * ((state.heatmaps - prepared.heatmaps) ** 2).mean()
    losses = {name: getattr(weights, name) * value for name, value in terms.items()}
    losses["total"] = sum(losses.values())
    return losses


def train(out: Path, config: TrainingConfig, body: BodyModel, model_config: HeatFormerConfig = COMPACT,
          device: str | None = None, resume: bool = False, log: Callable[[str], None] = print,
          should_stop: Callable[[], bool] = lambda: False, init: Path | None = None, workers: int = 0) -> HeatFormer:
    """Train and save to ``out`` (our checkpoint format) every `save_every` steps and at the end; ``resume``
    continues from ``out``'s training state; ``init`` starts from a checkpoint's weights (with a fresh optimiser
    and schedule: fine-tuning). ``workers`` processes draw the batches while the network trains (0: between
    steps, in this process); the batches are the same either way. Losses go to ``out`` + '.log.jsonl'."""
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    torch.manual_seed(config.seed)
    model_config = replace(model_config, iterations=config.iterations)  # inference runs as many by default
    start = load_model(init, body) if init is not None else None
    if start is not None:  # the start's priors are trained on their own (core.prior_training) and kept as they are
        model_config = replace(model_config, joint_prior=start.config.joint_prior,
                               view_lifter=start.config.view_lifter)
    if model_config.uncalibrated_fit_steps and not model_config.view_lifter:
        raise ValueError("uncalibrated_fit_steps fits the views a view lifter places: start from a checkpoint "
                         "with one (train-prior --part views)")
    model = HeatFormer(model_config, body.to(device)).to(device).train()
    new_parameters: list[str] = []
    if start is not None:
        if replace(start.config, **FINE_TUNABLE) != replace(model_config, **FINE_TUNABLE):
            raise InputError(init, "the checkpoint's network configuration differs from the one being trained")
        loaded = model.load_state_dict(start.state_dict(), strict=False)
        if loaded.unexpected_keys:  # a switch turned off (refine_orientation, image_features): its weights go
            modules = sorted({key.split(".")[0] for key in loaded.unexpected_keys})
            log(f"dropped, its switch is off: {', '.join(modules)}")
        if loaded.missing_keys:
            log(f"new, not in the checkpoint: {', '.join(loaded.missing_keys)}")
            new_parameters = loaded.missing_keys
        log(f"starting from the weights of {start.identity}")
        previous_unit = start.config.triangulated_offset_unit
        if model_config.triangulated_offsets and start.config.triangulated_offsets \
                and previous_unit != model_config.triangulated_offset_unit:
            model.rescale_triangulated_offsets(previous_unit)
            log(f"triangulated offsets read in units of {model_config.triangulated_offset_unit} m, not "
                f"{previous_unit} m: the embedding's first layer rescaled")
        if config.fresh_heads:
            model.reset_update_heads()
            log("the pose and shape heads start anew")
    groups = [[p for n, p in model.named_parameters() if (n in new_parameters) == new] for new in (False, True)]
    optimizer = torch.optim.AdamW([{"params": groups[0]},
                                   {"params": groups[1], "lr": config.lr * config.new_lr_scale}],
                                  lr=config.lr, weight_decay=config.weight_decay)
    milestones = [int(config.steps * f) for f in config.milestones]
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones, gamma=0.2)
    step = 0
    state_path = out.with_suffix(".training.pt")
    if resume and state_path.exists():
        saved = torch.load(state_path, map_location=device, weights_only=False)
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        step = saved["step"]
        log(f"resumed at step {step}")
    vertex_index = torch.arange(0, body.num_vertices, 16, device=device)
    log_path = out.with_suffix(".log.jsonl")
    started = time.perf_counter()

    def save():
        model.eval()
        save_checkpoint(model, out, describe(model.config), {"training": {**asdict(config), "steps_done": step,
                                                               "seconds": time.perf_counter() - started,
                                                               "device": str(device)}})
        with atomic_path(state_path) as tmp:
            torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(), "step": step}, tmp)
        model.train()

    # the batch makers need the body model and configuration on the CPU: a copy when the network is elsewhere
    maker = model if device.type == "cpu" else copy.deepcopy(model).cpu()
    batches = torch.utils.data.DataLoader(SyntheticBatches(maker, config, vertex_index), batch_size=None,
                                          sampler=range(step, config.steps), num_workers=workers)
    logged = (step, started)  # the step and time of the last log entry
    for mode, prepared, targets in batches:
        if should_stop():
            break
        prepared, targets = moved(prepared, device), moved(targets, device)
        states = model(prepared.images, prepared.heatmaps, prepared.geometry, config.iterations)
        losses = compute_losses(model, states, prepared, targets, vertex_index, config.weights,
                                config.evidence_losses)
        if not math.isfinite(losses["total"].item()):
            raise FloatingPointError(f"loss became {losses['total'].item()} at step {step}")
        optimizer.zero_grad(set_to_none=True)
        losses["total"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        step += 1
        if step % config.log_every == 0 or step == 1:
            now = time.perf_counter()
            rate = (step - logged[0]) * config.batch_size / max(now - logged[1], 1e-9)  # since the last entry
            logged = (step, now)
            entry = {"step": step, "mode": mode, "seconds": round(now - started, 1),
                     "samples_per_s": round(rate, 2), "lr": scheduler.get_last_lr()[0],
                     **{k: round(float(v.detach()), 5) for k, v in losses.items()}}
            with open(log_path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(entry) + "\n")
            log(json.dumps(entry))
        if step % config.save_every == 0:
            save()
    save()
    return model.eval()

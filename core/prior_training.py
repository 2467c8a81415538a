"""Training of the joint prior (core.model.joint_prior) on its own: pairs of triangulated and true joints of fresh
synthetic samples, drawn as the network's training draws its batches, then a regression of one onto the other.

Drawing dominates (tens of milliseconds a sample: the body, the evidence and its triangulation, no frames); the
regression takes a minute or two on one CPU core. The rest of the checkpoint it starts from is kept as it was.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from core.body_model import BodyModel
from core.errors import InputError
from core.fusion import torso_orientation, triangulate
from core.inference import evidence_keypoints
from core.model.checkpoint import load_model, save_checkpoint
from core.model.network import ROOT, HeatFormer
from core.training import TrainingConfig, describe, draw_rig, draw_sample, single_threaded


class PriorPairs(torch.utils.data.Dataset):
    """Batch ``index`` of (triangulated, true) root-relative joints (N, 17, 3) in the triangulated torso's frame,
    from a generator seeded by (seed, index) alone: the same pairs for any number of workers."""

    def __init__(self, body: BodyModel, rest_joints: np.ndarray, config: TrainingConfig, batches: int):
        self.body, self.rest, self.config, self.batches = body, rest_joints, config, batches

    def __len__(self) -> int:
        return self.batches

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng([self.config.seed, index])
        rig = draw_rig(rng, self.config)
        inputs, truths = [], []
        with torch.no_grad(), single_threaded():
            for _ in range(self.config.batch_size):
                sample = draw_sample(self.body, rng, rig, self.config, reads_images=False)
                try:
                    fused = triangulate(evidence_keypoints(sample), sample.cameras)
                except ValueError:  # nothing triangulated: the network falls back on its mean there too
                    continue
                world = torso_orientation(self.rest, fused.joints3d)
                if world is None:
                    continue
                truth = np.asarray(sample.ground_truth.joints3d)
                inputs.append((fused.joints3d - fused.root) @ world)
                truths.append((truth - truth[ROOT]) @ world)
        shape = (-1, len(self.rest), 3)
        return np.asarray(inputs, np.float32).reshape(shape), np.asarray(truths, np.float32).reshape(shape)


def mean_joint_error(model: HeatFormer, inputs: torch.Tensor, truths: torch.Tensor) -> torch.Tensor:
    """Mean distance (metres) of the prior's joints from the true ones."""
    return (model.joint_prior(inputs) - truths).norm(dim=-1).mean()


def train_joint_prior(out: Path, init: Path, body: BodyModel, config: TrainingConfig, samples: int, width: int,
                      workers: int = 0, log: Callable[[str], None] = print,
                      should_stop: Callable[[], bool] = lambda: False) -> HeatFormer:
    """A joint prior of ``width`` trained into the network of ``init`` (calibrated mode's start must be read off
    the triangulated joints: `pose_init` "triangulated"), saved to ``out``: ``samples`` pairs drawn (a twentieth
    held out, their error logged), then ``config.steps`` AdamW steps of 256 pairs at ``config.lr``, cosine-decayed.
    Losses go to ``out`` + '.log.jsonl'."""
    torch.manual_seed(config.seed)
    start = load_model(init, body)
    if start.config.pose_init != "triangulated":
        raise InputError(init, "its calibrated start is the mean pose: the joint prior moves the joints that "
                               "--pose-init triangulated reads the start off")
    model = HeatFormer(replace(start.config, joint_prior=width), body).eval()
    # a prior the checkpoint has already is replaced by the new one
    model.load_state_dict({k: v for k, v in start.state_dict().items() if not k.startswith("joint_prior.")},
                          strict=False)
    started = time.perf_counter()
    pairs = PriorPairs(body, model.rest_joints(), config, -(-samples // config.batch_size))
    inputs, truths = [], []
    for k, (x, y) in enumerate(torch.utils.data.DataLoader(pairs, batch_size=None, num_workers=workers)):
        if should_stop():
            raise InterruptedError("stopped while drawing the joint prior's samples")
        inputs.append(torch.as_tensor(x))
        truths.append(torch.as_tensor(y))
        if (k + 1) % 100 == 0:
            log(f"drew {sum(len(batch) for batch in inputs)} samples in {time.perf_counter() - started:.0f} s")
    inputs, truths = torch.cat(inputs), torch.cat(truths)
    held = max(1, len(inputs) // 20)
    optimizer = torch.optim.AdamW(model.joint_prior.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, config.steps)
    generator = torch.Generator().manual_seed(config.seed)
    log_path = out.with_suffix(".log.jsonl")
    model.joint_prior.train()
    for step in range(1, config.steps + 1):
        if should_stop():
            break
        pick = held + torch.randint(0, len(inputs) - held, (256,), generator=generator)
        loss = mean_joint_error(model, inputs[pick], truths[pick])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        if step % config.log_every == 0 or step == config.steps:
            with torch.no_grad():
                held_out = mean_joint_error(model, inputs[:held], truths[:held])
                untouched = (inputs[:held].nan_to_num() - truths[:held]).norm(dim=-1).mean()
            entry = {"step": step, "seconds": round(time.perf_counter() - started, 1), "loss_m": round(loss.item(), 5),
                     "held_out_m": round(held_out.item(), 5), "triangulated_held_out_m": round(untouched.item(), 5)}
            with open(log_path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(entry) + "\n")
            log(json.dumps(entry))
    model.eval()
    record = torch.load(init, map_location="cpu", weights_only=True)  # read by load_model already: its records
    kept = {key: record[key] for key in ("training",) if key in record}
    save_checkpoint(model, out, describe(model.config), {
        **kept, "joint_prior_training": {**asdict(config), "samples": len(inputs), "width": width, "from": start.identity,
                                         "seconds": round(time.perf_counter() - started, 1)}})
    return model

"""Training of the start's learnt parts on their own, on fresh synthetic samples drawn as the network's training
draws its batches: the joint prior (core.model.joint_prior), a regression from triangulated onto true joints, and the
view lifter (core.model.view_lifter), from one view's 2D joints onto that camera's true 3D ones.

Drawing dominates (tens of milliseconds a sample: the body, the evidence and its triangulation, no frames); the
regression takes minutes on one CPU core. The rest of the checkpoint it starts from is kept as it was.
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
from core.model.view_lifter import lifter_input
from core.training import TrainingConfig, describe, draw_rig, draw_sample, single_threaded

PARTS = ("joints", "views")  # the joint prior, the view lifter


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
                for given, truth in self.pairs(sample, np.asarray(sample.ground_truth.joints3d)):
                    inputs.append(given)
                    truths.append(truth)
        shape = (-1, len(self.rest), 3)
        return np.asarray(inputs, np.float32).reshape(shape), np.asarray(truths, np.float32).reshape(shape)

    def pairs(self, sample, truth: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """The sample's triangulated and true joints (``truth``, world), or none where its torso was not
        triangulated (the network falls back on its mean there too)."""
        try:
            fused = triangulate(evidence_keypoints(sample), sample.cameras)
        except ValueError:
            return []
        world = torso_orientation(self.rest, fused.joints3d)
        if world is None:
            return []
        return [((fused.joints3d - fused.root) @ world, (truth - truth[ROOT]) @ world)]


class LifterPairs(PriorPairs):
    """Batch ``index`` of (`lifter_input` features, true root-relative joints in the ray frame) (N, 17, 3), one pair
    per view that saw enough joints, from a generator seeded by (seed, index) alone."""

    def pairs(self, sample, truth: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        found = []
        for keypoints, camera in zip(evidence_keypoints(sample), sample.cameras):
            lifted = lifter_input(keypoints, camera, ROOT)
            if lifted is not None:
                features, turn = lifted
                found.append((features, (truth - truth[ROOT]) @ camera.R.T @ turn.T))
        return found


def mean_joint_error(module: torch.nn.Module, inputs: torch.Tensor, truths: torch.Tensor) -> torch.Tensor:
    """Mean distance (metres) of the module's joints from the true ones."""
    return (module(inputs) - truths).norm(dim=-1).mean()


def draw_pairs(pairs: torch.utils.data.Dataset, workers: int, log: Callable[[str], None],
               should_stop: Callable[[], bool], what: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Every batch of (input, truth) ``pairs``, drawn by ``workers`` processes, as two tensors; progress logged
    every 100 batches."""
    started = time.perf_counter()
    inputs, truths = [], []
    for k, (x, y) in enumerate(torch.utils.data.DataLoader(pairs, batch_size=None, num_workers=workers)):
        if should_stop():
            raise InterruptedError(f"stopped while drawing {what}")
        # copied out of the workers' shared memory: each shared tensor holds a file descriptor until freed, and
        # keeping 200,000 samples' worth ran out of them (run 46)
        inputs.append(torch.as_tensor(x).clone())
        truths.append(torch.as_tensor(y).clone())
        if (k + 1) % 100 == 0:
            log(f"drew {sum(len(batch) for batch in inputs)} pairs in {time.perf_counter() - started:.0f} s")
    return torch.cat(inputs), torch.cat(truths)


def train_start_prior(out: Path, init: Path, body: BodyModel, config: TrainingConfig, samples: int, width: int,
                      part: str = "joints", workers: int = 0, log: Callable[[str], None] = print,
                      should_stop: Callable[[], bool] = lambda: False) -> HeatFormer:
    """The ``part`` of the start (`PARTS`: the joint prior, whose joints calibrated mode's start is read off, or the
    view lifter, uncalibrated mode's) of ``width`` trained into the network of ``init`` (whose start must be read
    off joints: `pose_init`, `orientation_init` "triangulated") and saved to ``out``: ``samples`` samples drawn (a
    twentieth of the pairs held out, their error logged), then ``config.steps`` AdamW steps of 256 pairs at
    ``config.lr``, cosine-decayed. Losses go to ``out`` + '.log.jsonl'."""
    if part not in PARTS:
        raise ValueError(f"unknown part {part!r}; expected one of {PARTS}")
    torch.manual_seed(config.seed)
    start = load_model(init, body)
    if part == "joints" and start.config.pose_init != "triangulated":
        raise InputError(init, "its calibrated start is the mean pose: the joint prior moves the joints that "
                               "--pose-init triangulated reads the start off")
    if part == "views" and start.config.orientation_init != "triangulated":
        raise InputError(init, "its start is the mean body facing each camera: the view lifter gives the joints "
                               "that --orientation-init triangulated reads the start off")
    name = "joint_prior" if part == "joints" else "view_lifter"
    model = HeatFormer(replace(start.config, **{name: width}), body).eval()
    # a part the checkpoint has already is replaced by the new one
    model.load_state_dict({k: v for k, v in start.state_dict().items() if not k.startswith(name + ".")},
                          strict=False)
    module = getattr(model, name)
    started = time.perf_counter()
    batches = -(-samples // config.batch_size)
    pairs = (PriorPairs if part == "joints" else LifterPairs)(body, model.rest_joints(), config, batches)
    inputs, truths = draw_pairs(pairs, workers, log, should_stop, f"the {name.replace('_', ' ')}'s samples")
    held = max(1, len(inputs) // 20)
    optimizer = torch.optim.AdamW(module.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, config.steps)
    generator = torch.Generator().manual_seed(config.seed)
    log_path = out.with_suffix(".log.jsonl")
    module.train()
    for step in range(1, config.steps + 1):
        if should_stop():
            break
        pick = held + torch.randint(0, len(inputs) - held, (256,), generator=generator)
        loss = mean_joint_error(module, inputs[pick], truths[pick])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        if step % config.log_every == 0 or step == config.steps:
            with torch.no_grad():
                held_out = mean_joint_error(module, inputs[:held], truths[:held])
            entry = {"step": step, "seconds": round(time.perf_counter() - started, 1), "loss_m": round(loss.item(), 5),
                     "held_out_m": round(held_out.item(), 5)}
            if part == "joints":  # what the prior has to beat: the triangulated joints as they are
                untouched = (inputs[:held].nan_to_num() - truths[:held]).norm(dim=-1).mean()
                entry["triangulated_held_out_m"] = round(untouched.item(), 5)
            with open(log_path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(entry) + "\n")
            log(json.dumps(entry))
    model.eval()
    record = torch.load(init, map_location="cpu", weights_only=True)  # read by load_model already: its records
    kept = {key: record[key] for key in ("training", "joint_prior_training", "view_lifter_training")
            if key in record and key != name + "_training"}
    save_checkpoint(model, out, describe(model.config), {
        **kept, name + "_training": {**asdict(config), "samples": samples, "pairs": len(inputs), "width": width,
                                     "from": start.identity, "seconds": round(time.perf_counter() - started, 1)}})
    return model

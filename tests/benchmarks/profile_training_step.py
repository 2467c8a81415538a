"""Where a training step's time goes: batch making, forward, losses, backward and the optimiser, measured apart
on the shipped checkpoint with the command of the recent training runs (8 samples of 3-5 views, 5 iterations,
every rig). Prints the mean of 5 steps after a warm-up one, then the batch maker's slowest functions.

    python tests/benchmarks/profile_training_step.py [--steps 5] [--appearance] [--image-features none]
        [--joint-offsets]
"""
from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from core.body_model import BodyModel  # noqa: E402
from core.model.checkpoint import load_model  # noqa: E402
from core.model.config import CHOICES  # noqa: E402
from core.model.network import HeatFormer  # noqa: E402
from core.resources import DEFAULT_CHECKPOINT  # noqa: E402
from core.training import SyntheticBatches, TrainingConfig, compute_losses  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--render-cell", type=float, default=TrainingConfig.render_cell,
                        help="the frames' body clustered on this grid, metres (0: the full mesh)")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--appearance", action="store_true", help="dressed people and cluttered frames")
    parser.add_argument("--image-features", choices=CHOICES["image_features"],
                        help="what of the network reads the frames (none: they are not drawn; default: as the "
                             "shipped checkpoint)")
    parser.add_argument("--joint-offsets", action="store_true", help="the decoder reads the joints' offsets too")
    args = parser.parse_args()
    body = BodyModel()
    shipped = load_model(DEFAULT_CHECKPOINT, body)
    model = HeatFormer(replace(shipped.config, image_features=args.image_features or shipped.config.image_features,
                               joint_offsets=args.joint_offsets or shipped.config.joint_offsets), body)
    model.load_state_dict(shipped.state_dict(), strict=False)  # an image encoder only one of them has: left as is
    model.train()
    config = TrainingConfig(steps=args.steps + 1, batch_size=8, views=(3, 5), iterations=5,
                            rigs=("ring", "h36m", "mpi_inf_3dhp", "behave", "rich"), render_cell=args.render_cell,
                            appearance=args.appearance)
    batches = SyntheticBatches(model, config, torch.arange(0, body.num_vertices, 16))
    optimizer = torch.optim.AdamW(model.parameters(), 1e-4)
    totals = dict.fromkeys(("batch", "forward", "losses", "backward", "optimiser"), 0.0)
    profile = cProfile.Profile()
    for step in range(args.steps + 1):
        marks = [time.perf_counter()]
        profile.enable()
        _, prepared, targets = batches[step]
        profile.disable()
        marks.append(time.perf_counter())
        states = model(prepared.images, prepared.heatmaps, prepared.geometry, config.iterations)
        marks.append(time.perf_counter())
        losses = compute_losses(model, states, prepared, targets, batches.vertex_index, config.weights)
        marks.append(time.perf_counter())
        optimizer.zero_grad()
        losses["total"].backward()
        marks.append(time.perf_counter())
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        marks.append(time.perf_counter())
        if step:  # the first step warms up
            for key, start, end in zip(totals, marks, marks[1:]):
                totals[key] += end - start
    print(f"{torch.get_num_threads()} torch threads; seconds per step of {config.batch_size} samples:")
    for key, value in totals.items():
        print(f"  {key:10s} {value / args.steps:.3f}")
    pstats.Stats(profile).sort_stats("tottime").print_stats(8)


if __name__ == "__main__":
    main()

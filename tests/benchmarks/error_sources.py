"""Where the error comes from: the final estimate's MPJPE, and again with parts of it replaced by the truth (the
global orientation, the body pose, the pose of the legs, arms or trunk alone, the shape, orientation and pose), so
that a training run can aim at what is left.

    python tests/benchmarks/error_sources.py --data val100 [--checkpoint F] [--count 20] [--mode uncalibrated]

Root-relative H36M-17 joints in each camera's frame, averaged over views and samples, in millimetres. Needs
samples with SMPL ground truth of the body model in use (such as `main.py synth` makes).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from core.body_model import BodyModel  # noqa: E402
from core.dataset_io import read_sample  # noqa: E402
from core.evaluation import sample_folders  # noqa: E402
from core.inference import refine  # noqa: E402
from core.joints import SMPL24  # noqa: E402
from core.metrics import MM  # noqa: E402
from core.model.checkpoint import load_model  # noqa: E402
from core.model.network import ROOT  # noqa: E402
from core.resources import DEFAULT_CHECKPOINT  # noqa: E402
from core.rotations import axis_angle_to_matrix  # noqa: E402


def matrices(axis_angles) -> torch.Tensor:
    return axis_angle_to_matrix(torch.as_tensor(np.asarray(axis_angles), dtype=torch.float32))


# Body-pose joints (SMPL-24 without the root) of each part whose pose is replaced alone.
PARTS = {"legs": ("hip", "knee", "ankle", "foot"), "arms": ("collar", "shoulder", "elbow", "wrist", "hand"),
         "trunk and head": ("spine", "neck", "head")}
REPLACED = {"the network's estimate": (), "with the true global orientation": ("orient",),
            "with the true body pose": ("pose",), **{f"with the true pose of the {part}": (part,) for part in PARTS},
            "with the true shape": ("betas",), "with the true orientation and pose": ("orient", "pose")}


def part_mask(part: str) -> torch.Tensor:
    """(23, 1, 1) whether each body-pose joint belongs to ``part``."""
    names = SMPL24.names[1:]
    return torch.tensor([any(n.split("_")[-1].startswith(k) for k in PARTS[part]) for n in names])[:, None, None]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--mode", choices=("calibrated", "uncalibrated"), default="calibrated")
    args = parser.parse_args()
    body = BodyModel()
    model = load_model(args.checkpoint, body)
    errors: dict[str, list[float]] = {}
    for folder in sample_folders(args.data)[: args.count]:
        sample = read_sample(folder)
        truth = sample.ground_truth
        trace = refine(sample, model, args.mode)
        to_camera = torch.as_tensor(np.stack([c.R for c in sample.cameras]), dtype=torch.float32)
        estimate = {"orient": matrices(trace.global_orient[-1])[:, None],  # (V, 1, 3, 3) in each camera
                    "pose": matrices(trace.body_pose[-1].reshape(-1, 23, 3)),
                    "betas": torch.as_tensor(trace.betas[-1])}
        true = {"orient": (to_camera @ matrices(truth.global_orient))[:, None],
                "pose": matrices(np.reshape(truth.body_pose, (23, 3))).expand_as(estimate["pose"]),
                "betas": torch.as_tensor(np.asarray(truth.betas), dtype=torch.float32).expand_as(estimate["betas"])}

        def joints(parts: dict) -> torch.Tensor:
            posed = body.joints_h36m(parts["orient"], parts["pose"], parts["betas"])
            return posed - posed[:, ROOT: ROOT + 1]

        reference = joints(true)
        for name, replaced in REPLACED.items():
            mixed = {k: true[k] if k in replaced else estimate[k] for k in estimate}
            for part in set(replaced) & set(PARTS):
                mixed["pose"] = torch.where(part_mask(part), true["pose"], estimate["pose"])
            with torch.no_grad():
                mixed = joints(mixed)
            errors.setdefault(name, []).append(float((mixed - reference).norm(dim=-1).mean()) * MM)
    count = len(next(iter(errors.values())))
    print(f"{model.identity}, {count} samples of {args.data}, {args.mode}, iteration {trace.iterations}: MPJPE in mm")
    for name, values in errors.items():
        print(f"  {name:<36} {np.mean(values):6.1f}")


if __name__ == "__main__":
    main()

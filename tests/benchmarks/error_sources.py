"""Where the calibrated error comes from: the final estimate's MPJPE, and again with parts of it replaced by the
truth (the global orientation, the body pose, both), so that a training run can aim at what is left.

    python tests/benchmarks/error_sources.py --data val100 [--checkpoint F] [--count 20]

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
from core.metrics import MM  # noqa: E402
from core.model.checkpoint import load_model  # noqa: E402
from core.model.network import ROOT  # noqa: E402
from core.resources import DEFAULT_CHECKPOINT  # noqa: E402
from core.rotations import axis_angle_to_matrix  # noqa: E402


def matrices(axis_angles) -> torch.Tensor:
    return axis_angle_to_matrix(torch.as_tensor(np.asarray(axis_angles), dtype=torch.float32))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--count", type=int, default=20)
    args = parser.parse_args()
    body = BodyModel()
    model = load_model(args.checkpoint, body)
    errors: dict[str, list[float]] = {}
    for folder in sample_folders(args.data)[: args.count]:
        sample = read_sample(folder)
        truth = sample.ground_truth
        trace = refine(sample, model, "calibrated")
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
        for name, replaced in (("the network's estimate", ()), ("with the true global orientation", ("orient",)),
                               ("with the true body pose", ("pose",)),
                               ("with the true orientation and pose", ("orient", "pose"))):
            with torch.no_grad():
                mixed = joints({k: true[k] if k in replaced else estimate[k] for k in estimate})
            errors.setdefault(name, []).append(float((mixed - reference).norm(dim=-1).mean()) * MM)
    count = len(next(iter(errors.values())))
    print(f"{model.identity}, {count} samples of {args.data}, calibrated, iteration {trace.iterations}: MPJPE in mm")
    for name, values in errors.items():
        print(f"  {name:<36} {np.mean(values):6.1f}")


if __name__ == "__main__":
    main()

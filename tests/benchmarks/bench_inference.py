"""Benchmark: HeatFormer inference latency per stage on the bundled 4-view sample.

    python tests/benchmarks/bench_inference.py [--preset compact] [--iterations 3] [--runs 20] [--device cpu]
                                               [--batch N]

Prints the median over runs of each stage, in milliseconds, and the network total against the compact preset's
target (50 ms for 4 views x 3 iterations on a 2-core CPU). With --batch N the sample is refined as N frames of a
sequence in one network batch (`refine_batch`) and the times are per frame. Weights do not change the cost, so
random weights are used unless --checkpoint is given.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from core.body_model import BodyModel  # noqa: E402
from core.dataset_io import read_sample  # noqa: E402
from core.inference import refine_batch  # noqa: E402
from core.model.checkpoint import load_model  # noqa: E402
from core.model.config import preset  # noqa: E402
from core.resources import SAMPLE_SCENE  # noqa: E402

TARGET_MS = 50.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="compact")
    parser.add_argument("--checkpoint", type=Path)
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--batch", type=int, default=1, help="frames per network batch (default 1)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    sample = read_sample(SAMPLE_SCENE)
    body = BodyModel()
    model = load_model(args.checkpoint, body, preset(args.preset))
    print(f"preset {args.preset}, {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters, "
          f"{sample.num_views} views, {args.iterations} iterations, device {args.device}, "
          f"{torch.get_num_threads()} CPU threads, torch {torch.__version__}, {args.batch} frame(s) per batch")
    frames = [sample] * args.batch
    for mode in ("calibrated", "uncalibrated"):
        refine_batch(frames, model, mode, args.iterations, device=args.device)  # warm-up
        stages: dict[str, list[float]] = {}
        totals = []
        for _ in range(args.runs):
            start = time.perf_counter()
            trace = refine_batch(frames, model, mode, args.iterations, device=args.device)[0]
            totals.append((time.perf_counter() - start) / args.batch)
            for name, seconds in trace.timings.items():
                stages.setdefault(name, []).append(seconds)
        print(f"\n{mode} (median of {args.runs} runs, ms per frame)")
        for name, values in stages.items():
            print(f"  {name:<40} {statistics.median(values) * 1000:8.1f}")
        print(f"  {'refine_batch() total':<40} {statistics.median(totals) * 1000:8.1f}")
        network = statistics.median(stages["network"]) * 1000
        verdict = "meets" if network <= TARGET_MS else "misses"
        print(f"  network {network:.1f} ms {verdict} the {TARGET_MS:.0f} ms target")


if __name__ == "__main__":
    main()

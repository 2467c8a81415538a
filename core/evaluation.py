"""Evaluating HeatFormer over a set of samples with ground truth: per-iteration errors per mode, view-dependent
vs averaged estimates, clean vs occluded samples, as Markdown tables."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from core.dataset_io import read_sample
from core.errors import InputError
from core.inference import evaluate, refine
from core.sample import MultiviewSample

METRICS = (("mpjpe_mm", "MPJPE"), ("pa_mpjpe_mm", "PA-MPJPE"), ("mpvpe_mm", "MPVPE"))


@dataclass
class ModeResults:
    metrics: dict[str, list[np.ndarray]] = field(default_factory=dict)  # name -> per sample (I,)
    occluded: list[bool] = field(default_factory=list)
    network_seconds: list[float] = field(default_factory=list)

    def add(self, trace, occluded: bool) -> None:
        for name, values in trace.metrics.items():
            self.metrics.setdefault(name, []).append(values)
        self.occluded.append(occluded)
        self.network_seconds.append(trace.timings["network"])


def sample_folders(root: Path) -> list[Path]:
    """``root`` itself if it is a sample folder, else its sub-folders that are, sorted."""
    if (root / "keypoints.json").exists() or (root / "sample.json").exists():
        return [root]
    folders = sorted(p for p in root.iterdir() if p.is_dir() and ((p / "sample.json").exists()
                                                                   or (p / "keypoints.json").exists()))
    if not folders:
        raise InputError(root, "no sample folders (with sample.json or keypoints.json) found")
    return folders


def iterate_samples(root: Path) -> Iterator[MultiviewSample]:
    for folder in sample_folders(root):
        sample = read_sample(folder)
        if sample.ground_truth is None or sample.ground_truth.joints3d is None:
            raise InputError(folder, "evaluation needs ground truth (ground_truth.json with joints3d)")
        yield sample


def run_evaluation(samples: list[MultiviewSample], model, body, modes=("calibrated", "uncalibrated"),
                   iterations: int | None = None, progress: Callable[[int, str], None] | None = None,
                   device=None) -> dict[str, ModeResults]:
    results = {mode: ModeResults() for mode in modes}
    total = len(samples) * len(modes)
    for i, sample in enumerate(samples):
        occluded = bool(sample.ground_truth.occluded is not None and sample.ground_truth.occluded.any())
        for j, mode in enumerate(modes):
            trace = refine(sample, model, mode, iterations, device=device)
            evaluate(trace, sample, body)
            results[mode].add(trace, occluded)
            if progress:
                done = i * len(modes) + j + 1
                progress(int(100 * done / total), f"{sample.name} ({mode})")
    return results


def _mean(values: list[np.ndarray], mask: np.ndarray | None = None) -> np.ndarray:
    stacked = np.stack(values)
    return stacked[mask].mean(0) if mask is not None else stacked.mean(0)


def report(results: dict[str, ModeResults], title: str) -> str:
    """Markdown tables of the results; every number is a mean over samples, in millimetres."""
    lines = [f"# {title}", ""]
    first = next(iter(results.values()))
    count, occluded = len(first.occluded), int(np.sum(first.occluded))
    lines += [f"{count} samples ({count - occluded} clean, {occluded} with occluded joints). Means in mm.", ""]
    for mode, res in results.items():
        iterations = len(res.metrics["mpjpe_mm"][0])
        lines += [f"## Per iteration, {mode} (view-dependent estimates)", "",
                  "| iteration | " + " | ".join(label for key, label in METRICS if key in res.metrics) + " |",
                  "|---|" + "---|" * sum(key in res.metrics for key, _ in METRICS)]
        means = {key: _mean(res.metrics[key]) for key, _ in METRICS if key in res.metrics}
        for k in range(iterations):
            lines.append(f"| {k} | " + " | ".join(f"{means[key][k]:.1f}" for key in means) + " |")
        lines.append("")
    lines += ["## Final iteration: calibrated vs uncalibrated, view-dependent vs averaged", "",
              "| mode | estimate | MPJPE | PA-MPJPE | MPVPE |", "|---|---|---|---|---|"]
    for mode, res in results.items():
        for prefix, name in (("", "view-dependent"), ("fused_", "averaged over views")):
            row = [f"{_mean(res.metrics[prefix + key])[-1]:.1f}" if prefix + key in res.metrics else "–"
                   for key, _ in METRICS]
            lines.append(f"| {mode} | {name} | " + " | ".join(row) + " |")
    lines += ["", "## Final iteration: clean vs occluded samples (view-dependent)", "",
              "| mode | split | samples | MPJPE | PA-MPJPE |", "|---|---|---|---|---|"]
    for mode, res in results.items():
        occluded_mask = np.array(res.occluded)
        for name, mask in (("clean", ~occluded_mask), ("occluded", occluded_mask)):
            if mask.any():
                lines.append(f"| {mode} | {name} | {int(mask.sum())} | "
                             f"{_mean(res.metrics['mpjpe_mm'], mask)[-1]:.1f} | "
                             f"{_mean(res.metrics['pa_mpjpe_mm'], mask)[-1]:.1f} |")
    lines += ["", "## Network time per sample", "", "| mode | median ms |", "|---|---|"]
    for mode, res in results.items():
        lines.append(f"| {mode} | {np.median(res.network_seconds) * 1000:.1f} |")
    return "\n".join(lines) + "\n"

"""Evaluating HeatFormer over a set of samples with ground truth: per-iteration errors per mode, view-dependent
vs averaged estimates, clean vs occluded samples, and the SMPLify-style baseline on the same samples and machine,
as Markdown tables."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from core.baseline import BaselineFit, fit_smplify
from core.dataset_io import read_sample
from core.errors import InputError
from core.inference import evaluate, ground_truth_vertices, refine
from core.metrics import MM, pa_mpjpe
from core.model.network import ROOT
from core.sample import MultiviewSample

METRICS = (("mpjpe_mm", "MPJPE"), ("pa_mpjpe_mm", "PA-MPJPE"), ("mpvpe_mm", "MPVPE"))
# the per-iteration tables add the global orientation's error, when the ground truth has SMPL parameters
PER_ITERATION = METRICS + (("orient_error_deg", "orientation error (°)"),)


@dataclass
class ModeResults:
    metrics: dict[str, list[np.ndarray]] = field(default_factory=dict)  # name -> per sample (I,)
    occluded: list[bool] = field(default_factory=list)
    network_seconds: list[float] = field(default_factory=list)
    estimate_seconds: list[float] = field(default_factory=list)  # fusion, crops and network: the SMPL parameters
    total_seconds: list[float] = field(default_factory=list)  # the whole refine(): also the trace's meshes

    def add(self, trace, occluded: bool) -> None:
        for name, values in trace.metrics.items():
            self.metrics.setdefault(name, []).append(values)
        self.occluded.append(occluded)
        self.network_seconds.append(trace.timings["network"])
        self.estimate_seconds.append(trace.timings["prepare"] + trace.timings["network"])
        self.total_seconds.append(self.estimate_seconds[-1] + trace.timings["meshes"])


def fit_errors(fit: BaselineFit, sample: MultiviewSample, body) -> dict[str, float]:
    """The baseline's errors, as HeatFormer's are measured: root-aligned (the same in every camera's frame, as
    rotations keep distances), PA-MPJPE, and MPVPE when the ground truth is a body of this model."""
    gt = sample.ground_truth
    root, truth_root = fit.joints3d[ROOT], gt.joints3d[ROOT]
    errors = {"mpjpe_mm": float(np.linalg.norm((fit.joints3d - root) - (gt.joints3d - truth_root), axis=-1).mean()
                                * MM),
              "pa_mpjpe_mm": float(pa_mpjpe(fit.joints3d, gt.joints3d))}
    if gt.smpl_fits(body.identity):
        truth = ground_truth_vertices(gt, body)
        errors["mpvpe_mm"] = float(np.linalg.norm((fit.vertices - root) - (truth - truth_root), axis=-1).mean() * MM)
    return errors


@dataclass
class BaselineResults:
    metrics: dict[str, list[float]] = field(default_factory=dict)  # name -> per sample
    seconds: list[float] = field(default_factory=list)

    def add(self, errors: dict[str, float], seconds: float) -> None:
        for name, value in errors.items():
            self.metrics.setdefault(name, []).append(value)
        self.seconds.append(seconds)


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
                   device=None, baseline: bool = True) -> tuple[dict[str, ModeResults], BaselineResults | None]:
    """HeatFormer in every mode on every sample and, with ``baseline``, the SMPLify-style fit on the same
    samples in the same run (so that their times compare on one machine)."""
    results = {mode: ModeResults() for mode in modes}
    fits = BaselineResults() if baseline else None
    steps = len(modes) + int(baseline)
    for i, sample in enumerate(samples):
        occluded = bool(sample.ground_truth.occluded is not None and sample.ground_truth.occluded.any())
        for j, mode in enumerate(modes):
            trace = refine(sample, model, mode, iterations, device=device)
            evaluate(trace, sample, body)
            results[mode].add(trace, occluded)
            if progress:
                progress(int(100 * (i * steps + j + 1) / (len(samples) * steps)), f"{sample.name} ({mode})")
        if fits is not None:
            fit = fit_smplify(sample, body, device=device or "cpu")
            fits.add(fit_errors(fit, sample, body), fit.seconds)
            if progress:
                progress(int(100 * (i + 1) * steps / (len(samples) * steps)), f"{sample.name} (baseline)")
    return results, fits


def _mean(values: list[np.ndarray], mask: np.ndarray | None = None) -> np.ndarray:
    stacked = np.stack(values)
    return stacked[mask].mean(0) if mask is not None else stacked.mean(0)


def report(results: dict[str, ModeResults], title: str, fits: BaselineResults | None = None) -> str:
    """Markdown tables of the results; every error is a mean over samples, in millimetres."""
    lines = [f"# {title}", ""]
    first = next(iter(results.values()))
    count, occluded = len(first.occluded), int(np.sum(first.occluded))
    lines += [f"{count} samples ({count - occluded} clean, {occluded} with occluded joints). Means in mm "
              "(orientation in degrees).", ""]
    for mode, res in results.items():
        iterations = len(res.metrics["mpjpe_mm"][0])
        lines += [f"## Per iteration, {mode} (view-dependent estimates)", "",
                  "| iteration | " + " | ".join(label for key, label in PER_ITERATION if key in res.metrics) + " |",
                  "|---|" + "---|" * sum(key in res.metrics for key, _ in PER_ITERATION)]
        means = {key: _mean(res.metrics[key]) for key, _ in PER_ITERATION if key in res.metrics}
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
    if fits is not None:
        lines += _baseline_tables(results, fits)
    lines += ["", "## Time per sample (median ms)", "",
              "| mode | network | estimate: fusion, crops, network | whole refine(): with the trace's meshes |",
              "|---|---|---|---|"]
    for mode, res in results.items():
        lines.append(f"| {mode} | " + " | ".join(f"{np.median(x) * 1000:.1f}" for x in (
            res.network_seconds, res.estimate_seconds, res.total_seconds)) + " |")
    return "\n".join(lines) + "\n"


def _baseline_tables(results: dict[str, ModeResults], fits: BaselineResults) -> list[str]:
    """HeatFormer's final calibrated iteration against the baseline, overall and per split, with times."""
    heat = results.get("calibrated") or next(iter(results.values()))
    occluded = np.array(heat.occluded)
    lines = ["", "## HeatFormer vs the SMPLify-style baseline (same evidence, cameras, body model and machine)", "",
             "| method | split | MPJPE | PA-MPJPE | MPVPE | median s per sample (HeatFormer: estimate) |",
             "|---|---|---|---|---|---|"]
    for name, mask in (("all", np.ones_like(occluded)), ("clean", ~occluded), ("occluded", occluded)):
        if not mask.any():
            continue
        heat_row = [f"{_mean(heat.metrics[key], mask)[-1]:.1f}" if key in heat.metrics else "–" for key, _ in METRICS]
        fit_row = [f"{np.mean(np.array(fits.metrics[key])[mask]):.1f}" if key in fits.metrics else "–"
                   for key, _ in METRICS]
        lines.append(f"| HeatFormer, final iteration | {name} | " + " | ".join(heat_row) +
                     f" | {np.median(heat.estimate_seconds):.3f} |")
        lines.append(f"| SMPLify-style baseline | {name} | " + " | ".join(fit_row) +
                     f" | {np.median(fits.seconds):.3f} |")
    baseline = np.median(fits.seconds)
    estimate, network, total = (baseline / np.median(x) for x in (
        heat.estimate_seconds, heat.network_seconds, heat.total_seconds))
    lines += ["", f"Per sample, HeatFormer's estimate (fusion, crops and network: the SMPL parameters, as the "
                  f"baseline's time covers its fusion and fit) is {estimate:.1f}x faster than the baseline; the "
                  f"network alone {network:.1f}x; the whole refine(), which also poses and projects the meshes of "
                  f"every iteration and view for the window, {total:.1f}x."]
    return lines

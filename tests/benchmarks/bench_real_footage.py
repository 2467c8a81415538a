"""Real footage without ground truth: the built-in detector's speed and hit rate, and what HeatFormer does with its
evidence, in the errors the app can show without ground truth.

    python tests/benchmarks/bench_real_footage.py --data tests/fixtures/real_multiperson [--baseline]
    python tests/benchmarks/bench_real_footage.py --data Pose2Sim/Demo_MultiPerson --frames 0 99

Prints: detector milliseconds per view (people search with association, and following), the share of frames
where each view contributes the subject, the triangulation's median reprojection per camera; then, per mode and
iteration, HeatFormer's reprojection error against the detections (px), its heatmap error, the body's height
(m: head top to the mean of the ankles of the averaged estimate) and the view-to-view spread of the per-view
estimates (calibrated: the mean distance of each view's joints from the views' mean, mm), and the calibrated
last iteration's error per joint. With --baseline, the SMPLify-style fit's reprojection error against the same
fused evidence that calibrated HeatFormer is measured against (about 3 s a frame).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from core.association import MultiviewTracker  # noqa: E402
from core.body_model import BodyModel  # noqa: E402
from core.baseline import fit_smplify  # noqa: E402
from core.inference import evaluate, evidence_keypoints, joint_errors, refine_batch, triangulate_sample  # noqa: E402
from core.joints import H36M17  # noqa: E402
from core.metrics import body_height, view_spread  # noqa: E402
from core.model.checkpoint import load_model  # noqa: E402
from core.resources import resolve_checkpoint_path  # noqa: E402
from core.sequence import open_sequence  # noqa: E402


def detector_figures(sequence, frames: range) -> None:
    cameras = sequence[frames[0]].cameras
    tracker = MultiviewTracker(cameras)
    searched, followed, used, reprojection = [], [], np.zeros(len(cameras)), [[] for _ in cameras]
    for f in frames:
        images = sequence[f].frames
        start = time.perf_counter()
        keypoints = tracker.detect_views(f, images)
        per_view = (time.perf_counter() - start) * 1e3 / len(cameras)
        (followed if all(c.tracked for c in tracker.choices if c.used) and f != frames[0] else searched).append(per_view)
        joints3d = tracker.previous[2]
        for v, camera in enumerate(cameras):
            used[v] += tracker.choices[v].used
            seen = (keypoints[v, :, 2] > 0.5) & np.isfinite(joints3d).all(1)
            if seen.any():
                uv, _ = camera.project(joints3d[seen])
                reprojection[v].append(np.median(np.linalg.norm(uv - keypoints[v, seen, :2], axis=1)))
    print(f"built-in detector over {len(frames)} frames of {len(cameras)} views")
    print(f"  ms per view: searching and associating {np.median(searched):.0f} (median of {len(searched)} frames), "
          f"following {np.median(followed) if followed else float('nan'):.0f} (median of {len(followed)})")
    for v, camera in enumerate(cameras):
        print(f"  {camera.name}: the subject in {100 * used[v] / len(frames):.0f} % of frames, the triangulation "
              f"reprojects within {np.median(reprojection[v]) if reprojection[v] else float('nan'):.1f} px (median)")


def per_joint(errors: np.ndarray) -> str:
    """(N, V, 17) px, NaN where not seen -> every joint's mean, largest first."""
    means = np.nanmean(errors, axis=(0, 1))
    return ", ".join(f"{H36M17.names[j]} {means[j]:.0f}" for j in np.argsort(-means) if np.isfinite(means[j]))


def baseline_figures(samples, body: BodyModel) -> None:
    errors = []
    for sample in samples:
        fused = triangulate_sample(sample, evidence_keypoints(sample), "the baseline needs two views").keypoints
        joints3d = fit_smplify(sample, body).joints3d
        uv = np.stack([camera.project(joints3d)[0] for camera in sample.cameras])
        errors.append(np.where(fused[..., 2] > 0, np.linalg.norm(uv - fused[..., :2], axis=-1), np.nan))
    print(f"SMPLify-style baseline, calibrated, mean over {len(samples)} frames: {np.nanmean(errors):.1f} px against "
          "the fused evidence")
    print(f"  per joint (px): {per_joint(np.stack(errors))}")


def heatformer_figures(samples, checkpoint: Path | None) -> None:
    body = BodyModel(None)
    model = load_model(resolve_checkpoint_path(checkpoint), body)
    for mode in ("calibrated", "uncalibrated"):
        traces = refine_batch(samples, model, mode, device="cpu")
        for trace, sample in zip(traces, samples):
            evaluate(trace, sample)
        reprojection = np.mean([t.metrics["reprojection_px"] for t in traces], 0)
        heat = np.mean([t.metrics["heatmap_mse"] for t in traces], 0)
        height = np.mean([body_height(t.fused_joints3d) for t in traces], 0)
        spread = np.mean([view_spread(t.joints3d) for t in traces], 0) * 1e3
        print(f"HeatFormer, {mode}, mean over {len(samples)} frames ({model.identity})")
        print("  iteration  reprojection px  heatmap error x1e-3  height m  view-to-view spread mm")
        for k in range(len(reprojection)):
            print(f"  {k:9d}  {reprojection[k]:15.1f}  {heat[k] * 1e3:19.2f}  {height[k]:8.2f}  "
                  f"{spread[k] if mode == 'calibrated' else float('nan'):22.0f}")
        if mode == "calibrated":
            last = np.stack([joint_errors(t, s)["reprojection_px"][-1] for t, s in zip(traces, samples)])
            print(f"  per joint at the last iteration (px): {per_joint(last)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="videos/ or images/ and a calibration")
    parser.add_argument("--frames", type=int, nargs=2, metavar=("FIRST", "LAST"), help="default: every frame")
    parser.add_argument("--checkpoint", type=Path)
    parser.add_argument("--baseline", action="store_true", help="also fit the SMPLify-style baseline to every frame")
    args = parser.parse_args()
    sequence = open_sequence(args.data)
    frames = range(args.frames[0], args.frames[1] + 1) if args.frames else range(len(sequence))
    detector_figures(sequence, frames)
    samples = [sequence[f] for f in frames]
    heatformer_figures(samples, args.checkpoint)
    if args.baseline:
        baseline_figures(samples, BodyModel(None))


if __name__ == "__main__":
    main()

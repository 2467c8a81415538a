"""HeatFormer Studio entry point: `python main.py` opens the app on the bundled sample; subcommands run
headless tools (`python main.py synth --help`)."""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

from core import __version__
from core.model.config import CHOICES as MODEL_CHOICES  # no torch: the parser stays quick


RIG_NAMES = ("ring", "h36m", "mpi_inf_3dhp", "behave", "rich", "video", "portrait", "volume")  # core.synthetic.RIG_PRESETS, without importing torch
OFFICIAL_2D_HELP = ("make the 2D evidence from the images with the official checkpoint's own 2D network (AdaFuse), "
                    "as the official code does; the data's evidence then only places its crops")


def number_in(low: float, high: float, kind: type = int):
    """An argparse type: a number of ``kind`` from ``low`` to ``high`` (NaN and infinities are outside)."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}")
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text} is outside {low}..{high}")
        return value
    return parse


def device_name(text: str) -> str:
    """An argparse type: cpu, cuda or cuda:N, and CUDA only where there is a device."""
    import re

    if not re.fullmatch(r"cpu|cuda(:\d+)?", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a device: cpu, cuda or cuda:N")
    if text.startswith("cuda"):
        import torch

        index = int(text.split(":")[1]) if ":" in text else 0
        if not torch.cuda.is_available() or index >= torch.cuda.device_count():
            raise argparse.ArgumentTypeError(f"{text}: no such CUDA device here (this torch sees "
                                             f"{torch.cuda.device_count()})")
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="heatformer-studio", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path,
                        help="sample or sequence folder (native, images/, videos/), or an official HeatFormer "
                             "*_db.pt database (default: the bundled sample)")
    parser.add_argument("--frame", type=number_in(0, 10 ** 9), default=0, help="frame of a sequence shown first")
    parser.add_argument("--body-model", type=Path,
                        help="your SMPL file (SMPL_NEUTRAL.pkl/.npz); default: $HEATFORMER_BODY_MODEL, else the "
                             "bundled free model")
    parser.add_argument("--detector", type=Path,
                        help="your 2D pose model (.onnx, or a JSON configuration naming it) for sequences "
                             "without keypoints")
    parser.add_argument("--trace", type=Path, nargs="+", help="saved trace(s) to show without running the network")
    parser.add_argument("--checkpoint", type=Path, help="HeatFormer checkpoint (default: the shipped one)")
    parser.add_argument("--official-2d", action="store_true", help=OFFICIAL_2D_HELP)
    parser.add_argument("--mode", choices=("calibrated", "uncalibrated", "both", "side-by-side"),
                        help="mode shown first (both: uncalibrated overlaid on calibrated; side-by-side: each "
                             "camera's panel in both modes)")
    parser.add_argument("--iteration", type=int, help="iteration shown (default: the last)")
    parser.add_argument("--screenshot", type=Path, help="save a PNG of the whole window once the data is shown")
    parser.add_argument("--quit", action="store_true", help="exit when done (after --screenshot)")
    parser.add_argument("--reset-settings", action="store_true",
                        help="forget the saved settings (body model, window layout, recent files) first")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command")
    synth = sub.add_parser("synth", help="generate a synthetic multiview sample in the native layout")
    synth.add_argument("--out", type=Path, required=True, help="output folder")
    synth.add_argument("--rig", choices=RIG_NAMES, default="ring",
                       help="camera rig shaped like a dataset's (approximate; default: a ring of 4 square views)")
    synth.add_argument("--views", type=int, help="number of cameras, 2-8 (default: the rig's)")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--occluders", type=number_in(0, 20), default=1, help="number of occluding boxes")
    synth.add_argument("--image-size", type=number_in(16, 8192), nargs=2, metavar=("W", "H"),
                       help="rendered image size (default: the rig's, about 512 wide)")
    synth.add_argument("--count", type=number_in(1, 10 ** 6), default=1,
                       help="more than 1: write OUT/<name>_0000 ... with seeds S, S+1, ... (a benchmark set)")
    synth.add_argument("--clean", type=number_in(0, 10 ** 6), default=0,
                       help="with --count: the first CLEAN samples have no occluder (a clean split)")
    synth.add_argument("--appearance", action="store_true",
                       help="dressed people, cluttered backgrounds and camera faults instead of part colours over "
                            "the checkered floor (the truth and 2D evidence stay those of the seed)")
    synth.add_argument("--bend", type=number_in(0.0, 45.0, float), default=0.0, metavar="DEGREES",
                       help="bend the bodies forward at the hips, as train --bend (default 0: upright pelvises)")
    synth.add_argument("--definition-offset", type=number_in(0.0, 0.2, float), default=0.0, metavar="METRES",
                       help="offset each joint of the 2D evidence in 3D, the same in every view, by up to this "
                            "spread per axis, as `train --definition-offset` does (default 0: none)")
    synth.add_argument("--calibration-format", choices=("native", "easymocap", "toml", "h36m", "aitviewer"),
                       default="native", help="format of the written calibration (easymocap: intri.yml + extri.yml; "
                                              "aitviewer: cameras.npz)")
    infer = sub.add_parser("infer", help="run HeatFormer on a sample or sequence and save refinement traces")
    infer.add_argument("--data", type=Path, required=True,
                       help="sample folder (native layout), sequence folder (images/, videos/, sample folders) or "
                            "official HeatFormer *_db.pt database")
    infer.add_argument("--calibration", type=Path,
                       help="cameras from this calibration file instead of the data's own, matched by name")
    infer.add_argument("--frames", type=int, nargs=2, metavar=("FIRST", "LAST"),
                       help="frame range of a sequence, inclusive (default: every frame)")
    infer.add_argument("--batch", type=number_in(1, 1024), default=4, help="frames of a sequence per network batch (default 4)")
    infer.add_argument("--mode", choices=("calibrated", "uncalibrated", "both"), default="calibrated")
    infer.add_argument("--iterations", type=number_in(1, 8), default=None, help="decoder iterations, 1-8 (default: as trained)")
    infer.add_argument("--checkpoint", type=Path, help="default: the shipped compact checkpoint")
    infer.add_argument("--official-2d", action="store_true", help=OFFICIAL_2D_HELP)
    infer.add_argument("--device", type=device_name, default=None, help="cpu or cuda (default: cuda when available)")
    infer.add_argument("--out", type=Path, required=True,
                       help="trace .npz; a sequence writes NAME.<frame>.npz per frame; --mode both adds "
                            ".calibrated / .uncalibrated before .npz")
    evaluation = sub.add_parser("eval", help="per-iteration errors over samples with ground truth, as Markdown")
    evaluation.add_argument("--data", type=Path, required=True, help="a sample folder or a folder of them")
    evaluation.add_argument("--checkpoint", type=Path, help="default: the shipped compact checkpoint")
    evaluation.add_argument("--official-2d", action="store_true", help=OFFICIAL_2D_HELP)
    evaluation.add_argument("--iterations", type=number_in(1, 8), default=5, help="decoder iterations to run (default 5)")
    evaluation.add_argument("--device", type=device_name, default=None)
    evaluation.add_argument("--no-baseline", action="store_true",
                            help="skip the SMPLify-style baseline (about 3 s per sample on a CPU)")
    evaluation.add_argument("--out", type=Path, required=True, help="report file (.md)")
    export = sub.add_parser("export", help="meshes and SMPL parameters of one iteration of a saved trace")
    export.add_argument("--trace", type=Path, required=True)
    export.add_argument("--iteration", type=int, default=None, help="default: the last")
    export.add_argument("--views", nargs="+", help="view names (default: all)")
    export.add_argument("--format", choices=("obj", "ply", "glb"), default="obj")
    export.add_argument("--out", type=Path, required=True, help="output folder")
    video = sub.add_parser("video", help="one camera's view through every iteration of a saved trace, as MP4 or GIF")
    video.add_argument("--trace", type=Path, required=True)
    video.add_argument("--view", help="view name (default: the first)")
    video.add_argument("--fps", type=number_in(0.1, 240.0, float), default=2.0, help="frames per second, 0.1-240")
    video.add_argument("--out", type=Path, required=True, help="video file (.mp4 or .gif)")
    prior = sub.add_parser("train-prior", help="train a learnt part of the start into a checkpoint whose start is "
                                               "read off joints: the joint prior (core/model/joint_prior.py) or "
                                               "the view lifter (core/model/view_lifter.py)")
    prior.add_argument("--part", choices=("joints", "views"), default="joints",
                       help="joints: the prior on the triangulated joints (calibrated start; default); views: the "
                            "lifter of each view's joints (uncalibrated start)")
    prior.add_argument("--init", type=Path, required=True,
                       help="checkpoint trained with --pose-init triangulated; every weight of it is kept")
    prior.add_argument("--out", type=Path, required=True, help="checkpoint to write: INIT's network with the part")
    prior.add_argument("--samples", type=number_in(20, 10 ** 7), default=20000,
                       help="synthetic samples drawn for it (default 20000; a twentieth held out)")
    prior.add_argument("--width", type=number_in(8, 4096), default=512, help="hidden layers' width (default 512)")
    prior.add_argument("--steps", type=number_in(1, 10 ** 8), default=6000, help="optimiser steps of 256 pairs")
    prior.add_argument("--lr", type=number_in(0.0, 1.0, float), default=1e-3)
    prior.add_argument("--seed", type=int, default=0)
    prior.add_argument("--rigs", nargs="+", choices=RIG_NAMES, default=["ring"],
                       help="camera rigs to draw from, one per 16 samples (default: ring)")
    prior.add_argument("--views", type=int, nargs=2, default=(3, 5), metavar=("MIN", "MAX"),
                       help="views per sample, drawn in this range (2-8; default 3 5)")
    prior.add_argument("--definition-offset", type=number_in(0.0, 0.2, float), default=0.0, metavar="METRES",
                       help="as train --definition-offset")
    prior.add_argument("--bend", type=number_in(0.0, 45.0, float), default=0.0, metavar="DEGREES",
                       help="as train --bend")
    prior.add_argument("--image-widths", type=number_in(64, 4096), nargs="+", default=None, metavar="PIXELS",
                       help="frame widths drawn from, one per 16 samples (default: 256)")
    prior.add_argument("--workers", type=int, default=0, help="processes that draw the samples (default 0)")
    train = sub.add_parser("train", help="train the compact HeatFormer on synthetic data generated on the fly")
    train.add_argument("--out", type=Path, required=True, help="checkpoint to write (and resume from)")
    train.add_argument("--steps", type=number_in(1, 10 ** 8), default=3000)
    train.add_argument("--batch-size", type=number_in(1, 4096), default=8)
    train.add_argument("--lr", type=number_in(0.0, 1.0, float), default=3e-4)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--device", type=device_name, default=None, help="cpu or cuda (default: cuda when available)")
    train.add_argument("--resume", action="store_true", help="continue from OUT's saved training state")
    train.add_argument("--init", type=Path,
                       help="start from this checkpoint's weights (fine-tuning: a fresh optimiser and schedule)")
    train.add_argument("--rigs", nargs="+", choices=RIG_NAMES, default=["ring"],
                       help="camera rigs to draw from, one per batch (default: ring)")
    train.add_argument("--views", type=int, nargs=2, default=(3, 5), metavar=("MIN", "MAX"),
                       help="views per batch, drawn in this range (2-8; default 3 5)")
    train.add_argument("--iterations", type=int, default=3,
                       help="decoder iterations per training sample, 1-8; inference runs as many by default")
    train.add_argument("--render-cell", type=number_in(0.0, 0.2, float), default=0.03, metavar="METRES",
                       help="draw the body in the synthetic frames clustered on a grid of this size (default 0.03: "
                            "a fifth of the faces, frames about 2.5x cheaper; 0: the full mesh, as runs 1-12)")
    train.add_argument("--workers", type=int, default=0,
                       help="processes that draw the synthetic batches while the network trains (default 0: "
                            "between steps; the batches are the same either way)")
    train.add_argument("--appearance", action="store_true",
                       help="randomise the frames' appearance: dressed people, cluttered backgrounds, exposure, "
                            "blur, noise and JPEG (core/appearance.py)")
    train.add_argument("--definition-offset", type=number_in(0.0, 0.2, float), default=0.0, metavar="METRES",
                       help="offset each joint of the 2D evidence in 3D, the same in every view, by up to this "
                            "spread per axis (0.03 is about the built-in detector's; default 0: none)")
    train.add_argument("--bend", type=number_in(0.0, 45.0, float), default=0.0, metavar="DEGREES",
                       help="bend the bodies forward at the hips by the absolute value of a normal draw of this "
                            "spread (default 0: upright pelvises)")
    train.add_argument("--start-noise", type=number_in(0.0, 45.0, float), default=0.0, metavar="DEGREES",
                       help="with --pose-init triangulated: turn each joint of the closed-form start by random "
                            "rotations of this spread in half the samples, so that the decoder learns to read "
                            "how far its estimate is from the evidence (default 0: the start as it is)")
    train.add_argument("--refine-orientation", action="store_true",
                       help="let the decoder refine the global orientation at every iteration as well (a new "
                            "head; with --init, it starts at zero)")
    train.add_argument("--orientation-init", choices=MODEL_CHOICES["orientation_init"], default="head",
                       help="calibrated mode's starting orientation: the orientation head's (default, as the "
                            "paper) or the triangulated torso's, the same in every view")
    train.add_argument("--torso-alignment", choices=MODEL_CHOICES["torso_alignment"], default="rest",
                       help="with --orientation-init triangulated: turn the rest torso onto the triangulated one "
                            "once (default), or the estimate's own torso after every iteration's pose update")
    train.add_argument("--pose-init", choices=MODEL_CHOICES["pose_init"], default="mean",
                       help="with --orientation-init triangulated: calibrated mode's starting pose and shape, the "
                            "mean (default, as the paper) or inverse kinematics on the triangulated joints")
    train.add_argument("--start-fit-steps", type=number_in(0, 10), default=0, metavar="N",
                       help="with --pose-init triangulated: Gauss-Newton steps that move the closed-form start onto "
                            "the joints it was read off (default 0: the closed-form body as it is)")
    train.add_argument("--start-view-fit-steps", type=number_in(0, 10), default=0, metavar="N",
                       help="with --pose-init triangulated: Gauss-Newton steps that then move calibrated mode's start "
                            "towards every view's own 2D evidence (default 0: no such fit)")
    train.add_argument("--uncalibrated-fit-steps", type=number_in(0, 10), default=0, metavar="N",
                       help="with --pose-init triangulated and a view lifter: Gauss-Newton steps that move "
                            "uncalibrated mode's start and its placed views together towards every view's 2D "
                            "evidence (default 0: no such fit)")
    train.add_argument("--image-widths", type=number_in(64, 4096), nargs="+", default=None, metavar="PIXELS",
                       help="frame widths to draw the rigs at, one per batch (default: 256 pixels)")
    train.add_argument("--evidence-losses", choices=("all", "start"), default="all",
                       help="which iterations the losses on the 2D evidence reach: all (default), or the start's "
                            "2D joints alone, which train the uncalibrated camera, leaving the passes to the 3D "
                            "losses")
    train.add_argument("--fresh-heads", action="store_true",
                       help="with --init: start the pose and shape heads anew, so that every iteration first "
                            "leaves the estimate as it is (for a start much closer than the checkpoint's)")
    train.add_argument("--new-lr-scale", type=number_in(0.1, 1000.0, float), default=1.0, metavar="X",
                       help="with --init: the learning rate of the parameters the checkpoint lacks (a switch's new "
                            "embedding), times --lr (default 1)")
    train.add_argument("--image-features", choices=MODEL_CHOICES["image_features"], default="all",
                       help="what reads the frames: the orientation head and the decoder (default, as the paper), "
                            "the orientation head only (the paper's ablation), or nothing (frames are not drawn)")
    train.add_argument("--query", choices=MODEL_CHOICES["query"], default="spatial",
                       help="the decoder's queries: every heatmap patch of every view (default, as the paper) or "
                            "one pooled token per view (the paper's Fig. 9 ablation; the same weights)")
    train.add_argument("--joint-offsets", action="store_true",
                       help="let the decoder read each joint's offset from the estimate to the evidence as well "
                            "(not in the paper; a new embedding: with --init, it starts at zero)")
    train.add_argument("--offset-joints", choices=MODEL_CHOICES["offset_joints"], default="all",
                       help="with --joint-offsets, whose offsets: every joint's (default) or those above the knees")
    train.add_argument("--triangulated-offsets", action="store_true",
                       help="in calibrated mode, let the decoder read each joint's 3D offset from the estimate to "
                            "the triangulated evidence as well (not in the paper; a new embedding, starting at zero)")
    train.add_argument("--offset-unit", type=number_in(0.001, 1.0, float), default=1.0, metavar="METRES",
                       help="with --triangulated-offsets: metres per unit of the offsets as the decoder reads them "
                            "(default 1; 0.02 lets a centimetre count; fine-tuning to another unit rescales the "
                            "embedding so the network starts as the same function)")
    train.add_argument("--iteration-embedding", action="store_true",
                       help="let the decoder's queries carry the iteration's index as well (not in the paper; a "
                            "new embedding: with --init, it starts at zero)")
    train.add_argument("--mode-embedding", action="store_true",
                       help="let the decoder's queries carry the mode (calibrated or uncalibrated) as well (not in "
                            "the paper; a new embedding: with --init, it starts at zero)")
    train.add_argument("--evidence-scale", action="store_true",
                       help="let the decoder's queries carry how many image pixels a heatmap pixel spans in each "
                            "view's crop (not in the paper; a new embedding: with --init, it starts at zero)")
    train.add_argument("--step-gate", action="store_true",
                       help="scale each pass's pose and shape update of a view by a learnt gate of the pass and "
                            "the view's evidence scale (not in the paper; with --init, it starts at 1)")
    train.add_argument("--weight", action="append", default=[], metavar="LOSS=W",
                       help="a loss weight other than its default, e.g. orient=1.0 (repeatable; the losses: "
                            "joints3d, joints2d, orient, pose, betas, vertices, heatmap)")
    return parser


def print_progress(percent: int, message: str) -> None:
    bar = "#" * (percent // 5)
    print(f"\r[{bar:<20}] {percent:3d}% {message:<60}", end="" if percent < 100 else "\n", file=sys.stderr,
          flush=True)


def run_infer(args: argparse.Namespace) -> int:
    from core.body_model import BodyModel
    from core.detector import DetectorConfig
    from core.errors import InputError
    from core.inference import evaluate, refine_batch
    from core.model.checkpoint import load_model
    from core.resources import resolve_body_model_path, resolve_checkpoint_path
    from core.sequence import open_sequence

    sequence = open_sequence(args.data, DetectorConfig.load(args.detector) if args.detector else None,
                             args.calibration)
    first, last = args.frames or (0, len(sequence) - 1)
    if not 0 <= first <= last < len(sequence):
        raise InputError(args.data, f"frames {first}..{last} are outside this sequence's 0..{len(sequence) - 1}")
    body = BodyModel(resolve_body_model_path(args.body_model))
    model = load_model(resolve_checkpoint_path(args.checkpoint), body, official_2d=args.official_2d)
    if not model.trained:
        print("warning: no trained checkpoint, the network has RANDOM WEIGHTS: its output is not a result",
              file=sys.stderr)
    else:
        print(f"checkpoint: {model.identity} ({model.description})")
    modes = ("calibrated", "uncalibrated") if args.mode == "both" else (args.mode,)
    metrics = {mode: [] for mode in modes}  # every frame's per-iteration metrics, averaged over views
    for start in range(first, last + 1, args.batch):
        frames = range(start, min(start + args.batch, last + 1))
        samples = [sequence[frame] for frame in frames]
        for mode in modes:
            traces = refine_batch(samples, model, mode, args.iterations, progress=print_progress, device=args.device)
            for frame, sample, trace in zip(frames, samples, traces):
                evaluate(trace, sample, body)
                parts = [args.out.stem, sequence.frame_names[frame] if len(sequence) > 1 else "",
                         mode if len(modes) > 1 else ""]
                out = args.out.with_name(".".join(p for p in parts if p) + args.out.suffix)
                trace.save(out)
                print(f"{mode}: wrote {out} ({trace.iterations} iterations, {trace.info['device']}, "
                      f"network {trace.timings['network'] * 1000:.0f} ms per frame)")
                metrics[mode].append({n: per_iteration(v) for n, v in trace.metrics.items()})
    for mode, frames_metrics in metrics.items():
        names = sorted(set.intersection(*(set(m) for m in frames_metrics))) if frames_metrics else []
        if not names:
            continue
        with warnings.catch_warnings():  # a metric no frame has at an iteration stays NaN, quietly
            warnings.simplefilter("ignore", RuntimeWarning)
            table = {n: np.nanmean([m[n] for m in frames_metrics], axis=0) for n in names}
        count = len(frames_metrics)
        print(f"{mode}: " + ("per iteration" if count == 1 else f"per iteration, mean over {count} frames"))
        print("iteration " + " ".join(f"{n:>18}" for n in names))
        for k in range(len(table[names[0]])):
            print(f"{k:9d} " + " ".join(f"{table[n][k]:18.4g}" for n in names))
    return 0


def per_iteration(values: np.ndarray) -> np.ndarray:
    """(I,) a metric per iteration: one given per view (I, V) is averaged over the views that have it."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 1:
        return values
    with warnings.catch_warnings():  # a view without the metric (NaN) at every iteration leaves a NaN, quietly
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(values, axis=1)


def run_eval(args: argparse.Namespace) -> int:
    from core.body_model import BodyModel
    from core.evaluation import iterate_samples, report, run_evaluation
    from core.files import write_text
    from core.model.checkpoint import load_model
    from core.resources import resolve_body_model_path, resolve_checkpoint_path

    body = BodyModel(resolve_body_model_path(args.body_model))
    model = load_model(resolve_checkpoint_path(args.checkpoint), body, official_2d=args.official_2d)
    samples = list(iterate_samples(args.data))
    results, fits = run_evaluation(samples, model, body, iterations=args.iterations, progress=print_progress,
                                   device=args.device, baseline=not args.no_baseline)
    if not model.trained:
        print("warning: no trained checkpoint, the network has RANDOM WEIGHTS", file=sys.stderr)
    weights = model.identity if model.description in ("", model.identity) else (
        f"{model.identity} — {model.description}")
    text = report(results, f"HeatFormer on {args.data.name}: {weights}", fits)
    write_text(args.out, text)
    print(text)
    return 0


def run_export(args: argparse.Namespace) -> int:
    from core.errors import InputError
    from core.export import export_meshes, export_parameters
    from core.files import atomic_folder, safe_filename
    from core.trace import RefinementTrace

    trace = RefinementTrace.load(args.trace)
    iteration = trace.iterations if args.iteration is None else args.iteration
    unknown = sorted(set(args.views or []) - set(trace.view_names))
    if unknown:
        raise InputError(args.trace, f"no view(s) {', '.join(unknown)} in this trace ({', '.join(trace.view_names)})")
    views = None if not args.views else [trace.view_names.index(v) for v in args.views]
    with atomic_folder(args.out) as staging:  # the meshes and parameters appear together, or not at all
        try:
            written = export_meshes(trace, iteration, staging, views, fmt=args.format)
        except ValueError as exc:
            raise InputError(args.trace, str(exc)) from exc
        for suffix in ("npz", "json"):
            name = safe_filename(f"{trace.mode}_iter{iteration}_smpl.{suffix}")
            written.append(export_parameters(trace, iteration, staging / name))
    print("\n".join(f"wrote {args.out / p.name}" for p in written))
    return 0


def run_video(args: argparse.Namespace) -> int:
    from core.errors import InputError
    from core.heatformer_db import is_heatformer_db
    from core.sequence import open_sequence
    from core.trace import RefinementTrace
    from core.video import refinement_frames, write_video

    trace = RefinementTrace.load(args.trace)
    name = args.view or trace.view_names[0]
    if name not in trace.view_names:
        raise InputError(args.trace, f"no view {name} in this trace ({', '.join(trace.view_names)})")
    view = trace.view_names.index(name)
    source = Path(trace.info.get("sample_source", ""))
    if source.is_dir() or is_heatformer_db(source):
        # the trace's cameras may have come from another calibration file
        sample = open_sequence(source, calibration=trace.info.get("sample_calibration"))[
            int(trace.info.get("sample_frame", 0))]
        image, camera = sample.frames[view], sample.cameras[view]
        width, height = camera.width, camera.height
    else:
        print(f"warning: the trace's sample folder {source} is not here; drawing on black", file=sys.stderr)
        image = None
        corners = trace.crop_boxes[:, :2] + trace.crop_boxes[:, 2:]
        width, height = (int(np.ceil(c)) for c in corners.max(0))
    try:
        write_video(refinement_frames(trace, view, image, width, height), args.out, args.fps)
    except ValueError as exc:
        raise InputError(args.out, str(exc)) from exc
    print(f"wrote {args.out} ({trace.iterations + 1} frames, {trace.mode}, view {name})")
    return 0


def _loss_weights(items: list[str]):
    """``--weight LOSS=W`` options as LossWeights, the rest at their defaults."""
    from dataclasses import fields

    from core.training import LossWeights

    weights = {}
    for item in items:
        name, _, value = item.partition("=")
        if name not in {f.name for f in fields(LossWeights)}:
            raise SystemExit(f"train: --weight {item}: no loss named {name!r}")
        try:
            weights[name] = float(value)
        except ValueError:
            raise SystemExit(f"train: --weight {item}: {value!r} is not a number") from None
        if not 0 <= weights[name] < float("inf"):
            raise SystemExit(f"train: --weight {item}: a weight must be finite and not negative")
    return LossWeights(**weights)


def run_train(args: argparse.Namespace) -> int:
    from core.body_model import BodyModel
    from core.resources import resolve_body_model_path
    from core.model.config import preset
    from core.training import TrainingConfig, train

    if not 2 <= args.views[0] <= args.views[1] <= 8:
        raise SystemExit("train: --views needs 2 <= MIN <= MAX <= 8")
    if not 1 <= args.iterations <= 8:
        raise SystemExit("train: --iterations must be between 1 and 8")
    if args.workers < 0:
        raise SystemExit("train: --workers must be 0 or more")
    if args.appearance and args.image_features == "none":
        raise SystemExit("train: --appearance changes only the frames, which --image-features none does not read")
    if args.torso_alignment == "posed" and args.orientation_init != "triangulated":
        raise SystemExit("train: --torso-alignment posed turns the estimate onto the triangulated torso, which "
                         "--orientation-init triangulated reads")
    if args.pose_init == "triangulated" and args.orientation_init != "triangulated":
        raise SystemExit("train: --pose-init triangulated reads the triangulated joints, as --orientation-init "
                         "triangulated does; give both")
    if args.start_noise and args.pose_init != "triangulated":
        raise SystemExit("train: --start-noise perturbs the closed-form start of --pose-init triangulated")
    for flag in ("start_fit_steps", "start_view_fit_steps", "uncalibrated_fit_steps"):
        if getattr(args, flag) and args.pose_init != "triangulated":
            raise SystemExit(f"train: --{flag.replace('_', '-')} moves the closed-form start of --pose-init "
                             "triangulated")
    if args.fresh_heads and args.init is None:
        raise SystemExit("train: --fresh-heads starts the heads of an --init checkpoint anew; a new network's are")
    if args.offset_joints != "all" and not args.joint_offsets:
        raise SystemExit("train: --offset-joints chooses among the offsets that --joint-offsets gives the decoder")
    config = TrainingConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                            rigs=tuple(args.rigs), views=tuple(args.views), iterations=args.iterations,
                            weights=_loss_weights(args.weight), render_cell=args.render_cell,
                            appearance=args.appearance, definition_offset_m=args.definition_offset,
                            bend_deg=args.bend, fresh_heads=args.fresh_heads, new_lr_scale=args.new_lr_scale,
                            start_noise_deg=args.start_noise, image_widths=tuple(args.image_widths or ()),
                            evidence_losses=args.evidence_losses)
    body = BodyModel(resolve_body_model_path(args.body_model))
    model_config = preset("compact", refine_orientation=args.refine_orientation,
                          orientation_init=args.orientation_init, torso_alignment=args.torso_alignment,
                          pose_init=args.pose_init, start_fit_steps=args.start_fit_steps,
                          start_view_fit_steps=args.start_view_fit_steps,
                          uncalibrated_fit_steps=args.uncalibrated_fit_steps,
                          image_features=args.image_features,
                          joint_offsets=args.joint_offsets, offset_joints=args.offset_joints,
                          triangulated_offsets=args.triangulated_offsets,
                          triangulated_offset_unit=args.offset_unit,
                          iteration_embedding=args.iteration_embedding, mode_embedding=args.mode_embedding,
                          evidence_scale=args.evidence_scale, step_gate=args.step_gate,
                          query=args.query)
    train(args.out, config, body, model_config, device=args.device, resume=args.resume, init=args.init,
          workers=args.workers)
    print(f"wrote {args.out}")
    return 0


def run_train_prior(args: argparse.Namespace) -> int:
    from core.body_model import BodyModel
    from core.prior_training import train_start_prior
    from core.resources import resolve_body_model_path
    from core.training import TrainingConfig

    if not (2 <= args.views[0] <= args.views[1] <= 8) or args.workers < 0:
        raise SystemExit("train-prior: --views must be two counts from 2 to 8, --workers 0 or more")
    body = BodyModel(resolve_body_model_path(args.body_model))
    config = TrainingConfig(steps=args.steps, batch_size=16, lr=args.lr, seed=args.seed, rigs=tuple(args.rigs),
                            views=tuple(args.views), definition_offset_m=args.definition_offset,
                            bend_deg=args.bend, log_every=500, image_widths=tuple(args.image_widths or ()))
    train_start_prior(args.out, args.init, body, config, args.samples, args.width, args.part, workers=args.workers)
    print(f"wrote {args.out}")
    return 0


def run_synth(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from core.body_model import BodyModel
    from core.dataset_io import write_sample
    from core.resources import resolve_body_model_path
    from core.synthetic import EvidenceFaults, generate_sample, rig_preset

    rig = rig_preset(args.rig, args.views)
    if args.image_size:
        rig = replace(rig, image_size=tuple(args.image_size))
    if not 2 <= rig.views <= 8:
        raise SystemExit("synth: --views must be between 2 and 8")
    body = BodyModel(resolve_body_model_path(args.body_model))
    for i in range(args.count):
        out = args.out if args.count == 1 else args.out / f"{args.out.name}_{i:04d}"
        occluders = 0 if i < args.clean else args.occluders
        sample = generate_sample(body, seed=args.seed + i, rig=rig, occluders=occluders, name=out.name,
                                 appearance=args.appearance, bend_deg=args.bend,
                                 faults=EvidenceFaults(definition_offset_m=args.definition_offset))
        write_sample(sample, out, calibration_format=args.calibration_format)
        if args.count > 1:
            print_progress(int(100 * (i + 1) / args.count), out.name)
    print(f"wrote {args.out} ({args.count} sample(s), rig {args.rig}, {rig.views} views, {args.occluders} "
          f"occluder(s), seed {args.seed})")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "synth":
            return run_synth(args)
        if args.command == "infer":
            return run_infer(args)
        if args.command == "eval":
            return run_eval(args)
        if args.command == "export":
            return run_export(args)
        if args.command == "video":
            return run_video(args)
        if args.command == "train":
            return run_train(args)
        if args.command == "train-prior":
            return run_train_prior(args)
        from app.application import run_app
        return run_app(args)
    except Exception as exc:  # a clear one-line message for the command line, not a traceback
        from core.errors import InputError
        if isinstance(exc, (InputError, OSError)):  # bad input, or a path that cannot be written or read
            print(f"error: {exc}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())

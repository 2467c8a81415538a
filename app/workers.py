"""Long work off the GUI thread: loading a frame, running HeatFormer on it or on every frame, exporting many
files. Each worker reports progress, can be cancelled between steps, and ends with exactly one of `finished` or
`failed`."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PyQt6.QtCore import QObject, Qt, QThread, pyqtSignal

from app.state import LoadedScene
from core.body_model import BodyModel
from core.detector import DetectorConfig
from core.files import atomic_folder
from core.inference import evaluate, refine_batch
from core.model.checkpoint import load_model
from core.sample import MultiviewSample
from core.sequence import MultiviewSequence, open_sequence


class Cancelled(Exception):
    pass


class Worker(QObject):
    progress = pyqtSignal(int, str)
    finished = pyqtSignal(object)
    failed = pyqtSignal(str)

    def __init__(self):
        super().__init__()
        self._cancelled = False

    def cancel(self) -> None:
        self._cancelled = True

    def step(self, percent: int, text: str) -> None:
        """Report progress; raises `Cancelled` when the user asked to stop."""
        if self._cancelled:
            raise Cancelled()
        self.progress.emit(percent, text)

    def run(self) -> None:
        try:
            self.finished.emit(self.work())
        except Cancelled:
            self.failed.emit("cancelled")
        except Exception as exc:  # shown to the user; the app keeps its previous state
            self.failed.emit(str(exc))

    def work(self):
        raise NotImplementedError


class LoadWorker(Worker):
    """Open a sample or sequence folder (or reuse the open sequence), read one frame and pose its ground truth."""

    def __init__(self, folder: Path, body_model_path: Path | None, body: BodyModel | None = None, frame: int = 0,
                 sequence: MultiviewSequence | None = None, detector: DetectorConfig | None = None,
                 calibration: Path | None = None):
        super().__init__()
        self.folder, self.calibration = folder, calibration
        self.body_model_path = body_model_path
        self.body = body
        self.frame, self.sequence, self.detector = frame, sequence, detector

    def work(self) -> LoadedScene:
        self.step(5, f"reading {self.folder}")
        self.sequence = self.sequence or open_sequence(self.folder, self.detector, self.calibration)
        if not 0 <= self.frame < len(self.sequence):
            raise ValueError(f"{self.folder}: no frame {self.frame} (the sequence has {len(self.sequence)})")
        self.step(20, f"reading frame {self.sequence.frame_names[self.frame]}")
        sample = self.sequence[self.frame]
        self.step(50, "loading body model")
        self.body = self.body or BodyModel(self.body_model_path)
        truth_vertices = None
        gt = sample.ground_truth
        if gt is not None and gt.smpl_fits(self.body.identity):
            self.step(75, "posing ground-truth body")
            with torch.no_grad():
                out = self.body(torch.tensor(gt.global_orient[None], dtype=torch.float32),
                                torch.tensor(gt.body_pose[None], dtype=torch.float32),
                                torch.tensor(gt.betas[None], dtype=torch.float32),
                                torch.tensor((gt.transl if gt.transl is not None else np.zeros(3))[None],
                                             dtype=torch.float32))
            truth_vertices = out.vertices[0].numpy()
        self.step(100, "loaded")
        return LoadedScene(sample, self.body.identity, self.body.faces, truth_vertices,
                           tuple(self.sequence.frame_names))


class InferenceWorker(Worker):
    """Run HeatFormer in each requested mode and add metrics, on one sample or, given a sequence and frame indices,
    on those frames, `FRAMES_PER_BATCH` at a time in one network batch (each frame's traces are reported by
    `frame_done` as soon as they exist, so that a cancelled run keeps them). Loads the model first if needed."""

    FRAMES_PER_BATCH = 4
    frame_done = pyqtSignal(int, object)  # frame index, {mode: trace}

    def __init__(self, sample: MultiviewSample | None, body: BodyModel, checkpoint: Path | None, model=None,
                 modes=("calibrated", "uncalibrated"), iterations: int | None = None,
                 sequence: MultiviewSequence | None = None, frames: list[int] | None = None,
                 official_2d: bool = False):
        super().__init__()
        self.sample, self.body, self.checkpoint, self.model = sample, body, checkpoint, model
        self.modes, self.iterations = modes, iterations
        self.sequence, self.frames = sequence, frames
        self.official_2d = official_2d  # 2D evidence from the official checkpoint's AdaFuse

    def work(self) -> dict:
        if self.model is None or self.model.body is not self.body or self.model.official_2d != self.official_2d:
            self.step(2, "loading the HeatFormer checkpoint")
            self.model = load_model(self.checkpoint, self.body, official_2d=self.official_2d)
        if self.frames is None:
            return self.infer([self.sample], 0, 100)[0]
        done = {}
        for start in range(0, len(self.frames), self.FRAMES_PER_BATCH):
            chunk = self.frames[start:start + self.FRAMES_PER_BATCH]
            self.step(100 * start // len(self.frames), f"reading frames {start + 1}-{start + len(chunk)}")
            samples = [self.sequence[frame] for frame in chunk]
            results = self.infer(samples, 100 * start / len(self.frames), 100 * len(chunk) / len(self.frames),
                                 f"frames {start + 1}-{start + len(chunk)}/{len(self.frames)} ")
            for frame, traces in zip(chunk, results):
                done[frame] = traces
                self.frame_done.emit(frame, traces)
        return done

    def infer(self, samples: list[MultiviewSample], base: float, share: float, prefix: str = "") -> list[dict]:
        """{mode: trace} for each sample, all samples of a mode in one batch."""
        results = [{} for _ in samples]
        for i, mode in enumerate(self.modes):
            start = base + i * share / len(self.modes)

            def report(percent, text):
                self.step(int(start + percent * share / len(self.modes) / 100), prefix + text)

            traces = refine_batch(samples, self.model, mode, self.iterations, progress=report)
            for sample, trace, result in zip(samples, traces, results):
                evaluate(trace, sample, self.body)
                result[mode] = trace
        return results


class ExportWorker(Worker):
    """Write many files into ``folder``, one job at a time, in a staging folder that goes into place only when
    every job is done (core.files.atomic_folder): cancelled or failed, it leaves nothing. Returns every path."""

    def __init__(self, folder: Path, jobs: list[tuple[str, object]]):
        super().__init__()
        self.folder = folder
        # (what it writes, for the progress bar; a callable given the folder to write in, returning a path or a
        # list of them)
        self.jobs = jobs

    def work(self) -> list[Path]:
        written = []
        with atomic_folder(self.folder) as staging:
            for i, (name, write) in enumerate(self.jobs):
                self.step(int(100 * i / len(self.jobs)), f"writing {name}")
                result = write(staging)
                written += result if isinstance(result, list) else [result]
        return [self.folder / Path(p).relative_to(staging) for p in written]


def start_worker(worker: Worker) -> QThread:
    """Run ``worker.run`` in a new QThread that ends when the worker does."""
    thread = QThread()
    worker.moveToThread(thread)
    thread.started.connect(worker.run)
    # Direct: quit from the worker's own thread, so that a GUI thread waiting on it is never deadlocked.
    worker.finished.connect(thread.quit, Qt.ConnectionType.DirectConnection)
    worker.failed.connect(thread.quit, Qt.ConnectionType.DirectConnection)
    thread.start()
    return thread

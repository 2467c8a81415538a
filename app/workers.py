"""Long work off the GUI thread: loading a sample, running HeatFormer. Each worker reports progress, can be
cancelled between steps, and ends with exactly one of `finished` or `failed`."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PyQt6.QtCore import QObject, Qt, QThread, pyqtSignal

from app.state import LoadedScene
from core.body_model import BodyModel
from core.dataset_io import read_sample
from core.inference import evaluate, refine
from core.model.checkpoint import load_model
from core.sample import MultiviewSample


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
    """Read a sample folder and pose its ground-truth body."""

    def __init__(self, folder: Path, body_model_path: Path | None, body: BodyModel | None = None):
        super().__init__()
        self.folder = folder
        self.body_model_path = body_model_path
        self.body = body

    def work(self) -> LoadedScene:
        self.step(5, f"reading {self.folder}")
        sample = read_sample(self.folder)
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
        return LoadedScene(sample, self.body.identity, self.body.faces, truth_vertices)


class InferenceWorker(Worker):
    """Run HeatFormer in each requested mode and add metrics; loads the model first if needed."""

    def __init__(self, sample: MultiviewSample, body: BodyModel, checkpoint: Path | None, model=None,
                 modes=("calibrated", "uncalibrated"), iterations: int | None = None):
        super().__init__()
        self.sample, self.body, self.checkpoint, self.model = sample, body, checkpoint, model
        self.modes, self.iterations = modes, iterations

    def work(self) -> dict:
        if self.model is None or self.model.body is not self.body:
            self.step(2, "loading the HeatFormer checkpoint")
            self.model = load_model(self.checkpoint, self.body)
        traces = {}
        share = 100 // len(self.modes)
        for i, mode in enumerate(self.modes):
            def report(percent, text, base=i * share):
                self.step(base + percent * share // 100, text)

            trace = refine(self.sample, self.model, mode, self.iterations, progress=report)
            evaluate(trace, self.sample, self.body)
            traces[mode] = trace
        return traces


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

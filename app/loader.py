"""Loading off the GUI thread: read a sample folder and pose the ground-truth body, with progress and cancel."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PyQt6.QtCore import QObject, QThread, pyqtSignal

from app.state import LoadedScene
from core.body_model import BodyModel
from core.dataset_io import read_sample


class Cancelled(Exception):
    pass


class LoadWorker(QObject):
    progress = pyqtSignal(int, str)
    finished = pyqtSignal(object)  # LoadedScene
    failed = pyqtSignal(str)

    def __init__(self, folder: Path, body_model_path: Path | None, body: BodyModel | None = None):
        super().__init__()
        self.folder = folder
        self.body_model_path = body_model_path
        self.body = body
        self._cancelled = False

    def cancel(self) -> None:
        self._cancelled = True

    def _step(self, percent: int, text: str) -> None:
        if self._cancelled:
            raise Cancelled()
        self.progress.emit(percent, text)

    def run(self) -> None:
        try:
            self._step(5, f"reading {self.folder}")
            sample = read_sample(self.folder)
            self._step(50, "loading body model")
            body = self.body or BodyModel(self.body_model_path)
            self.body = body
            truth_vertices = None
            gt = sample.ground_truth
            if gt is not None and gt.has_smpl and gt.global_orient is not None:
                self._step(75, "posing ground-truth body")
                with torch.no_grad():
                    out = body(torch.tensor(gt.global_orient[None], dtype=torch.float32),
                               torch.tensor(gt.body_pose[None], dtype=torch.float32),
                               torch.tensor(gt.betas[None], dtype=torch.float32),
                               torch.tensor((gt.transl if gt.transl is not None else np.zeros(3))[None],
                                            dtype=torch.float32))
                truth_vertices = out.vertices[0].numpy()
            self._step(100, "done")
            self.finished.emit(LoadedScene(sample, body.identity, body.faces, truth_vertices))
        except Cancelled:
            self.failed.emit("loading cancelled")
        except Exception as exc:  # shown to the user; the app keeps its previous scene
            self.failed.emit(str(exc))


def start_worker(worker: QObject) -> QThread:
    """Run ``worker.run`` in a new QThread that cleans itself up."""
    thread = QThread()
    worker.moveToThread(thread)
    thread.started.connect(worker.run)
    worker.finished.connect(thread.quit)
    worker.failed.connect(thread.quit)
    thread.start()
    return thread

"""The main window: camera panels on the left, the 3D scene on the right, loading with progress and cancel."""
from __future__ import annotations

from pathlib import Path

from PyQt6.QtCore import Qt, QThread, pyqtSignal
from PyQt6.QtWidgets import QFileDialog, QMainWindow, QMessageBox, QProgressBar, QPushButton, QSplitter

from app.loader import LoadWorker, start_worker
from app.state import LoadedScene, StudioState
from app.views.scene3d import Scene3D
from app.views.view_grid import ViewGrid
from core.body_model import BodyModel

NO_MODEL_NOTE = "HeatFormer network not available yet: showing the data and its ground truth only"


class MainWindow(QMainWindow):
    load_succeeded = pyqtSignal()
    load_failed = pyqtSignal(str)

    def __init__(self, body_model_path: Path | None = None):
        super().__init__()
        self.setWindowTitle("HeatFormer Studio")
        self.resize(1400, 800)
        self.state = StudioState()
        self.body_model_path = body_model_path
        self.body: BodyModel | None = None
        self.thread: QThread | None = None
        self.worker: LoadWorker | None = None
        self.last_error = ""

        splitter = QSplitter(Qt.Orientation.Horizontal)
        self.view_grid = ViewGrid(self.state)
        self.scene3d = Scene3D(self.state)
        splitter.addWidget(self.view_grid)
        splitter.addWidget(self.scene3d)
        splitter.setSizes([700, 700])
        self.setCentralWidget(splitter)

        self.progress = QProgressBar()
        self.progress.setMaximumWidth(240)
        self.progress.hide()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.hide()
        self.cancel_button.clicked.connect(self.cancel_loading)
        self.statusBar().addPermanentWidget(self.progress)
        self.statusBar().addPermanentWidget(self.cancel_button)
        self.statusBar().showMessage(NO_MODEL_NOTE)

        open_action = self.menuBar().addMenu("&File").addAction("&Open sample folder...")
        open_action.setShortcut("Ctrl+O")
        open_action.triggered.connect(self.choose_folder)
        self.state.scene_changed.connect(self.describe_scene)

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a sample folder (native layout)")
        if folder:
            self.load(Path(folder))

    def load(self, folder: Path) -> None:
        """Load in a worker thread; on failure the current scene stays and the error is shown."""
        if self.thread is not None:
            self.cancel_loading()
            self.thread.wait()
        self.worker = LoadWorker(folder, self.body_model_path, self.body)
        self.worker.progress.connect(self.show_progress)
        self.worker.finished.connect(self.loaded)
        self.worker.failed.connect(self.loading_failed)
        self.progress.setValue(0)
        self.progress.show()
        self.cancel_button.show()
        self.thread = start_worker(self.worker)
        self.thread.finished.connect(self.thread_done)

    def cancel_loading(self) -> None:
        if self.worker is not None:
            self.worker.cancel()

    def thread_done(self) -> None:
        self.progress.hide()
        self.cancel_button.hide()
        self.thread = None

    def show_progress(self, percent: int, text: str) -> None:
        self.progress.setValue(percent)
        self.statusBar().showMessage(text)

    def loaded(self, scene: LoadedScene) -> None:
        self.body = self.worker.body if self.worker else self.body
        self.state.set_scene(scene)
        self.load_succeeded.emit()

    def loading_failed(self, message: str) -> None:
        self.last_error = message
        self.statusBar().showMessage(f"Could not load: {message}")
        if not self.property("headless"):
            QMessageBox.warning(self, "Could not load", message)
        self.load_failed.emit(message)

    def describe_scene(self, scene: LoadedScene) -> None:
        sample = scene.sample
        truth = "ground truth shown" if scene.truth_vertices is not None else "no ground-truth body"
        self.setWindowTitle(f"HeatFormer Studio — {sample.name}")
        self.statusBar().showMessage(f"{sample.name}: {sample.num_views} views, {truth} · body model "
                                     f"{scene.body_identity} · {NO_MODEL_NOTE}")

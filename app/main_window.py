"""The main window: camera panels on the left, the 3D scene on the right, loading with progress and cancel."""
from __future__ import annotations

from pathlib import Path

from PyQt6.QtCore import QSettings, Qt, QThread, pyqtSignal
from PyQt6.QtWidgets import QFileDialog, QMainWindow, QMessageBox, QProgressBar, QPushButton, QSplitter

from app.loader import LoadWorker, start_worker
from app.state import LoadedScene, StudioState
from app.views.scene3d import Scene3D
from app.views.view_grid import ViewGrid
from core.body_model import BodyModel
from core.resources import SAMPLE_SCENE, resolve_body_model_path

BODY_MODEL_SETTING = "body_model"
BODY_MODEL_DIALOG_TITLE = ("Choose your SMPL body model: SMPL_NEUTRAL.pkl or .npz (from the SMPL website; "
                           "needs v_template, f, J_regressor, kintree_table, weights, shapedirs)")
NO_MODEL_NOTE = "HeatFormer network not available yet: showing the data and its ground truth only"


class MainWindow(QMainWindow):
    load_succeeded = pyqtSignal()
    load_failed = pyqtSignal(str)

    def __init__(self, body_model_path: Path | None = None, settings: QSettings | None = None):
        super().__init__()
        self.setWindowTitle("HeatFormer Studio")
        self.resize(1400, 800)
        self.state = StudioState()
        self.settings = settings or QSettings("HeatFormer", "HeatFormer Studio")
        self.body_model_path = resolve_body_model_path(body_model_path, self.settings.value(BODY_MODEL_SETTING))
        self.body: BodyModel | None = None
        self.folder: Path = SAMPLE_SCENE
        self.thread: QThread | None = None
        self.switching_body_model = False
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

        file_menu = self.menuBar().addMenu("&File")
        open_action = file_menu.addAction("&Open sample folder...")
        open_action.setShortcut("Ctrl+O")
        open_action.triggered.connect(self.choose_folder)
        file_menu.addAction("Choose &body model (SMPL file)...").triggered.connect(self.choose_body_model)
        file_menu.addAction("Use the bundled &free body model").triggered.connect(lambda: self.use_body_model(None))
        self.state.scene_changed.connect(self.describe_scene)

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a sample folder (native layout)")
        if folder:
            self.load(Path(folder))

    def choose_body_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, BODY_MODEL_DIALOG_TITLE, "", "SMPL model (*.pkl *.npz)")
        if path:
            self.use_body_model(Path(path))

    def use_body_model(self, path: Path | None) -> None:
        """Reload the current data with another body model; the choice is saved only if it loads."""
        self.load(self.folder, body_model_path=path)

    def load(self, folder: Path, body_model_path: Path | None | bool = False) -> None:
        """Load in a worker thread; on failure the current scene stays and the error is shown.
        ``body_model_path`` (a path, or None for the free model) switches the body model; False keeps it."""
        if self.thread is not None:
            self.cancel_loading()
            self.thread.wait()
        self.switching_body_model = body_model_path is not False
        if self.switching_body_model:
            self.worker = LoadWorker(folder, body_model_path, None)
        else:
            self.worker = LoadWorker(folder, self.body_model_path, self.body)
        self.worker.progress.connect(self.show_progress)
        self.worker.finished.connect(self.loaded)
        self.worker.failed.connect(self.loading_failed)
        self.progress.setValue(0)
        self.progress.show()
        self.cancel_button.show()
        thread = start_worker(self.worker)
        thread.finished.connect(lambda: self.thread_done(thread))
        self.thread = thread

    def cancel_loading(self) -> None:
        if self.worker is not None:
            self.worker.cancel()

    def thread_done(self, thread: QThread) -> None:
        """A finished thread's signal can arrive after a newer load started: only the current one counts."""
        if thread is self.thread:
            self.progress.hide()
            self.cancel_button.hide()
            self.thread = None

    def show_progress(self, percent: int, text: str) -> None:
        self.progress.setValue(percent)
        self.statusBar().showMessage(text)

    def loaded(self, scene: LoadedScene) -> None:
        self.body, self.body_model_path = self.worker.body, self.worker.body_model_path
        if self.switching_body_model:
            self.settings.setValue(BODY_MODEL_SETTING, str(self.body_model_path or ""))
        self.folder = self.worker.folder
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

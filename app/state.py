"""The one state object every view follows (napari-style: the model owns the truth, views listen).

Views never talk to each other: a panel that wants joint 7 highlighted calls `select_joint(7)`, and every view
that shows joints hears `selected_joint_changed`. That is what "linked" means here.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PyQt6.QtCore import QObject, pyqtSignal

from core.sample import MultiviewSample
from core.trace import RefinementTrace

MODES = ("calibrated", "uncalibrated")
BOTH = "both"  # calibrated drawn as usual, uncalibrated overlaid in a second style
SIDE_BY_SIDE = "side by side"  # each camera's panel twice, calibrated beside uncalibrated; 3D as in "both"
# A/B: the estimates of another checkpoint (or of the same at another iteration count), B, beside A's in one mode:
# each camera's panel twice, B's meshes as wireframes in 3D and A's coloured by their distance to B's
AB_MODES = {"A/B calibrated": "calibrated", "A/B uncalibrated": "uncalibrated"}
DISPLAY_MODES = MODES + (BOTH, SIDE_BY_SIDE)
COMPARING = (BOTH, SIDE_BY_SIDE, *AB_MODES)
TWINNED = (SIDE_BY_SIDE, *AB_MODES)  # modes that show each camera's panel twice
LAYERS = {  # name -> shown by default
    "frame": True, "input heatmaps": True, "estimate heatmaps": False, "heatmap difference": False, "evidence": True,
    "estimate joints": True, "projected mesh": False,
    "per-view meshes": True, "fused mesh": False, "ground truth": True, "cameras": True,
}


@dataclass
class LoadedScene:
    """A sample plus what views need to draw it without recomputing: the ground-truth mesh if known."""

    sample: MultiviewSample
    body_identity: str
    faces: np.ndarray
    truth_vertices: np.ndarray | None  # (N, 3) world, metres
    frame_names: tuple[str, ...] = ()  # of the sequence the sample is a frame of (one name: a single sample)

    @property
    def frame_count(self) -> int:
        return max(len(self.frame_names), 1)


class StudioState(QObject):
    scene_changed = pyqtSignal(object)  # LoadedScene
    traces_changed = pyqtSignal()
    iteration_changed = pyqtSignal(int)
    mode_changed = pyqtSignal(str)
    selected_view_changed = pyqtSignal(int)  # -1 = none
    selected_joint_changed = pyqtSignal(int)  # -1 = none
    layers_changed = pyqtSignal()
    shown_views_changed = pyqtSignal()
    heat_opacity_changed = pyqtSignal(float)
    frame_requested = pyqtSignal(int)  # another frame of the sequence should be loaded (the window does it)
    ab_changed = pyqtSignal()  # B's estimates came or went

    def __init__(self):
        super().__init__()
        self.scene: LoadedScene | None = None
        self.traces: dict[str, RefinementTrace] = {}
        self.iteration = 0
        self.mode = "calibrated"
        self.selected_view = -1
        self.selected_joint = -1
        self.layers = dict(LAYERS)
        self.hidden_views: set[int] = set()
        self.heat_opacity = 1.0  # of the heatmap overlays, 0..1
        self.ab_traces: dict[str, RefinementTrace] = {}  # B's estimates of this scene, by mode
        self.ab_label = ""  # what B is: its checkpoint and iteration count

    @property
    def trace(self) -> RefinementTrace | None:
        """The trace of the current mode (calibrated when both are shown; A's in A/B), if it has been computed."""
        if self.mode in AB_MODES:
            return self.traces.get(AB_MODES[self.mode])
        return self.traces.get(MODES[0] if self.mode in COMPARING else self.mode)

    @property
    def comparison(self) -> RefinementTrace | None:
        """The trace shown with the current one: the uncalibrated ("both", "side by side") or B's (A/B)."""
        if self.mode in AB_MODES:
            return self.ab_traces.get(AB_MODES[self.mode])
        return self.traces.get(MODES[1]) if self.mode in COMPARING else None

    @property
    def comparison_label(self) -> str:
        """What the comparison is, for titles and legends."""
        return self.ab_label if self.mode in AB_MODES else MODES[1]

    def iteration_of(self, trace: RefinementTrace) -> int:
        """The iteration of ``trace`` shown: the current one, or its last if it has fewer (A/B at two counts)."""
        return min(self.iteration, trace.iterations)

    def view_shown(self, index: int) -> bool:
        return index not in self.hidden_views

    @property
    def max_iteration(self) -> int:
        return max((t.iterations for t in [*self.traces.values(), *self.ab_traces.values()]), default=0)

    def set_scene(self, scene: LoadedScene) -> None:
        self.scene = scene
        self.traces = {}
        self.iteration = 0
        self.selected_view = self.selected_joint = -1
        self.hidden_views = set()
        if self.ab_traces:
            self.set_ab({}, "")
        self.scene_changed.emit(scene)
        self.traces_changed.emit()

    def set_traces(self, traces: dict[str, RefinementTrace]) -> None:
        self.traces = dict(traces)
        if self.trace is None and self.traces:
            self.mode = next(iter(self.traces))
        self.iteration = min(self.iteration, self.max_iteration) if self.iteration else self.max_iteration
        self.traces_changed.emit()
        self.iteration_changed.emit(self.iteration)

    def set_ab(self, traces: dict[str, RefinementTrace], label: str) -> None:
        """B's estimates of the scene shown (empty: none); without them the A/B modes fall back to calibrated."""
        self.ab_traces, self.ab_label = dict(traces), label
        if not traces and self.mode in AB_MODES:
            self.mode = MODES[0]
            self.mode_changed.emit(self.mode)
        self.ab_changed.emit()
        self.traces_changed.emit()

    def request_frame(self, frame: int) -> None:
        if self.scene is not None and frame != self.scene.sample.frame and 0 <= frame < self.scene.frame_count:
            self.frame_requested.emit(frame)

    def set_iteration(self, iteration: int) -> None:
        iteration = int(np.clip(iteration, 0, self.max_iteration))
        if iteration != self.iteration:
            self.iteration = iteration
            self.iteration_changed.emit(iteration)

    def set_mode(self, mode: str) -> None:
        if mode != self.mode and (mode in DISPLAY_MODES or mode in AB_MODES and self.ab_traces):
            self.mode = mode
            self.mode_changed.emit(mode)

    def select_view(self, index: int) -> None:
        if index != self.selected_view:
            self.selected_view = index
            self.selected_view_changed.emit(index)

    def select_joint(self, index: int) -> None:
        if index != self.selected_joint:
            self.selected_joint = index
            self.selected_joint_changed.emit(index)

    def set_view_shown(self, index: int, shown: bool) -> None:
        if self.view_shown(index) != shown:
            self.hidden_views ^= {index}
            self.shown_views_changed.emit()

    def set_heat_opacity(self, opacity: float) -> None:
        opacity = float(np.clip(opacity, 0.0, 1.0))
        if opacity != self.heat_opacity:
            self.heat_opacity = opacity
            self.heat_opacity_changed.emit(opacity)

    def set_layer(self, name: str, shown: bool) -> None:
        if self.layers.get(name) != shown:
            self.layers[name] = shown
            self.layers_changed.emit()

"""The one state object every view follows (napari-style: the model owns the truth, views listen)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PyQt6.QtCore import QObject, pyqtSignal

from core.sample import MultiviewSample


@dataclass
class LoadedScene:
    """A sample plus what views need to draw it without recomputing: the ground-truth mesh if known."""

    sample: MultiviewSample
    body_identity: str
    faces: np.ndarray
    truth_vertices: np.ndarray | None  # (V, 3) world, metres


class StudioState(QObject):
    scene_changed = pyqtSignal(object)  # LoadedScene
    selected_view_changed = pyqtSignal(int)  # -1 = none
    selected_joint_changed = pyqtSignal(int)  # -1 = none

    def __init__(self):
        super().__init__()
        self.scene: LoadedScene | None = None
        self.selected_view = -1
        self.selected_joint = -1

    def set_scene(self, scene: LoadedScene) -> None:
        self.scene = scene
        self.selected_view = self.selected_joint = -1
        self.scene_changed.emit(scene)

    def select_view(self, index: int) -> None:
        if index != self.selected_view:
            self.selected_view = index
            self.selected_view_changed.emit(index)

    def select_joint(self, index: int) -> None:
        if index != self.selected_joint:
            self.selected_joint = index
            self.selected_joint_changed.emit(index)

"""Per-camera 2D panels (pyqtgraph): the frame with the 2D evidence drawn over it."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt6.QtWidgets import QWidget, QGridLayout

from app.colors import view_color
from app.state import LoadedScene, StudioState

pg.setConfigOptions(imageAxisOrder="row-major", antialias=True)


class ViewPanel(pg.GraphicsLayoutWidget):
    """One camera: image, keypoints coloured by confidence (missing ones not drawn), skeleton."""

    def __init__(self, index: int, state: StudioState):
        super().__init__()
        self.index = index
        self.state = state
        self.setBackground("#202124")
        self.plot = self.addPlot()
        self.plot.hideAxis("left")
        self.plot.hideAxis("bottom")
        self.plot.invertY(True)
        self.plot.setAspectLocked(True)
        self.image = pg.ImageItem()
        self.skeleton = pg.PlotCurveItem(pen=pg.mkPen("#ffffff", width=2), connect="pairs")
        self.keypoints = pg.ScatterPlotItem(size=8, pen=pg.mkPen("k", width=0.5))
        for item in (self.image, self.skeleton, self.keypoints):
            self.plot.addItem(item)
        self.setStyleSheet(f"border: 3px solid {view_color(index)};")
        self.scene().sigMouseClicked.connect(lambda _event: state.select_view(self.index))

    def show_view(self, scene: LoadedScene) -> None:
        sample = scene.sample
        camera = sample.cameras[self.index]
        self.plot.setTitle(f"<span style='color:{view_color(self.index)}'>{camera.name}</span>")
        frame = sample.frames[self.index]
        self.image.setImage(frame if frame is not None else np.zeros((camera.height, camera.width, 3), np.uint8),
                            levels=(0, 255))
        self.plot.setRange(xRange=(0, camera.width), yRange=(0, camera.height), padding=0.02)
        if sample.keypoints is None:
            self.keypoints.setData([], [])
            self.skeleton.setData([], [])
            return
        kp = sample.keypoints[self.index]
        seen = kp[:, 2] > 0
        brushes = [pg.mkBrush(pg.colormap.get("viridis").map(float(c), mode="qcolor")) for c in kp[seen, 2]]
        self.keypoints.setData(kp[seen, 0], kp[seen, 1], brush=brushes)
        edges = [(a, b) for a, b in sample.joints.edges if seen[a] and seen[b]]
        points = kp[np.array(edges).reshape(-1), :2] if edges else np.zeros((0, 2))
        self.skeleton.setData(points[:, 0], points[:, 1])


class ViewGrid(QWidget):
    """As many panels as the sample has views, laid out in a near-square grid."""

    def __init__(self, state: StudioState):
        super().__init__()
        self.state = state
        self.panels: list[ViewPanel] = []
        self.layout_ = QGridLayout(self)
        self.layout_.setContentsMargins(0, 0, 0, 0)
        state.scene_changed.connect(self.show_scene)

    def show_scene(self, scene: LoadedScene) -> None:
        views = scene.sample.num_views
        while len(self.panels) > views:
            self.panels.pop().deleteLater()
        columns = int(np.ceil(np.sqrt(views)))
        for index in range(views):
            if index == len(self.panels):
                self.panels.append(ViewPanel(index, self.state))
            self.layout_.addWidget(self.panels[index], index // columns, index % columns)
            self.panels[index].show_view(scene)

"""Per-camera 2D panels (pyqtgraph): the frame, the input heatmaps and those rendered from the current estimate
(inside the crop the network saw), the 2D evidence, and the estimate's reprojected joints and skeleton."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QRectF
from PyQt6.QtWidgets import QGridLayout, QWidget

from app.colors import view_color
from app.state import LoadedScene, StudioState

pg.setConfigOptions(imageAxisOrder="row-major", antialias=False)  # antialiasing costs more than it shows


def heat_lut(color: tuple[int, int, int]) -> np.ndarray:
    """A lookup table from 0 (transparent) to 1 (opaque ``color``), so heatmaps overlay the frame."""
    ramp = np.linspace(0, 1, 256)
    lut = np.zeros((256, 4), dtype=np.ubyte)
    lut[:, :3] = np.asarray(color)
    lut[:, 3] = (np.clip(ramp * 1.4, 0, 1) * 200).astype(np.ubyte)
    return lut


INPUT_LUT = heat_lut((255, 200, 0))
ESTIMATE_LUT = heat_lut((0, 220, 255))


def difference_lut() -> np.ndarray:
    """-1 (estimate only) blue ... 0 transparent ... +1 (input only) red."""
    ramp = np.linspace(-1, 1, 256)
    lut = np.zeros((256, 4), dtype=np.ubyte)
    lut[:, 0] = np.where(ramp > 0, 255, 40)
    lut[:, 1] = 60
    lut[:, 2] = np.where(ramp < 0, 255, 40)
    lut[:, 3] = (np.clip(np.abs(ramp) * 1.4, 0, 1) * 210).astype(np.ubyte)
    return lut


DIFFERENCE_LUT = difference_lut()


class ViewPanel(pg.GraphicsLayoutWidget):
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
        self.plot.setMenuEnabled(False)
        self.image = pg.ImageItem()
        self.input_heat = pg.ImageItem(lut=INPUT_LUT, levels=(0, 1))
        self.estimate_heat = pg.ImageItem(lut=ESTIMATE_LUT, levels=(0, 1))
        self.difference_heat = pg.ImageItem(lut=DIFFERENCE_LUT, levels=(-1, 1))
        self.crop = pg.PlotCurveItem(pen=pg.mkPen("#ffffff", width=1, style=pg.QtCore.Qt.PenStyle.DashLine))
        self.evidence_bones = pg.PlotCurveItem(pen=pg.mkPen("#dddddd", width=1.5), connect="pairs")
        self.evidence = pg.ScatterPlotItem(size=7, pen=pg.mkPen("k", width=0.5))
        self.estimate_bones = pg.PlotCurveItem(pen=pg.mkPen(view_color(index), width=2.5), connect="pairs")
        self.estimate = pg.ScatterPlotItem(size=6, brush=pg.mkBrush(view_color(index)), pen=pg.mkPen("w", width=1))
        self.highlight = pg.ScatterPlotItem(size=18, brush=None, pen=pg.mkPen("#ffffff", width=2.5))
        for item in (self.image, self.input_heat, self.estimate_heat, self.difference_heat, self.crop, self.evidence_bones, self.evidence,
                     self.estimate_bones, self.estimate, self.highlight):
            self.plot.addItem(item)
        self.setStyleSheet(f"border: 3px solid {view_color(index)};")
        self.scene().sigMouseClicked.connect(self.clicked)
        state.iteration_changed.connect(self.update_iteration)
        state.mode_changed.connect(lambda _m: self.show_trace())
        state.traces_changed.connect(self.show_trace)
        state.layers_changed.connect(self.apply_layers)
        state.selected_joint_changed.connect(lambda _j: self.update_iteration())

    def clicked(self, event) -> None:
        """Select this view; a click near a joint also selects that joint everywhere."""
        self.state.select_view(self.index)
        points = self._joint_positions()
        if points is None:
            return
        where = self.plot.vb.mapSceneToView(event.scenePos())
        distance = np.hypot(points[:, 0] - where.x(), points[:, 1] - where.y())
        camera = self.state.scene.sample.cameras[self.index]
        nearest = int(np.nanargmin(distance))
        self.state.select_joint(nearest if distance[nearest] < 0.03 * max(camera.width, camera.height) else -1)

    def _joint_positions(self) -> np.ndarray | None:
        trace = self.state.trace
        if trace is not None:
            return trace.joints2d[self.state.iteration, self.index]
        sample = self.state.scene.sample if self.state.scene else None
        return sample.keypoints[self.index, :, :2] if sample is not None and sample.keypoints is not None else None

    def set_title(self) -> None:
        """Camera name, and once the calibrated estimate exists, how well the triangulated joints reproject into
        this view (median px): a per-camera check of the calibration."""
        camera = self.state.scene.sample.cameras[self.index]
        text = camera.name
        calibrated = self.state.traces.get("calibrated")
        consistency = calibrated.info.get("view_consistency_px") if calibrated is not None else None
        if consistency and np.isfinite(consistency[self.index]):
            text += f" · triangulation reprojects within {consistency[self.index]:.1f} px"
        self.plot.setTitle(f"<span style='color:{view_color(self.index)}'>{text}</span>")

    def show_view(self, scene: LoadedScene) -> None:
        sample = scene.sample
        camera = sample.cameras[self.index]
        self.set_title()
        frame = sample.frames[self.index]
        self.image.setImage(frame if frame is not None else np.zeros((camera.height, camera.width, 3), np.uint8),
                            levels=(0, 255))
        self.plot.setRange(xRange=(0, camera.width), yRange=(0, camera.height), padding=0.02)
        self._set_evidence(sample.keypoints[self.index] if sample.keypoints is not None else None, sample.joints.edges)
        self.show_trace()

    def _set_evidence(self, keypoints: np.ndarray | None, edges) -> None:
        if keypoints is None:
            self.evidence.setData([], [])
            self.evidence_bones.setData([], [])
            return
        seen = keypoints[:, 2] > 0
        colormap = pg.colormap.get("viridis")
        self.evidence.setData(keypoints[seen, 0], keypoints[seen, 1],
                              brush=[pg.mkBrush(colormap.map(float(c), mode="qcolor")) for c in keypoints[seen, 2]])
        pairs = [(a, b) for a, b in edges if seen[a] and seen[b]]
        points = keypoints[np.array(pairs).reshape(-1), :2] if pairs else np.zeros((0, 2))
        self.evidence_bones.setData(points[:, 0], points[:, 1])

    def show_trace(self) -> None:
        """Place the heatmap overlays on the crop box of the current mode's trace (or hide them)."""
        self.set_title()
        trace = self.state.trace
        if trace is not None:
            x0, y0, bw, bh = (float(x) for x in trace.crop_boxes[self.index])
            rect = QRectF(x0, y0, bw, bh)
            for item in (self.input_heat, self.estimate_heat, self.difference_heat):
                item.setRect(rect)
            self.crop.setData([x0, x0 + bw, x0 + bw, x0, x0], [y0, y0, y0 + bh, y0 + bh, y0])
        else:
            self.crop.setData([], [])
        self.update_iteration()
        self.apply_layers()

    def _heat(self, item: pg.ImageItem, heatmaps: np.ndarray) -> np.ndarray:
        joint = self.state.selected_joint
        shown = heatmaps[joint] if joint >= 0 else heatmaps.max(0)
        item.setImage(shown, levels=(0, 1), autoLevels=False)
        return shown

    def update_iteration(self, *_args) -> None:
        """Everything that depends on the iteration or the selected joint, from precomputed arrays only."""
        trace = self.state.trace
        joint = self.state.selected_joint
        positions = self._joint_positions()
        if trace is None:
            self.estimate.setData([], [])
            self.estimate_bones.setData([], [])
        else:
            k = self.state.iteration
            joints = trace.joints2d[k, self.index]
            self.estimate.setData(joints[:, 0], joints[:, 1])
            edges = self.state.scene.sample.joints.edges
            pairs = joints[np.array(edges).reshape(-1)]
            self.estimate_bones.setData(pairs[:, 0], pairs[:, 1])
            estimate = self._heat(self.estimate_heat, trace.heatmaps[k, self.index])
            evidence = self._heat(self.input_heat, trace.input_heatmaps[self.index])
            self.difference_heat.setImage(evidence - estimate, levels=(-1, 1), autoLevels=False)
        if joint >= 0 and positions is not None:
            self.highlight.setData([positions[joint, 0]], [positions[joint, 1]])
        else:
            self.highlight.setData([], [])

    def apply_layers(self) -> None:
        layers, has_trace = self.state.layers, self.state.trace is not None
        self.image.setVisible(layers["frame"])
        self.input_heat.setVisible(layers["input heatmaps"] and has_trace)
        self.estimate_heat.setVisible(layers["estimate heatmaps"] and has_trace)
        self.difference_heat.setVisible(layers["heatmap difference"] and has_trace)
        self.crop.setVisible(has_trace and (layers["input heatmaps"] or layers["estimate heatmaps"]
                                            or layers["heatmap difference"]))
        for item in (self.evidence, self.evidence_bones):
            item.setVisible(layers["evidence"])
        for item in (self.estimate, self.estimate_bones):
            item.setVisible(layers["estimate joints"] and has_trace)


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

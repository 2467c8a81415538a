"""Per-camera 2D panels (pyqtgraph): the frame, the input heatmaps and those rendered from the current estimate
(inside the crop the network saw), the 2D evidence, the estimate's reprojected joints, skeleton and mesh
silhouette, and the ground truth with the joints an occluder hides."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QRectF, QTimer
from PyQt6.QtWidgets import QGridLayout, QWidget

from app.colors import TRUTH_JOINT_COLOR, view_color
from app.views.caching import ScatterItem, cache_pixels
from app.state import AB_MODES, SIDE_BY_SIDE, TWINNED, LoadedScene, StudioState
from core.cameras import project_points
from core.joints import H36M17, convert_keypoints, synthesised_joints
from core.render import splat_silhouette

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


def mask_lut(color: str) -> np.ndarray:
    """0 transparent, 1 the view's colour half opaque: a silhouette over the frame."""
    lut = np.zeros((2, 4), dtype=np.ubyte)
    lut[1] = pg.mkColor(color).getRgb()[:3] + (110,)
    return lut


NOTE_WIDTH = 200  # screen pixels the evidence note wraps at: a portrait frame's panel is narrow
JOINT_SET_LABELS = {"coco17": "COCO-17", "body25": "BODY_25", "halpe26": "HALPE_26", "smpl24": "SMPL-24"}


def evidence_note(sample, view: int) -> str:
    """Where a view's evidence came from, in words: which of the built-in detector's people it is, which H36M
    joints were made from another joint set's (COCO-17's pelvis, spine, thorax, neck and head top), and whether the
    image is only the top-left part of the calibrated frame (a video codec's padding)."""
    lines = []
    camera = sample.cameras[view]
    padded = camera.calibrated_size
    if padded is not None:
        lines.append(f"image {camera.width}x{camera.height}: top-left of the calibrated {padded[0]}x{padded[1]}")
    if sample.evidence_notes:
        lines.append(sample.evidence_notes[view])
    if sample.keypoints is not None and sample.joint_set != H36M17.name:
        name = JOINT_SET_LABELS.get(sample.joint_set, sample.joint_set)
        lines.append(f"{name}; made: {', '.join(synthesised_joints(sample.joints))}")
    return "\n".join(lines)


def has_points(item: pg.ScatterPlotItem | pg.PlotCurveItem | pg.TextItem) -> bool:
    """Whether a point or curve item holds any data: pyqtgraph paints empty ones too (about a millisecond a slider
    step for the four panels' unused overlays), so they are hidden while empty."""
    if isinstance(item, pg.TextItem):
        return bool(item.toPlainText())
    if isinstance(item, pg.ScatterPlotItem):
        return len(item.data) > 0
    return item.xData is not None and len(item.xData) > 0


def clear(*items: pg.ScatterPlotItem | pg.PlotCurveItem) -> None:
    """Empty the items that hold data: setting empty data costs as much as setting data (the unused overlays of
    the four panels, cleared at every slider step, took about a millisecond)."""
    for item in items:
        if has_points(item):
            item.setData([], [])


class ViewPanel(pg.GraphicsLayoutWidget):
    """One camera's view of the current mode's estimate or, as a ``twin``, of the comparison's (the right half of
    "side by side": the uncalibrated estimate; of A/B: B's; a twin follows the state only while ``active``)."""

    def __init__(self, index: int, state: StudioState, twin: bool = False):
        super().__init__()
        self.index = index
        self.state = state
        self.twin = twin
        self.active = not twin
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
        self.silhouette = pg.ImageItem(lut=mask_lut(view_color(index)), levels=(0, 1))
        self.crop = pg.PlotCurveItem(pen=pg.mkPen("#ffffff", width=1, style=pg.QtCore.Qt.PenStyle.DashLine))
        self.evidence_bones = pg.PlotCurveItem(pen=pg.mkPen("#dddddd", width=1.5), connect="pairs")
        self.evidence = ScatterItem(size=7, pen=pg.mkPen("k", width=0.5))
        self.estimate_bones = pg.PlotCurveItem(pen=pg.mkPen(view_color(index), width=2.5), connect="pairs")
        self.estimate = ScatterItem(size=6, brush=pg.mkBrush(view_color(index)), pen=pg.mkPen("w", width=1))
        # "both" mode: the uncalibrated estimate, dashed and hollow, over the calibrated one
        self.comparison_bones = pg.PlotCurveItem(
            pen=pg.mkPen(view_color(index), width=2, style=pg.QtCore.Qt.PenStyle.DashLine), connect="pairs")
        self.comparison_points = ScatterItem(size=7, symbol="s", brush=None,
                                             pen=pg.mkPen(view_color(index), width=1.5))
        self.truth = ScatterItem(size=9, symbol="+", pen=pg.mkPen(TRUTH_JOINT_COLOR, width=2))
        self.occluded = ScatterItem(size=12, symbol="x", pen=pg.mkPen("#ff3030", width=2.5))
        self.highlight = ScatterItem(size=18, brush=None, pen=pg.mkPen("#ffffff", width=2.5))
        # where the evidence came from: the detector's choice, the joints made from another joint set
        self.evidence_note = pg.TextItem(color="#e8e8e8", fill=pg.mkBrush(0, 0, 0, 150), anchor=(0, 0))
        font = pg.QtGui.QFont()
        font.setPointSize(8)
        self.evidence_note.setFont(font)
        self.evidence_note.setTextWidth(NOTE_WIDTH)
        # the point and line overlays by the layer that shows them (the highlight by none: it marks the selection)
        self.point_layers = {
            "evidence": (self.evidence, self.evidence_bones, self.evidence_note),
            "ground truth": (self.truth, self.occluded),
            "estimate joints": (self.estimate, self.estimate_bones, self.comparison_points, self.comparison_bones),
            None: (self.highlight,)}
        self.silhouettes: dict[tuple[int, int], tuple[np.ndarray, tuple]] = {}  # (id(trace), iteration) -> mask
        self.input_key: tuple[int, int] | None = None  # (id(trace), joint) the input heatmaps are drawn for
        for item in (self.image, self.silhouette, self.input_heat, self.estimate_heat, self.difference_heat, self.crop,
                     self.evidence_bones, self.evidence, self.truth, self.occluded, self.comparison_bones,
                     self.comparison_points, self.estimate_bones, self.estimate, self.highlight, self.evidence_note):
            self.plot.addItem(item)
        # what moves with the iteration (estimate, its heatmaps, silhouette, selection) is drawn afresh
        cache_pixels(self.image, self.input_heat, self.crop, self.evidence_bones, self.evidence, self.truth,
                     self.occluded)
        self.set_heat_opacity(state.heat_opacity)
        self.setStyleSheet(f"border: 3px {'dashed' if twin else 'solid'} {view_color(index)};")
        self.scene().sigMouseClicked.connect(self.clicked)
        self.plot.vb.sigResized.connect(lambda _vb: self.fit_frame())
        self.followed = [(state.iteration_changed, self.update_iteration), (state.mode_changed, self.show_trace),
                         (state.traces_changed, self.forget_drawn), (state.traces_changed, self.show_trace),
                         (state.layers_changed, self.apply_layers), (state.heat_opacity_changed, self.set_heat_opacity),
                         (state.selected_joint_changed, self.update_iteration)]
        for signal, slot in self.followed:
            signal.connect(slot)

    def detach(self) -> None:
        """Stop following the state: a panel about to be deleted (its view gone) must not draw the new scene."""
        for signal, slot in self.followed:
            signal.disconnect(slot)

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

    @property
    def trace(self):
        return self.state.comparison if self.twin else self.state.trace

    @property
    def comparison(self):
        """The trace overlaid on this panel's ("both" mode only)."""
        return None if self.twin or self.state.mode in TWINNED else self.state.comparison

    def _joint_positions(self) -> np.ndarray | None:
        trace = self.trace
        if trace is not None:
            return trace.joints2d[self.state.iteration_of(trace), self.index]
        sample = self.state.scene.sample if self.state.scene else None
        if sample is None or sample.keypoints is None:
            return None
        return convert_keypoints(sample.keypoints[self.index], sample.joints, H36M17)[:, :2]  # the selector's joints

    def set_title(self) -> None:
        """Camera name, and once the calibrated estimate exists, how well the triangulated joints reproject into
        this view (median px): a per-camera check of the calibration. Side by side, the mode instead (pyqtgraph
        does not let a plot be narrower than its title, and the panels are half as wide)."""
        camera = self.state.scene.sample.cameras[self.index]
        text = camera.name
        calibrated = self.state.traces.get("calibrated")
        consistency = calibrated.info.get("view_consistency_px") if calibrated is not None else None
        if self.state.mode == SIDE_BY_SIDE:
            text += f" · {'uncalibrated' if self.twin else 'calibrated'}"
        elif self.state.mode in AB_MODES:  # (what B is: in the status bar and the 3D view's corner)
            text += f" · {'B' if self.twin else 'A'}"
        elif consistency and np.isfinite(consistency[self.index]):
            text += f" · triangulation reprojects within {consistency[self.index]:.1f} px"
        self.plot.setTitle(f"<span style='color:{view_color(self.index)}'>{text}</span>")
        # A plot resized while its title was longer stays as wide as that title allowed (second side by side, A/B):
        # fit it to the view again once the layout knows the new title's width.
        QTimer.singleShot(0, self.refit_layout)

    def refit_layout(self) -> None:
        self.ci.setGeometry(self.range)

    def show_view(self, scene: LoadedScene) -> None:
        sample = scene.sample
        camera = sample.cameras[self.index]
        self.set_title()
        frame = sample.frames[self.index]
        self.image.setImage(frame if frame is not None else np.zeros((camera.height, camera.width, 3), np.uint8),
                            levels=(0, 255))
        self.fit_frame()
        self._set_evidence(sample.keypoints[self.index] if sample.keypoints is not None else None, sample.joints.edges)
        self.evidence_note.setText(evidence_note(sample, self.index))
        self._set_truth(sample)
        self.show_trace()

    def fit_frame(self) -> None:
        """Show the whole frame: on a new scene, and when the panel's size changes (side by side halves it)."""
        if self.state.scene is not None and self.index < self.state.scene.sample.num_views:
            camera = self.state.scene.sample.cameras[self.index]
            self.plot.setRange(xRange=(0, camera.width), yRange=(0, camera.height), padding=0.02)

    def _set_truth(self, sample) -> None:
        """Ground-truth joints projected into this view; a red cross where an occluder hides one."""
        gt = sample.ground_truth
        if gt is None or gt.joints3d is None:
            clear(self.truth, self.occluded)
            return
        known = gt.known_joints
        uv, _ = project_points(gt.joints3d[known], sample.cameras[self.index])
        self.truth.setData(uv[:, 0], uv[:, 1])
        hidden = gt.occluded[self.index][known] if gt.occluded is not None else np.zeros(len(uv), bool)
        self.occluded.setData(uv[hidden, 0], uv[hidden, 1])

    def set_heat_opacity(self, opacity: float) -> None:
        for item in (self.input_heat, self.estimate_heat, self.difference_heat):
            item.setOpacity(opacity)

    def forget_drawn(self) -> None:
        """A new trace: the cached silhouettes and the drawn input heatmaps belong to the old one."""
        self.silhouettes = {}
        self.input_key = None

    def _set_evidence(self, keypoints: np.ndarray | None, edges) -> None:
        if keypoints is None:
            clear(self.evidence, self.evidence_bones)
            return
        seen = keypoints[:, 2] > 0
        colormap = pg.colormap.get("viridis")
        self.evidence.setData(keypoints[seen, 0], keypoints[seen, 1],
                              brush=[pg.mkBrush(colormap.map(float(c), mode="qcolor")) for c in keypoints[seen, 2]])
        pairs = [(a, b) for a, b in edges if seen[a] and seen[b]]
        points = keypoints[np.array(pairs).reshape(-1), :2] if pairs else np.zeros((0, 2))
        self.evidence_bones.setData(points[:, 0], points[:, 1])

    def show_trace(self, *_args) -> None:
        """Place the heatmap overlays on the crop box of the current mode's trace (or hide them)."""
        if not self.active:
            return
        self.set_title()
        trace = self.trace
        if trace is not None:
            x0, y0, bw, bh = (float(x) for x in trace.crop_boxes[self.index])
            self.crop.setData([x0, x0 + bw, x0 + bw, x0, x0], [y0, y0, y0 + bh, y0 + bh, y0])
        else:
            clear(self.crop)
        self.update_iteration()
        self.apply_layers()

    def _heat(self, heatmaps: np.ndarray) -> np.ndarray:
        joint = self.state.selected_joint
        return heatmaps[joint] if joint >= 0 else heatmaps.max(0)

    def _set_heatmaps(self, trace) -> None:
        """Only the heatmap layers shown are redrawn (images are the costliest thing a panel paints); the input
        heatmaps do not change with the iteration, so they are redrawn only for another trace or joint."""
        if trace is None:
            return
        layers, k = self.state.layers, self.state.iteration_of(trace)
        input_key = (id(trace), self.state.selected_joint)
        # the crop box goes with every image: pyqtgraph places an image in a rectangle only once it has one
        placed = dict(autoLevels=False, rect=QRectF(*(float(x) for x in trace.crop_boxes[self.index])))
        if layers["input heatmaps"] and self.input_key != input_key:
            self.input_heat.setImage(self._heat(trace.input_heatmaps[self.index]), levels=(0, 1), **placed)
            self.input_key = input_key
        if layers["estimate heatmaps"]:
            self.estimate_heat.setImage(self._heat(trace.heatmaps[k, self.index]), levels=(0, 1), **placed)
        if layers["heatmap difference"]:
            difference = self._heat(trace.input_heatmaps[self.index]) - self._heat(trace.heatmaps[k, self.index])
            self.difference_heat.setImage(difference, levels=(-1, 1), **placed)

    def _set_skeleton(self, trace, points: pg.ScatterPlotItem, bones: pg.PlotCurveItem) -> None:
        if trace is None:
            clear(points, bones)
            return
        joints = trace.joints2d[self.state.iteration_of(trace), self.index]
        points.setData(joints[:, 0], joints[:, 1])
        pairs = joints[np.array(H36M17.edges).reshape(-1)]  # estimates are H36M-17, whatever the evidence's joints
        bones.setData(pairs[:, 0], pairs[:, 1])

    def _set_silhouette(self, trace) -> None:
        """The estimate's mesh projected into this view, cached per iteration (cheap, but not free)."""
        if trace is None or trace.vertices2d is None or not self.state.layers["projected mesh"]:
            return
        key = (id(trace), self.state.iteration_of(trace))
        if key not in self.silhouettes:
            self.silhouettes[key] = splat_silhouette(trace.vertices2d[key[1], self.index])
        mask, rect = self.silhouettes[key]
        self.silhouette.setImage(mask.astype(np.uint8), levels=(0, 1), autoLevels=False)
        self.silhouette.setRect(QRectF(*rect))

    def update_iteration(self, *_args) -> None:
        """Everything that depends on the iteration or the selected joint, from precomputed arrays only."""
        if not self.active:
            return
        trace = self.trace
        joint = self.state.selected_joint
        positions = self._joint_positions()
        self._set_skeleton(trace, self.estimate, self.estimate_bones)
        self._set_skeleton(self.comparison, self.comparison_points, self.comparison_bones)
        self._set_silhouette(trace)
        self._set_heatmaps(trace)
        if joint >= 0 and positions is not None:
            self.highlight.setData([positions[joint, 0]], [positions[joint, 1]])
        else:
            clear(self.highlight)
        self._show_points()

    def _show_points(self) -> None:
        """Each point and line overlay shown while its layer is on and it has something to draw."""
        layers = self.state.layers
        for layer, items in self.point_layers.items():
            for item in items:
                item.setVisible((layer is None or layers[layer]) and has_points(item))

    def apply_layers(self) -> None:
        if not self.active:
            return
        self._set_silhouette(self.trace)  # computed only while shown
        self._set_heatmaps(self.trace)
        layers, has_trace = self.state.layers, self.trace is not None
        self.image.setVisible(layers["frame"])
        self.input_heat.setVisible(layers["input heatmaps"] and has_trace)
        self.estimate_heat.setVisible(layers["estimate heatmaps"] and has_trace)
        self.difference_heat.setVisible(layers["heatmap difference"] and has_trace)
        self.crop.setVisible(has_trace and (layers["input heatmaps"] or layers["estimate heatmaps"]
                                            or layers["heatmap difference"]))
        self._show_points()
        self.silhouette.setVisible(layers["projected mesh"] and has_trace)


class ViewGrid(QWidget):
    """As many panels as the sample has views, laid out in a near-square grid; in "side by side" mode each
    camera's panel (calibrated) has its uncalibrated twin beside it."""

    def __init__(self, state: StudioState):
        super().__init__()
        self.state = state
        self.panels: list[ViewPanel] = []
        self.twins: list[ViewPanel] = []  # uncalibrated panels, made when side by side is first shown
        self.layout_ = QGridLayout(self)
        self.layout_.setContentsMargins(0, 0, 0, 0)
        state.scene_changed.connect(self.show_scene)
        state.shown_views_changed.connect(self.arrange)
        state.mode_changed.connect(lambda _m: self.arrange())

    def _fit(self, panels: list[ViewPanel], views: int, make) -> None:
        """``views`` panels in ``panels``, new ones made by ``make(index)``, all children of the grid."""
        while len(panels) > views:
            panel = panels.pop()
            panel.detach()
            panel.deleteLater()
        while len(panels) < views:
            panels.append(make(len(panels)))
            panels[-1].setParent(self)

    def show_scene(self, scene: LoadedScene) -> None:
        self._fit(self.panels, scene.sample.num_views, lambda i: ViewPanel(i, self.state))
        for panel in self.panels:
            panel.show_view(scene)
        self._fit(self.twins, min(len(self.twins), len(self.panels)), None)
        for twin in self.twins:
            twin.active = False  # shown again, with this scene, by arrange() if side by side
        self.arrange()

    def arrange(self) -> None:
        """The shown panels in a near-square grid (each with its twin in "side by side"), hidden ones out of it."""
        side_by_side = self.state.mode in TWINNED and self.state.scene is not None
        if side_by_side:
            self._fit(self.twins, len(self.panels), lambda i: ViewPanel(i, self.state, twin=True))
        for panel in self.panels + self.twins:
            self.layout_.removeWidget(panel)
        shown = [p for p in self.panels if self.state.view_shown(p.index)]
        columns = int(np.ceil(np.sqrt(max(len(shown), 1))))
        used = 2 * columns if side_by_side else columns
        for column in range(max(self.layout_.columnCount(), used)):  # equal widths for the columns in use
            self.layout_.setColumnStretch(column, 1 if column < used else 0)
        for slot, panel in enumerate(shown):
            row, column = divmod(slot, columns)
            if side_by_side:
                self.layout_.addWidget(panel, row, 2 * column)
                self.layout_.addWidget(self.twins[panel.index], row, 2 * column + 1)
            else:
                self.layout_.addWidget(panel, row, column)
        for panel in self.panels:
            panel.setVisible(self.state.view_shown(panel.index))
            panel.set_title()
        for twin in self.twins:
            was_active, twin.active = twin.active, side_by_side and self.state.view_shown(twin.index)
            if twin.active and not was_active:
                twin.show_view(self.state.scene)  # catch up with what happened while it was idle
            twin.setVisible(twin.active)

"""The heatmap inspector: what HeatFormer's decoder compares at each iteration, joint by joint. For the selected
view, every joint's input heatmap, the heatmap rendered from the current estimate and their difference as a
column of three tiles, with the joint's heatmap error under its name and the joint of the largest error outlined;
or the selected joint in every view side by side. A click on a column selects that joint (or view) everywhere;
the slider steps it with the rest. The tiles are the trace's own arrays, coloured as the panels colour them."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QRectF, Qt
from PyQt6.QtGui import QColor, QFont, QPen
from PyQt6.QtWidgets import (QComboBox, QGraphicsItem, QGraphicsRectItem, QGraphicsSimpleTextItem, QHBoxLayout,
                             QLabel, QPushButton, QSizePolicy, QVBoxLayout, QWidget)

from app.state import StudioState
from core.inference import heatmap_errors
from core.joints import H36M17

GAP = 3  # pixels between tiles, in heatmap pixels
ROWS = ("input", "estimate", "difference")  # the rows of tiles, top to bottom
INPUT_RGB, ESTIMATE_RGB = np.array([255, 200, 0]), np.array([0, 220, 255])
EVIDENCE_ONLY_RGB, ESTIMATE_ONLY_RGB = np.array([255, 60, 40]), np.array([40, 60, 255])
BACKGROUND = (32, 33, 36)
BY_JOINT, BY_VIEW = "all joints of one view", "one joint in every view"
ERROR_SCALE = 1000  # errors are shown x 1e3
MAX_CACHED = 64  # mosaics kept (of the trace shown): a step back shows a kept one


def short_name(name: str) -> str:
    """A joint's name short enough for a column a heatmap wide."""
    return (name.replace("right_", "R ").replace("left_", "L ").replace("shoulder", "shldr")
            .replace("neck_nose", "nose").replace("_", " "))


def tile_images(input_maps: np.ndarray, rendered: np.ndarray) -> np.ndarray:
    """(N, h, w) input and rendered heatmaps -> (3, N, h, w, 3) uint8 tiles: input (yellow), rendered (cyan) and
    their difference (red: evidence only, blue: estimate only), on black, as the camera panels colour them."""
    a, b = np.clip(input_maps.astype(np.float32), 0, 1), np.clip(rendered.astype(np.float32), 0, 1)
    difference = a - b
    tiles = np.stack([a[..., None] * INPUT_RGB, b[..., None] * ESTIMATE_RGB,
                      np.clip(difference, 0, None)[..., None] * EVIDENCE_ONLY_RGB
                      + np.clip(-difference, 0, None)[..., None] * ESTIMATE_ONLY_RGB])
    return np.clip(tiles, 0, 255).astype(np.uint8)


def mosaic(tiles: np.ndarray) -> np.ndarray:
    """(3, N, h, w, 3) tiles -> one RGB image: a column per joint (or view), a row per kind, GAP pixels apart."""
    rows, columns, h, w = tiles.shape[:4]
    image = np.empty((rows * (h + GAP) - GAP, columns * (w + GAP) - GAP, 3), np.uint8)
    image[:] = BACKGROUND
    for r in range(rows):
        for c in range(columns):
            image[r * (h + GAP): r * (h + GAP) + h, c * (w + GAP): c * (w + GAP) + w] = tiles[r, c]
    return image


def tile_rect(row: int, column: int, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """(x, y, width, height) of a tile in the mosaic, for heatmaps of ``size`` (w, h)."""
    w, h = size
    return column * (w + GAP), row * (h + GAP), w, h


class HeatmapInspector(QWidget):
    def __init__(self, state: StudioState):
        super().__init__()
        self.state = state
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        bar = QHBoxLayout()
        self.mode = QComboBox()
        self.mode.addItems([BY_JOINT, BY_VIEW])
        self.mode.currentTextChanged.connect(lambda _t: self.refresh())
        self.caption = QLabel()
        self.caption.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.export = QPushButton("PNG...")
        self.export.setToolTip("save the inspector as a PNG (File > Export > Screenshot of a viewport scales it)")
        bar.addWidget(self.mode)
        bar.addWidget(self.caption, 1)
        bar.addWidget(self.export)
        layout.addLayout(bar)
        self.canvas = pg.GraphicsLayoutWidget()
        self.canvas.setBackground("#202124")
        self.box = self.canvas.addViewBox(lockAspect=True, invertY=True, enableMouse=False)
        self.box.setMenuEnabled(False)
        self.image = pg.ImageItem()
        self.box.addItem(self.image)
        self.row_labels: list[pg.TextItem] = []  # input, estimate, difference: what each row of tiles is
        self.worst = QGraphicsRectItem()
        self.worst.setPen(QPen(QColor("#ff3030"), 0))
        self.selected = QGraphicsRectItem()
        self.selected.setPen(QPen(QColor("#ffffff"), 0, Qt.PenStyle.DashLine))
        for item in (self.worst, self.selected):
            self.box.addItem(item)
        for row, (name, color) in enumerate(zip(ROWS, ("#ffc800", "#00dcff", "#ff6a5a"))):
            label = pg.TextItem(name, color=color, anchor=(1.0, 0.5))
            self.box.addItem(label)
            label.setPos(-2, 0)
            self.row_labels.append(label)
        self.labels: list[pg.TextItem] = []  # the columns' names
        self.error_texts: list[QGraphicsSimpleTextItem] = []  # and their errors
        self.mosaics: dict[tuple, tuple] = {}  # (id(trace), iteration, mode, view or joint) -> (trace, drawn)
        layout.addWidget(self.canvas, 1)
        self.canvas.scene().sigMouseClicked.connect(self.clicked)
        self.shown: dict = {}  # what the mosaic shows: view, joint, columns, errors, tile size, mosaic
        for signal in (state.traces_changed, state.iteration_changed, state.mode_changed,
                       state.selected_view_changed, state.selected_joint_changed):
            signal.connect(lambda *_a: self.refresh())

    @property
    def view(self) -> int:
        return max(self.state.selected_view, 0)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.refresh()  # it does not follow the slider while hidden

    def refresh(self) -> None:
        trace = self.state.trace
        if trace is None or not self.isVisible():
            return
        k, view, joint = self.state.iteration_of(trace), min(self.view, trace.num_views - 1), self.state.selected_joint
        by = self.mode.currentText()
        if by == BY_VIEW and joint < 0:  # none selected: the joint of the largest error over the views
            joint = int(heatmap_errors(trace.heatmaps[k], trace.input_heatmaps).mean(0).argmax())
        key = (id(trace), k, by, view if by == BY_JOINT else joint)
        if key not in self.mosaics:
            if len(self.mosaics) > MAX_CACHED or any(t is not trace for t, _ in self.mosaics.values()):
                self.mosaics = {}
            errors = heatmap_errors(trace.heatmaps[k], trace.input_heatmaps)
            if by == BY_JOINT:
                tiles, column_errors = tile_images(trace.input_heatmaps[view], trace.heatmaps[k, view]), errors[view]
            else:
                tiles = tile_images(trace.input_heatmaps[:, joint], trace.heatmaps[k, :, joint])
                column_errors = errors[:, joint]
            self.mosaics[key] = (trace, {"image": mosaic(tiles), "errors": column_errors,
                                         "size": (tiles.shape[3], tiles.shape[2])})
        drawn = self.mosaics[key][1]
        names = list(H36M17.names) if by == BY_JOINT else list(trace.view_names)
        chosen = joint if by == BY_JOINT else view
        if by == BY_JOINT:  # (no iteration here: a label whose text changes lays the dock out again)
            caption = (f"{trace.view_names[view]}: heatmap error x1e-3 per joint (mean squared difference, peak 1); "
                       f"red: the largest. Click a joint to select it.")
        else:
            caption = (f"{H36M17.names[joint]}: heatmap error x1e-3 per view; red: the largest. "
                       "Click a view to select it.")
        if caption != self.caption.text():
            self.caption.setText(caption)
        size, image = drawn["size"], drawn["image"]
        self.image.setImage(image, levels=(0, 255), autoLevels=False)
        previous = self.shown
        self.shown = {**drawn, "view": view, "joint": joint, "names": names, "iteration": k, "by": by}
        if (previous.get("names"), previous.get("size")) != (names, size):
            self._name_columns(names, size)
            for row, label in enumerate(self.row_labels):
                label.setPos(-2, tile_rect(row, 0, size)[1] + size[1] / 2)
            self.box.setRange(QRectF(-2 * size[0], -size[1], image.shape[1] + 2 * size[0] + 2,
                                     image.shape[0] + size[1] + 2), padding=0)
        for i, text in enumerate(self.error_texts):
            text.setText(f"{drawn['errors'][i] * ERROR_SCALE:.2f}" if i < len(names) else "")
        self._outline(self.worst, int(np.argmax(drawn["errors"])), size)
        self.selected.setVisible(chosen >= 0)
        if chosen >= 0:
            self._outline(self.selected, chosen, size)

    def _outline(self, item: QGraphicsRectItem, column: int, size: tuple[int, int]) -> None:
        x, _, w, _ = tile_rect(0, column, size)
        item.setRect(QRectF(x - 1, -1, w + 2, 3 * (size[1] + GAP) - GAP + 2))

    def _name_columns(self, names: list[str], size: tuple[int, int]) -> None:
        """Each column's name, and a plain text item for its error under it (set at every step: plain text
        items are cheap to change, pyqtgraph's text items lay out rich text each time)."""
        while len(self.labels) < len(names):
            label = pg.TextItem(color="#e8eaed", anchor=(0.5, 1.0))
            label.setFont(QFont(label.textItem.font().family(), 7))
            self.box.addItem(label)
            self.labels.append(label)
            number = QGraphicsSimpleTextItem()
            number.setBrush(QColor("#e8eaed"))
            number.setFont(label.textItem.font())
            number.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
            self.box.addItem(number)
            self.error_texts.append(number)
        for i, (label, number) in enumerate(zip(self.labels, self.error_texts)):
            label.setVisible(i < len(names))
            number.setVisible(i < len(names))
            if i < len(names):
                x, _, w, _ = tile_rect(0, i, size)
                label.setText(short_name(names[i]))
                label.setPos(x + w / 2, -size[1] / 3)
                number.setPos(x + 1, -size[1] / 3)

    def clicked(self, event) -> None:
        """A click on a column selects its joint (or view) in every view of the window."""
        if not self.shown:
            return
        where = self.box.mapSceneToView(event.scenePos())
        w = self.shown["size"][0]
        column = int(where.x() // (w + GAP))
        if not 0 <= column < len(self.shown["names"]) or where.x() - column * (w + GAP) > w:
            return
        if self.shown["by"] == BY_JOINT:
            self.state.select_joint(column)
        else:
            self.state.select_view(column)

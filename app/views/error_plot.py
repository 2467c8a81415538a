"""Error against iteration (pyqtgraph): one curve per metric and mode, a marker at the current iteration, and the
numbers of every mode at that iteration over the plot's corner. Without ground truth the reprojection error (px,
left axis) and the heatmap error (right axis: its own scale, a mean squared difference of peak-1 heatmaps) show
how far the estimate still is from the 2D evidence. With `per_joint` on and a joint selected, the curves are that
joint's errors (mean over the views: MPJPE, reprojection and heatmap error; the others are not per joint)."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import Qt
from PyQt6.QtGui import QColor
from PyQt6.QtWidgets import QGraphicsSimpleTextItem

from app.state import AB_MODES, MODES, StudioState
from app.views.caching import cache_pixels
from core.inference import joint_errors
from core.joints import H36M17

WITH_TRUTH = {"mpjpe_mm": ("MPJPE", "#e6194b"), "pa_mpjpe_mm": ("PA-MPJPE", "#3cb44b"),
              "mpvpe_mm": ("MPVPE", "#4363d8")}
WITHOUT_TRUTH = {"reprojection_px": ("reprojection (px)", "#f58231"), "heatmap_mse": ("heatmap MSE", "#42d4f4")}
RIGHT_AXIS = "heatmap_mse"  # on the right axis: its values are a thousand times smaller than pixels
NUMBERS_ROOM = 0.4  # of the curves' span, added above them for the numbers (a line per mode)
MODE_STYLE = {"calibrated": Qt.PenStyle.SolidLine, "uncalibrated": Qt.PenStyle.DashLine}


class ErrorPlot(pg.PlotWidget):
    def __init__(self, state: StudioState):
        super().__init__()
        self.state = state
        self.setBackground("#202124")
        self.setLabel("bottom", "iteration")
        self.getAxis("bottom").setTickSpacing(1, 1)  # iterations are whole numbers
        # The legend in its own row under the plot, two entries a row: over the plot it hid curves and markers.
        self.plotItem.legend = pg.LegendItem(colCount=2)
        self.plotItem.layout.addItem(self.plotItem.legend, 5, 1)
        self.marker = pg.InfiniteLine(angle=90, pen=pg.mkPen("#ffffff", width=1.5))
        self.addItem(self.marker)
        # The numbers float over the plot's top left corner, outside its layout: a changing title would lay the
        # whole plot out and repaint it at every slider step. Plain text: pyqtgraph's label item lays out rich
        # text, about 0.3 ms a step against 0.03.
        self.numbers = QGraphicsSimpleTextItem(self.plotItem.vb)
        self.numbers.setBrush(QColor("#e8eaed"))
        self.numbers.setPos(4, 2)
        self.curves: dict[str, pg.PlotDataItem] = {}
        # A second view box, sharing the x axis, for the heatmap error's scale; it follows the main one's size.
        self.right_view = pg.ViewBox()
        self.plotItem.scene().addItem(self.right_view)
        self.plotItem.getAxis("right").linkToView(self.right_view)
        self.plotItem.getAxis("right").setLabel("heatmap MSE")
        self.right_view.setXLink(self.plotItem.vb)
        self.plotItem.vb.sigResized.connect(
            lambda: self.right_view.setGeometry(self.plotItem.vb.sceneBoundingRect()))
        self.per_joint = False  # curves of the selected joint instead of the means
        self.joint_errors: dict[int, tuple[object, dict]] = {}  # id(trace) -> (trace, its joint_errors)
        state.traces_changed.connect(self.show_traces)
        state.iteration_changed.connect(self.show_iteration)
        state.mode_changed.connect(lambda _m: self.show_traces())  # A/B modes plot A and B instead of the modes
        state.selected_joint_changed.connect(lambda _j: self.show_traces() if self.per_joint else None)

    def metrics(self) -> dict[str, tuple[str, str]]:
        has_truth = any("mpjpe_mm" in t.metrics for _n, t, _s in self.series())
        return WITH_TRUTH if has_truth else WITHOUT_TRUTH

    def set_per_joint(self, on: bool) -> None:
        self.per_joint = on
        self.show_traces()

    @property
    def joint(self) -> int:
        """The joint whose curves are shown, -1 for the means."""
        return self.state.selected_joint if self.per_joint and self.state.scene is not None else -1

    def values(self, trace) -> dict[str, object]:
        """The curves of ``trace``: its metrics, or the selected joint's errors averaged over the views."""
        if self.joint < 0:
            return trace.metrics
        if id(trace) not in self.joint_errors or self.joint_errors[id(trace)][0] is not trace:
            self.joint_errors[id(trace)] = (trace, joint_errors(trace, self.state.scene.sample))
        errors = self.joint_errors[id(trace)][1]
        return {key: np.nanmean(value[..., self.joint], axis=1) for key, value in errors.items()
                if np.isfinite(value[..., self.joint]).any()}

    def series(self) -> list[tuple[str, object, Qt.PenStyle]]:
        """(name, trace, line style) of each set of curves: every mode's, or in A/B modes A's and B's."""
        state = self.state
        if state.mode in AB_MODES and state.comparison is not None:
            return [("A", state.trace, Qt.PenStyle.SolidLine), ("B", state.comparison, Qt.PenStyle.DashLine)]
        return [(mode, state.traces[mode], MODE_STYLE[mode]) for mode in MODES if mode in state.traces]

    def show_iteration(self, *_args) -> None:
        """Move the marker; write each mode's (or A's and B's) numbers at this iteration."""
        k = self.state.iteration
        self.marker.setValue(k)
        parts = []
        for mode, trace, _style in self.series():
            at = min(k, trace.iterations)  # a trace of fewer iterations: its last (A/B at two counts)
            curves = self.values(trace)
            values = [f"{label.split(' ')[0]} {curves[key][at]:{'.3g' if key == RIGHT_AXIS else '.1f'}}"
                      for key, (label, _) in self.metrics().items() if key in curves]
            parts.append(f"{mode}{f' (its last, {at})' if at < k else ''}: {', '.join(values)}")
        joint = f"{H36M17.names[self.joint]} · " if self.joint >= 0 else ""
        self.numbers.setText(f"{joint}iteration {k} · " + "\n".join(parts) if parts else "")  # a line per mode

    def show_traces(self) -> None:
        for key, curve in self.curves.items():
            if key.endswith(RIGHT_AXIS):
                self.right_view.removeItem(curve)
                self.plotItem.legend.removeItem(curve)
            else:
                self.removeItem(curve)  # and from the legend
        self.curves = {}
        series = self.series()
        metrics = self.metrics()
        self.setLabel("left", "error (mm)" if metrics is WITH_TRUTH else "reprojection error (px)")
        self.plotItem.showAxis("right", metrics is WITHOUT_TRUTH)
        self.joint_errors = {key: kept for key, kept in self.joint_errors.items()  # of the traces still shown
                             if any(kept[0] is t for _n, t, _s in series)}
        for mode, trace, line in series:
            curves = self.values(trace)
            for key, (label, color) in metrics.items():
                if key not in curves:
                    continue
                style = dict(pen=pg.mkPen(color, width=2, style=line), symbol="o", symbolSize=6,
                             symbolBrush=color)
                name = f"{label} · {mode}"
                if key == RIGHT_AXIS:
                    curve = pg.PlotDataItem(range(trace.iterations + 1), curves[key], **style)
                    self.right_view.addItem(curve)
                    self.plotItem.legend.addItem(curve, name)
                else:
                    curve = self.plot(range(trace.iterations + 1), curves[key], name=name, **style)
                cache_pixels(curve.curve, curve.scatter)  # only the marker and the numbers move
                self.curves[f"{mode}:{key}"] = curve
        # A fixed range from here on: with auto-range on, every move of the marker queues a range update that
        # repaints the whole plot (about 5 ms a slider step under Xvfb, against a strip either side of the marker).
        for view in (self.plotItem.vb, self.right_view):
            view.autoRange()
            view.disableAutoRange()
            low, high = view.viewRange()[1]  # room for the numbers above the curves
            view.setYRange(low, high + NUMBERS_ROOM * (high - low), padding=0)
        self.show_iteration()

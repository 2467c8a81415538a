"""Error against iteration (pyqtgraph): one curve per metric and mode, a marker at the current iteration, and the
numbers of every mode at that iteration over the plot's corner. Without ground truth the reprojection error (px,
left axis) and the heatmap error (right axis: its own scale, a mean squared difference of peak-1 heatmaps) show
how far the estimate still is from the 2D evidence."""
from __future__ import annotations

import pyqtgraph as pg
from PyQt6.QtCore import Qt
from PyQt6.QtGui import QColor
from PyQt6.QtWidgets import QGraphicsSimpleTextItem

from app.state import MODES, StudioState
from app.views.caching import cache_pixels

WITH_TRUTH = {"mpjpe_mm": ("MPJPE", "#e6194b"), "pa_mpjpe_mm": ("PA-MPJPE", "#3cb44b"),
              "mpvpe_mm": ("MPVPE", "#4363d8")}
WITHOUT_TRUTH = {"reprojection_px": ("reprojection (px)", "#f58231"), "heatmap_mse": ("heatmap MSE", "#42d4f4")}
RIGHT_AXIS = "heatmap_mse"  # on the right axis: its values are a thousand times smaller than pixels
MODE_STYLE = {"calibrated": Qt.PenStyle.SolidLine, "uncalibrated": Qt.PenStyle.DashLine}


class ErrorPlot(pg.PlotWidget):
    def __init__(self, state: StudioState):
        super().__init__()
        self.state = state
        self.setBackground("#202124")
        self.setLabel("bottom", "iteration")
        self.getAxis("bottom").setTickSpacing(1, 1)  # iterations are whole numbers
        # Three rows at most, over a dimmed backdrop: in one column the six curves of "both" modes hid the last
        # iterations' markers under the legend.
        self.addLegend(offset=(-10, 10), colCount=3, brush=pg.mkBrush(32, 33, 36, 200))
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
        state.traces_changed.connect(self.show_traces)
        state.iteration_changed.connect(self.show_iteration)

    def metrics(self) -> dict[str, tuple[str, str]]:
        has_truth = any("mpjpe_mm" in t.metrics for t in self.state.traces.values())
        return WITH_TRUTH if has_truth else WITHOUT_TRUTH

    def show_iteration(self, *_args) -> None:
        """Move the marker; write each mode's numbers at this iteration."""
        k = self.state.iteration
        self.marker.setValue(k)
        parts = []
        for mode, trace in self.state.traces.items():
            if k <= trace.iterations:
                values = [f"{label.split(' ')[0]} {trace.metrics[key][k]:{'.3g' if key == RIGHT_AXIS else '.1f'}}"
                          for key, (label, _) in self.metrics().items() if key in trace.metrics]
                parts.append(f"{mode}: {', '.join(values)}")
        self.numbers.setText(f"iteration {k} · " + " | ".join(parts) if parts else "")

    def show_traces(self) -> None:
        for key, curve in self.curves.items():
            if key.endswith(RIGHT_AXIS):
                self.right_view.removeItem(curve)
                self.plotItem.legend.removeItem(curve)
            else:
                self.removeItem(curve)  # and from the legend
        self.curves = {}
        traces = self.state.traces
        metrics = self.metrics()
        self.setLabel("left", "error (mm)" if metrics is WITH_TRUTH else "reprojection error (px)")
        self.plotItem.showAxis("right", metrics is WITHOUT_TRUTH)
        for mode in MODES:
            trace = traces.get(mode)
            if trace is None:
                continue
            for key, (label, color) in metrics.items():
                if key not in trace.metrics:
                    continue
                style = dict(pen=pg.mkPen(color, width=2, style=MODE_STYLE[mode]), symbol="o", symbolSize=6,
                             symbolBrush=color)
                name = f"{label} · {mode}"
                if key == RIGHT_AXIS:
                    curve = pg.PlotDataItem(range(trace.iterations + 1), trace.metrics[key], **style)
                    self.right_view.addItem(curve)
                    self.plotItem.legend.addItem(curve, name)
                else:
                    curve = self.plot(range(trace.iterations + 1), trace.metrics[key], name=name, **style)
                cache_pixels(curve.curve, curve.scatter)  # only the marker and the numbers move
                self.curves[f"{mode}:{key}"] = curve
        # A fixed range from here on: with auto-range on, every move of the marker queues a range update that
        # repaints the whole plot (about 5 ms a slider step under Xvfb, against a strip either side of the marker).
        for view in (self.plotItem.vb, self.right_view):
            view.autoRange()
            view.disableAutoRange()
        self.show_iteration()

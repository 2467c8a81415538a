"""Keeping what the 2D overlays' painting computed, while it still holds: pixels of overlays that do not change
with the iteration, and point items' bounding rectangles."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pyqtgraph as pg
from PyQt6.QtCore import QRectF
from PyQt6.QtWidgets import QGraphicsItem, QGraphicsView, QWidget

CACHED = QGraphicsItem.CacheMode.DeviceCoordinateCache


def cache_pixels(*items: QGraphicsItem) -> None:
    """Let Qt keep each item's drawing as a pixmap in device coordinates, redrawn only when the item changes or the
    view is zoomed. Every slider step repaints the region its moving overlays cover, and every item in that region
    is painted again: for pyqtgraph's items a Python call each (a scatter item about 0.25 ms under Xvfb). Cached,
    they are blitted instead: the four panels' repaint went from about 10 to 6 ms a step. Qt puts a cached drawing
    on whole device pixels, so an overlay may sit up to half a screen pixel from where it would be drawn directly
    (the cache is redrawn at every zoom, so this stays half a screen pixel, whatever the zoom)."""
    for item in items:
        item.setCacheMode(CACHED)


@contextlib.contextmanager
def drawn_afresh(widget: QWidget) -> Iterator[None]:
    """Within the block, the cached items of ``widget``'s graphics views are painted directly: a rendering at a
    higher pixel ratio (a scaled screenshot) would otherwise show their cached screen-resolution pixmaps enlarged."""
    views = ([widget] if isinstance(widget, QGraphicsView) else []) + widget.findChildren(QGraphicsView)
    cached = [item for view in views if view.scene() is not None for item in view.scene().items()
              if item.cacheMode() == CACHED]
    for item in cached:
        item.setCacheMode(QGraphicsItem.CacheMode.NoCache)
    try:
        yield
    finally:
        for item in cached:
            item.setCacheMode(CACHED)


class ScatterItem(pg.ScatterPlotItem):
    """pyqtgraph's point item, remembering its bounding rectangle while the data bounds it was made from stand.
    Qt asks every item in a repainted region for its rectangle, about 60 times a slider step over the four panels,
    and pyqtgraph's point item works it out afresh in Python each time (about 50 us; its curve item keeps its
    own): remembered, a step with the 3D dock hidden took about 3 ms less under Xvfb. pyqtgraph replaces the
    cached data bounds whenever the rectangle can change (new points or sizes, a zoom, a resize), so the
    rectangle is kept only while they are the same objects."""

    _remembered: tuple[object, object, float, QRectF] | None = None

    def boundingRect(self) -> QRectF:
        remembered, (x_bounds, y_bounds) = self._remembered, self.bounds
        if (remembered is not None and x_bounds is not None and remembered[0] is x_bounds
                and remembered[1] is y_bounds and remembered[2] == self._maxSpotPxWidth):
            return remembered[3]
        rect = super().boundingRect()
        self._remembered = (*self.bounds, self._maxSpotPxWidth, rect)
        return rect

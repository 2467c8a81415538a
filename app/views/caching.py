"""Keeping the pixels of 2D overlays that do not change with the iteration."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

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

"""Viewports as images and videos: screenshots of the window or any part of it (optionally scaled) and the
refinement recorded iteration by iteration."""
from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
from PyQt6.QtCore import QPoint
from PyQt6.QtGui import QImage, QPixmap
from PyQt6.QtWidgets import QApplication, QWidget

from app.views.caching import drawn_afresh
from core.files import atomic_path
from core.video import stamp, write_video

WINDOW, SCENE_3D, CAMERA_PANELS, ERROR_PLOT = "whole window", "3D scene", "camera panels", "error plot"
HEATMAPS = "heatmap inspector"
FIXED = (WINDOW, SCENE_3D, CAMERA_PANELS, ERROR_PLOT, HEATMAPS)  # then every camera's panel by name


def viewport_names(window) -> list[str]:
    """What can be grabbed: the window, each part of it, and every camera's panel by name."""
    cameras = [p.state.scene.sample.cameras[p.index].name for p in window.view_grid.panels] if window.state.scene \
        else []
    return list(FIXED) + cameras


def grab_viewport(window, name: str = WINDOW, scale: int = 1) -> np.ndarray:
    """An RGB image of one viewport. ``scale`` > 1 draws it at that many times its pixels: the 3D scene is
    re-rendered by VTK at the higher resolution, Qt-drawn panels are repainted (pyqtgraph draws vectors); the
    whole window, holding a native OpenGL view, is grabbed at screen resolution only."""
    QApplication.processEvents()
    window.scene3d.settle()  # the full meshes of the iteration shown, not the level of detail of a movement
    window.scene3d.plotter.render()
    if name == SCENE_3D:
        return np.asarray(window.scene3d.plotter.screenshot(return_img=True, scale=scale))[..., :3].copy()
    if name == WINDOW:
        return with_scene_pasted(window, qimage_to_rgb(window.grab().toImage()))
    widgets = {CAMERA_PANELS: window.view_grid, ERROR_PLOT: window.error_plot, HEATMAPS: window.inspector}
    widgets.update({n: p for n, p in zip(viewport_names(window)[len(FIXED):], window.view_grid.panels)})
    if name not in widgets:
        raise ValueError(f"no viewport named {name!r}; expected one of {', '.join(viewport_names(window))}")
    widget = widgets[name]
    pixmap = QPixmap(widget.size() * scale)
    pixmap.setDevicePixelRatio(scale)
    with drawn_afresh(widget) if scale > 1 else contextlib.nullcontext():  # 1x: as on screen
        QWidget.render(widget, pixmap)  # QWidget's, not pyqtgraph's scene render: the widget as it paints itself
    return qimage_to_rgb(pixmap.toImage())


def with_scene_pasted(window, image: np.ndarray) -> np.ndarray:
    """The window's grab with the 3D view's own rendering pasted over it: Qt cannot grab the pixels of VTK's
    native OpenGL window and leaves whatever memory held there."""
    import cv2

    view = window.scene3d.plotter.interactor
    if not view.isVisible():
        return image
    ratio = image.shape[1] / max(window.width(), 1)  # device pixels per window pixel
    corner = view.mapTo(window, QPoint(0, 0))
    x, y = round(corner.x() * ratio), round(corner.y() * ratio)
    w, h = min(round(view.width() * ratio), image.shape[1] - x), min(round(view.height() * ratio), image.shape[0] - y)
    if w <= 0 or h <= 0:
        return image
    rendered = np.asarray(window.scene3d.plotter.screenshot(return_img=True))[..., :3]
    image[y: y + h, x: x + w] = cv2.resize(rendered, (w, h), interpolation=cv2.INTER_AREA)
    return image


def qimage_to_rgb(image: QImage) -> np.ndarray:
    image = image.convertToFormat(QImage.Format.Format_RGB888)
    rows = np.frombuffer(image.constBits().asstring(image.sizeInBytes()), np.uint8)
    return rows.reshape(image.height(), image.bytesPerLine())[:, : image.width() * 3].reshape(
        image.height(), image.width(), 3).copy()


def screenshot_problems(path: str | Path) -> list[str]:
    """What is wrong with a screenshot of the whole window (empty when nothing): too small, blank, the 3D view
    not captured, or no body in it (the right half shows the grey ground-truth body of the bundled sample)."""
    import cv2

    image = cv2.imread(str(path))
    if image is None:
        return [f"{path}: not a readable image"]
    found = []
    if image.shape[0] < 300 or image.shape[1] < 600:
        found.append(f"{path}: only {image.shape[1]}x{image.shape[0]} pixels")
    if image.std() < 20:
        found.append(f"{path}: nearly uniform (blank?)")
    right = image[:, image.shape[1] // 2:].astype(int)
    if np.abs(np.diff(right, axis=1)).mean() > 30:  # a rendered scene is mostly smooth; uninitialised memory is not
        found.append(f"{path}: the 3D view is noise (its pixels were not captured)")
    greyish = (np.abs(right - right.mean(axis=2, keepdims=True)).max(axis=2) < 12) & (right.mean(axis=2) > 120)
    if greyish.sum() < 200:
        found.append(f"{path}: no body visible in the 3D view")
    return found


def save_screenshot(window, path, viewport: str = WINDOW, scale: int = 1) -> Path:
    """One viewport (default: the whole window) as a PNG, atomically."""
    rgb = grab_viewport(window, viewport, scale)
    image = QImage(rgb.data, rgb.shape[1], rgb.shape[0], rgb.shape[1] * 3, QImage.Format.Format_RGB888)
    with atomic_path(path) as tmp:
        if not image.save(str(tmp), "PNG"):
            raise OSError(f"could not write screenshot {path}")
    return Path(path)


def record_refinement(window, path, viewport: str = WINDOW, fps: float = 2.0) -> Path:
    """A video (.mp4 or .gif) of ``viewport`` stepping through every iteration; the view returns to where it was."""
    state = window.state
    if state.trace is None:
        raise ValueError("there is no estimate to record yet")
    here, frames = state.iteration, []
    try:
        for k in range(state.max_iteration + 1):
            state.set_iteration(k)
            frames.append(stamp(grab_viewport(window, viewport), f"{state.mode} | iteration {k}/{state.max_iteration}"))
    finally:
        state.set_iteration(here)
    return write_video(frames, path, fps)

"""Starting the GUI from the command line, including scripted screenshots (`--screenshot PNG --quit`)."""
from __future__ import annotations

import argparse
import os
import sys

from PyQt6.QtCore import QTimer
from PyQt6.QtWidgets import QApplication

from app.capture import save_screenshot


def use_x11_for_vtk() -> None:
    """On a Wayland desktop, run through XWayland: the 3D view is VTK's own native OpenGL window, which needs an
    X11 window (as in 3D Slicer and ParaView). Does nothing if the user chose a Qt platform."""
    if os.environ.get("WAYLAND_DISPLAY") and os.environ.get("DISPLAY") and "QT_QPA_PLATFORM" not in os.environ:
        os.environ["QT_QPA_PLATFORM"] = "xcb"


def run_app(args: argparse.Namespace) -> int:
    from app.main_window import MainWindow, studio_settings

    if args.reset_settings:
        settings = studio_settings()
        settings.clear()
        settings.sync()
        print(f"cleared the settings in {settings.fileName()}")
    use_x11_for_vtk()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("heatformer-studio")  # matches the .desktop entry's StartupWMClass
    app.setDesktopFileName("heatformer-studio")
    from core.detector import DetectorConfig

    detector = DetectorConfig.load(args.detector) if args.detector else None
    window = MainWindow(args.body_model, checkpoint=args.checkpoint, detector=detector, official_2d=args.official_2d)
    window.setProperty("headless", bool(args.quit))
    if args.mode:
        window.state.set_mode(args.mode.replace("-", " "))
    window.show()
    status = {"code": 0}

    def finish():
        if window.last_error and args.quit:  # loaded, but what was asked for (the estimates) could not be made
            on_failure(window.last_error)
            return
        if args.iteration is not None:
            window.state.set_iteration(args.iteration)
        if args.screenshot:
            save_screenshot(window, args.screenshot)
            print(f"saved {args.screenshot}")
        if args.quit:
            window.close()
            app.quit()

    def on_failure(message):
        print(f"error: {message}", file=sys.stderr)
        status["code"] = 2
        if args.quit:
            window.close()
            app.quit()

    window.ready.connect(lambda: QTimer.singleShot(300, finish))
    window.load_failed.connect(on_failure)

    def start():  # in the event loop, so that a failure reported at once can still end it
        if args.trace:
            window.open_traces(args.trace)
        else:
            window.load(args.data or window.folder, frame=args.frame)

    QTimer.singleShot(0, start)
    code = app.exec()
    return status["code"] or code

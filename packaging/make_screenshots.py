"""Regenerate the README's screenshots from the real window on the bundled sample (run it when the UI changes):

    xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python packaging/make_screenshots.py [--out resources/screenshots]

Writes window.png (the whole window, calibrated), both.png (calibrated and uncalibrated overlaid, left wrist
selected), side_by_side.png (the camera panels in both modes, iteration 2), panel.png (one camera panel at twice
its pixels with the projected mesh and the heatmap difference), scene3d.png (the 3D scene at twice its pixels),
inspector.png (the heatmap inspector at twice its pixels: cam02, iteration 1, the left knee selected) and ab.png
(the whole window in A/B: the shipped checkpoint's own iteration count, A, against its first iteration alone, B),
real_footage.png (the whole window on the real footage of tests/fixtures/real_multiperson, last iteration: the
built-in detector's evidence and what the shipped network makes of it).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PyQt6.QtCore import QEventLoop, QSettings  # noqa: E402
from PyQt6.QtWidgets import QApplication  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("resources/screenshots"))
    args = parser.parse_args()
    qt_app = QApplication(sys.argv[:1])
    from app.capture import CAMERA_PANELS, HEATMAPS, SCENE_3D, save_screenshot
    from app.main_window import MainWindow

    # a throw-away settings file: the default layout, and the user's own settings untouched
    settings = QSettings(str(Path(tempfile.mkdtemp()) / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(settings=settings)
    window.setProperty("headless", True)
    window.show()
    loop = QEventLoop()
    window.ready.connect(loop.quit)
    window.load(window.folder)
    loop.exec()
    state = window.state
    written = [save_screenshot(window, args.out / "window.png")]
    state.set_mode("both")
    state.select_joint(13)
    written.append(save_screenshot(window, args.out / "both.png"))
    state.select_joint(-1)
    state.set_mode("side by side")
    state.set_iteration(2)
    written.append(save_screenshot(window, args.out / "side_by_side.png", CAMERA_PANELS))
    state.set_mode("calibrated")
    state.select_joint(-1)
    state.set_iteration(1)
    state.set_layer("projected mesh", True)
    state.set_layer("heatmap difference", True)
    state.set_layer("input heatmaps", False)
    written.append(save_screenshot(window, args.out / "panel.png", "cam02", scale=2))
    written.append(save_screenshot(window, args.out / "scene3d.png", SCENE_3D, scale=2))
    for name, shown in (("projected mesh", False), ("heatmap difference", False), ("input heatmaps", True)):
        state.set_layer(name, shown)
    state.select_view(1)
    state.select_joint(5)
    written.append(save_screenshot(window, args.out / "inspector.png", HEATMAPS, scale=2))
    state.select_joint(-1)
    state.select_view(-1)
    window.compare(None, 1)
    loop.exec()  # until B's estimates are in
    state.set_iteration(state.max_iteration)
    written.append(save_screenshot(window, args.out / "ab.png"))
    window.load(Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "real_multiperson")
    loop.exec()
    state.set_iteration(state.max_iteration)
    written.append(save_screenshot(window, args.out / "real_footage.png"))
    window.close()
    qt_app.quit()
    print("\n".join(f"wrote {p}" for p in written))


if __name__ == "__main__":
    main()

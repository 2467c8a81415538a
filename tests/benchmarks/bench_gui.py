"""Benchmark: start-up to a usable window, and the latency of one iteration-slider step, in the real window.

    xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python tests/benchmarks/bench_gui.py [--steps 200]

A step sets the iteration on the state object and processes Qt's events until every view has redrawn (the 3D
view renders in the same pass of the event loop). Prints the median and 95th percentile in milliseconds against
the 16 ms target, for the whole window and again with the 3D dock hidden, and the time of one 3D render alone,
with the scene and empty (under Xvfb, OpenGL is Mesa's software renderer on the CPU).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

START = time.perf_counter()
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from PyQt6.QtCore import QEventLoop, QSettings  # noqa: E402
from PyQt6.QtWidgets import QApplication  # noqa: E402

TARGET_MS = 16.0


def median_render_ms(render_window, runs: int = 30) -> float:
    """Median milliseconds of one Render() of a VTK window, as it stands."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        render_window.Render()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    app = QApplication(sys.argv[:1])
    from app.main_window import MainWindow

    settings = QSettings(str(Path("/tmp") / "heatformer-bench.ini"), QSettings.Format.IniFormat)
    settings.clear()  # the default layout, whatever an earlier run saved
    window = MainWindow(settings=settings)
    window.setProperty("headless", True)
    window.show()
    marks = {}
    loop = QEventLoop()
    window.load_succeeded.connect(lambda: marks.setdefault("sample shown", time.perf_counter() - START))
    window.ready.connect(lambda: (marks.setdefault("estimates shown", time.perf_counter() - START), loop.quit()))
    window.load(window.folder)
    loop.exec()
    state = window.state
    n = state.max_iteration
    views = state.scene.sample.num_views
    print(f"{views} views, {len(window.scene3d.view_meshes)} meshes of {state.trace.vertices.shape[2]} vertices, "
          f"{n} iterations, {args.steps} slider steps")
    for name, seconds in marks.items():
        print(f"start-up to {name}: {seconds:.2f} s")
    scene3d = window.scene3d
    print(f"3D view's OpenGL: {scene3d.renderer_name}" + (" (software: no multisampling, no OIT)"
                                                          if scene3d.software_opengl else ""))
    for label in ("every viewport", "3D dock hidden"):
        if label == "3D dock hidden":
            window.scene_dock.hide()
        timings, updates = [], []
        for _ in range(args.steps):
            start = time.perf_counter()
            state.set_iteration((state.iteration + 1) % (n + 1))
            updates.append(time.perf_counter() - start)
            app.processEvents()
            timings.append(time.perf_counter() - start)
        median = statistics.median(timings) * 1000
        p95 = sorted(timings)[int(0.95 * len(timings))] * 1000
        verdict = "meets" if median <= TARGET_MS else "misses"
        print(f"slider step, {label}: median {median:.1f} ms, 95th percentile {p95:.1f} ms "
              f"({verdict} the {TARGET_MS:.0f} ms target); of which updating the views' data "
              f"{statistics.median(updates) * 1000:.1f} ms, the rest painting")
    window.scene_dock.show()
    app.processEvents()
    print(f"one render of the 3D view alone: median {median_render_ms(scene3d.plotter.ren_win):.1f} ms")
    # What a frame costs with nothing in it (clearing, VTK's framebuffer blits, the swap to the window): under
    # software OpenGL this floor grows with the view's pixels, whatever the scene holds.
    actors = list(scene3d.plotter.renderer.actors.values())
    shown = [actor.GetVisibility() for actor in actors]
    for actor in actors:
        actor.SetVisibility(False)
    empty_ms = median_render_ms(scene3d.plotter.ren_win)
    for actor, visible in zip(actors, shown):
        actor.SetVisibility(visible)
    width, height = scene3d.plotter.ren_win.GetSize()
    print(f"one render of the empty 3D view ({width}x{height} pixels): median {empty_ms:.1f} ms")
    window.close()


if __name__ == "__main__":
    main()

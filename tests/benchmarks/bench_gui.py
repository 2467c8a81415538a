"""Benchmark: start-up to a usable window, and how fast the iteration slider answers, in the real window.

    xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python tests/benchmarks/bench_gui.py [--steps 200]

Two kinds of step, every viewport shown:
- single steps (a click or key press, with the event loop idle before it): from the step to the camera panels
  painted, and to the 3D view rendered (after the panels, at full detail);
- a drag: the slider's value changes every 1/60 s for ``--drag-seconds`` (as a mouse dragged at 60 Hz
  moves it; the event loop takes the latest value whenever it gets to it, as Qt compresses mouse moves): from
  each change to the panels painted (any wait behind a 3D render included), and the 3D view's frames per second
  (at the level of detail while the drag goes on).
Then the same single steps with the 3D dock hidden, and one 3D render alone, with the scene and empty (under Xvfb,
OpenGL is Mesa's software renderer on the CPU). Milliseconds, median and 95th percentile, against 16 ms.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

START = time.perf_counter()
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from PyQt6.QtCore import QEventLoop, QSettings, QTimer  # noqa: E402
from PyQt6.QtWidgets import QApplication  # noqa: E402

TARGET_MS = 16.0
DRAG_INTERVAL_S = 1 / 60


def median_render_ms(render_window, runs: int = 30) -> float:
    """Median milliseconds of one Render() of a VTK window, as it stands."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        render_window.Render()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def summary(seconds: list[float]) -> str:
    ordered = sorted(seconds)
    median, p95 = statistics.median(ordered) * 1000, ordered[int(0.95 * (len(ordered) - 1))] * 1000
    return f"median {median:.1f} ms, 95th percentile {p95:.1f} ms ({'meets' if median <= TARGET_MS else 'misses'} " \
           f"the {TARGET_MS:.0f} ms target)"


class Clock:
    """When the camera panels last finished painting and the 3D view last finished rendering."""

    def __init__(self, window):
        from app.views.view_grid import ViewPanel

        self.panel_paints: dict[int, float] = {}  # id(panel) -> end of its last paint
        self.renders: list[float] = []  # ends of the 3D view's renders
        original = ViewPanel.paintEvent
        clock = self

        def paint_event(panel, event):
            original(panel, event)
            clock.panel_paints[id(panel)] = time.perf_counter()

        ViewPanel.paintEvent = paint_event
        window.scene3d.plotter.ren_win.AddObserver("EndEvent", lambda *_: self.renders.append(time.perf_counter()))

    def panels_painted_since(self, start: float, panels) -> float | None:
        ends = [self.panel_paints.get(id(p), -1.0) for p in panels]
        return max(ends) if min(ends) >= start else None


def single_steps(app, window, clock: Clock, steps: int) -> tuple[list[float], list[float]]:
    """Per step: seconds to the panels painted, and to the 3D view rendered (nan when it was not rendered)."""
    state, panels = window.state, [p for p in window.view_grid.panels if p.isVisible()]
    to_panels, to_3d = [], []
    for _ in range(steps):
        window.scene3d.settle()
        app.processEvents()
        start = time.perf_counter()
        rendered = len(clock.renders)
        state.set_iteration((state.iteration + 1) % (state.max_iteration + 1))
        deadline = start + 1.0
        while time.perf_counter() < deadline:
            app.processEvents()
            painted = clock.panels_painted_since(start, panels)
            shown_3d = not window.scene_dock.isVisible() or len(clock.renders) > rendered
            if painted is not None and shown_3d:
                break
        to_panels.append((painted or deadline) - start)
        to_3d.append(clock.renders[-1] - start if len(clock.renders) > rendered else float("nan"))
        time.sleep(0.25)  # past the 3D view's settling: the next step starts from rest
        app.processEvents()
    return to_panels, to_3d


def drag(app, window, clock: Clock, seconds: float) -> tuple[list[float], float, float]:
    """A 60 Hz drag: seconds from each value change to the panels painted; panel and 3D frames per second."""
    state, panels = window.state, [p for p in window.view_grid.panels if p.isVisible()]
    count = state.max_iteration + 1
    latencies, pending = [], []  # pending: times of the value changes not yet painted
    renders_before, paints = len(clock.renders), 0
    loop = QEventLoop()
    start = time.perf_counter()

    def poll():
        nonlocal paints
        now = time.perf_counter()
        if pending:
            painted = clock.panels_painted_since(pending[-1][1], panels)
            if painted is not None:
                latencies.extend(painted - changed for changed, _ in pending)
                pending.clear()
                paints += 1
        if now - start > seconds:
            loop.quit()
            return
        index = int((now - start) / DRAG_INTERVAL_S)
        target = index % count
        if target != state.iteration:
            pending.append((start + index * DRAG_INTERVAL_S, time.perf_counter()))
            state.set_iteration(target)

    timer = QTimer(interval=1)
    timer.timeout.connect(poll)
    timer.start()
    loop.exec()
    timer.stop()
    elapsed = time.perf_counter() - start
    return latencies, paints / elapsed, (len(clock.renders) - renders_before) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60, help="single steps")
    parser.add_argument("--drag-seconds", type=float, default=5.0)
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
    state, scene3d = window.state, window.scene3d
    clock = Clock(window)
    print(f"{state.scene.sample.num_views} views, {len(scene3d.view_meshes)} meshes of "
          f"{state.trace.vertices.shape[2]} vertices, {state.max_iteration} iterations")
    for name, seconds in marks.items():
        print(f"start-up to {name}: {seconds:.2f} s")
    print(f"3D view's OpenGL: {scene3d.renderer_name}" + (" (software: no multisampling, no OIT)"
                                                          if scene3d.software_opengl else ""))
    to_panels, to_3d = single_steps(app, window, clock, args.steps)
    print(f"single step, every viewport, to the panels painted: {summary(to_panels)}")
    print(f"single step, every viewport, to the 3D view rendered (after the panels): "
          f"median {statistics.median(to_3d) * 1000:.1f} ms")
    latencies, panel_fps, fps_3d = drag(app, window, clock, args.drag_seconds)
    print(f"60 Hz drag, every viewport, value change to the panels painted: {summary(latencies)}; "
          f"panels {panel_fps:.0f} frames/s, 3D view {fps_3d:.0f} frames/s (level of detail: "
          f"{scene3d.lod.index.size if scene3d.lod else 0} of {state.trace.vertices.shape[2]} vertices)")
    scene3d.settle()
    window.scene_dock.hide()
    to_panels, _ = single_steps(app, window, clock, args.steps)
    print(f"single step, 3D dock hidden, to the panels painted: {summary(to_panels)}")
    window.scene_dock.show()
    scene3d.settle()
    app.processEvents()
    print(f"one render of the 3D view alone: median {median_render_ms(scene3d.plotter.ren_win):.1f} ms")
    for mesh in scene3d.meshes:
        mesh.show(state.iteration, coarse=True)
    print(f"one render of the 3D view at the level of detail: median "
          f"{median_render_ms(scene3d.plotter.ren_win):.1f} ms")
    scene3d.shown_iteration = None
    scene3d.settle()
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

"""The window under Xvfb: it loads the sample off the GUI thread, draws what the data says, survives bad input,
and makes a screenshot with content."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.gui

if not os.environ.get("DISPLAY"):
    pytest.skip("GUI tests need a display: run them through packaging/test.sh (Xvfb)", allow_module_level=True)

from app.capture import save_screenshot  # noqa: E402
from app.main_window import MainWindow  # noqa: E402
from core.resources import SAMPLE_SCENE  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def settings(tmp_path):
    from PyQt6.QtCore import QSettings

    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def window(qtbot, settings):
    win = MainWindow(settings=settings)
    win.setProperty("headless", True)
    qtbot.addWidget(win)
    win.show()
    with qtbot.waitSignal(win.ready, timeout=120000):
        win.load(SAMPLE_SCENE)
    yield win
    win.shutdown()
    win.scene3d.plotter.close()


def test_sample_is_shown_in_every_view(window, body):
    scene = window.state.scene
    assert len(window.view_grid.panels) == scene.sample.num_views == 4
    panel = window.view_grid.panels[2]
    np.testing.assert_array_equal(panel.image.image, scene.sample.frames[2])
    kp = scene.sample.keypoints[2]
    shown_x, shown_y = panel.evidence.getData()
    np.testing.assert_allclose(shown_x, kp[kp[:, 2] > 0, 0])
    np.testing.assert_allclose(shown_y, kp[kp[:, 2] > 0, 1])


def test_3d_mesh_is_the_ground_truth_body(window, body):
    gt = window.state.scene.sample.ground_truth
    with torch.no_grad():
        out = body(*(torch.tensor(x[None], dtype=torch.float32) for x in
                     (gt.global_orient, gt.body_pose, gt.betas)), torch.tensor(gt.transl[None], dtype=torch.float32))
    np.testing.assert_allclose(window.scene3d.truth_mesh.points, out.vertices[0].numpy(), atol=1e-5)
    assert window.scene3d.truth_mesh.n_cells == len(body.faces)


def test_selecting_a_view_highlights_its_frustum(window):
    window.state.select_view(1)
    widths = [a.GetProperty().GetLineWidth() for a in window.scene3d.frustum_actors]
    assert widths[1] > widths[0] and widths.count(widths[0]) == 3


def test_bad_folder_keeps_the_previous_scene(window, qtbot, tmp_path):
    previous = window.state.scene
    broken = tmp_path / "broken"
    shutil.copytree(SAMPLE_SCENE, broken)
    (broken / "images" / "cam01" / "000000.jpg").write_bytes(b"not a jpeg")
    with qtbot.waitSignal(window.load_failed, timeout=60000) as blocker:
        window.load(broken)
    assert "000000.jpg" in blocker.args[0] and "cannot decode image" in blocker.args[0]
    assert window.state.scene is previous and window.state.traces
    assert "Could not load" in window.statusBar().currentMessage()


def test_body_model_choice_is_validated_and_remembered(window, qtbot, settings, tmp_path):
    import numpy as np_

    from core.resources import FREE_BODY_MODEL, resolve_body_model_path

    bad = tmp_path / "SMPL_NEUTRAL.pkl"
    bad.write_bytes(b"garbage")
    with qtbot.waitSignal(window.load_failed, timeout=60000) as blocker:
        window.use_body_model(bad)
    assert str(bad) in blocker.args[0]
    assert window.body_model_path is None and not settings.value("body_model")
    assert str(bad) not in window.recent_files()

    user_file = tmp_path / "SMPL_NEUTRAL.npz"
    np_.savez(user_file, **dict(np_.load(FREE_BODY_MODEL)))
    with qtbot.waitSignal(window.ready, timeout=120000):
        window.use_body_model(user_file)
    assert window.body_model_path == user_file and settings.value("body_model") == str(user_file)
    assert "SMPL_NEUTRAL.npz" in window.state.scene.body_identity
    assert str(user_file) in window.recent_files()  # reopened from File > Open recent like the rest
    settings.sync()
    assert resolve_body_model_path(None, settings.value("body_model")) == user_file  # used at the next start


def test_both_modes_are_estimated_and_labelled(window, qtbot):
    assert set(window.state.traces) == {"calibrated", "uncalibrated"}
    assert window.state.iteration == window.state.max_iteration == window.model.config.iterations  # as trained
    title = window.view_grid.panels[0].plot.titleLabel.text
    assert "cam01" in title and "reprojects within" in title
    label = window.model_label.text()
    assert "heatformer_compact.pt@" in label and "synthetic" in label  # the shipped weights say what they are
    assert "on cpu" in label and window.state.scene.body_identity in label
    assert window.model.description in window.model_label.toolTip()  # the whole of what the weights saw
    window.state.set_mode("uncalibrated")
    assert "aligned rigidly" in window.scene3d.note  # written in the 3D view's corner
    assert window.scene3d.note in window.scene3d.plotter.actors["note"].GetText(2)  # upper left
    window.checkpoint, window.model = None, None  # random weights are never presented as a result
    with qtbot.waitSignal(window.ready, timeout=120000):
        window.run_inference()
    assert "UNTRAINED" in window.model_label.text()


def test_slider_moves_every_view_to_that_iteration(window):
    state = window.state
    state.set_layer("estimate heatmaps", True)  # hidden heatmap layers are not redrawn
    for mode in ("calibrated", "uncalibrated"):
        state.set_mode(mode)
        trace = state.traces[mode]
        for k in (0, 2, 1):
            window.controls.slider.setValue(k)
            assert state.iteration == k and window.controls.label.text().strip().startswith(f"iteration {k}")
            window.scene3d.settle()  # the 3D view is rendered after the panels, at full detail once steps stop
            for v, mesh in enumerate(window.scene3d.view_meshes):
                np.testing.assert_allclose(mesh.points, trace.vertices[k, v])
            np.testing.assert_allclose(window.scene3d.fused_mesh.points, trace.fused_vertices[k])
            for v, panel in enumerate(window.view_grid.panels):
                x, y = panel.estimate.getData()
                np.testing.assert_allclose(np.stack([x, y], 1), trace.joints2d[k, v], atol=1e-4)
                np.testing.assert_allclose(panel.estimate_heat.image, trace.heatmaps[k, v].max(0), atol=1e-3)
                for heat in (panel.estimate_heat, panel.input_heat):  # over the crop the network saw
                    placed = heat.mapRectToView(heat.boundingRect())
                    np.testing.assert_allclose([placed.x(), placed.y(), placed.width(), placed.height()],
                                               trace.crop_boxes[v], rtol=1e-4)


def test_selected_joint_is_highlighted_everywhere(window):
    assert not window.scene3d.joint_mark_actor.GetVisibility()
    assert not any(panel.highlight.isVisible() for panel in window.view_grid.panels)  # empty overlays hidden
    window.state.select_joint(13)
    trace = window.state.trace
    for v, panel in enumerate(window.view_grid.panels):
        assert panel.highlight.isVisible()
        x, y = panel.highlight.getData()
        np.testing.assert_allclose([x[0], y[0]], trace.joints2d[window.state.iteration, v, 13], atol=1e-4)
        np.testing.assert_allclose(panel.input_heat.image, trace.input_heatmaps[v, 13], atol=1e-3)
    assert window.controls.joint.currentText() == "left_wrist"
    assert window.scene3d.joint_mark_actor.GetVisibility()
    np.testing.assert_allclose(window.scene3d.joint_marks.points, trace.joints3d[window.state.iteration, :, 13])


def test_3d_skeletons_follow_the_slider(window):
    trace = window.state.trace
    for k in (0, 2):
        window.state.set_iteration(k)
        window.scene3d.settle()
        for v, bones in enumerate(window.scene3d.skeletons):
            np.testing.assert_allclose(bones.points, trace.joints3d[k, v])
    assert window.scene3d.skeletons[0].n_lines == len(window.state.scene.sample.joints.edges)


def test_both_modes_overlaid(window):
    state = window.state
    state.set_mode("both")
    calibrated, uncalibrated = state.traces["calibrated"], state.traces["uncalibrated"]
    assert window.controls.mode.currentText() == "both"
    state.set_iteration(1)
    panel = window.view_grid.panels[1]
    np.testing.assert_allclose(np.stack(panel.estimate.getData(), 1), calibrated.joints2d[1, 1], atol=1e-4)
    np.testing.assert_allclose(np.stack(panel.comparison_points.getData(), 1), uncalibrated.joints2d[1, 1], atol=1e-4)
    assert panel.comparison_points.isVisible()
    scene = window.scene3d
    scene.settle()
    assert len(scene.comparison_meshes) == 4
    np.testing.assert_allclose(scene.comparison_meshes[2].points, uncalibrated.vertices[1, 2])
    np.testing.assert_allclose(scene.view_meshes[2].points, calibrated.vertices[1, 2])
    title = window.error_plot.numbers.text()
    assert f"{calibrated.metrics['mpjpe_mm'][1]:.1f}" in title and f"{uncalibrated.metrics['mpjpe_mm'][1]:.1f}" in title
    assert "uncalibrated dashed" in window.model_label.text() and "wireframes" in scene.note
    state.set_mode("calibrated")
    assert scene.comparison_meshes == [] and not np.stack(panel.comparison_points.getData(), 1).size
    assert scene.note == "" and "note" not in scene.plotter.actors  # calibrated estimates need no note
    assert not panel.comparison_points.isVisible() and not panel.comparison_bones.isVisible()


def test_error_plot_without_ground_truth_shows_reprojection_and_heatmap_errors(window, qtbot, tmp_path):
    from conftest import FRAMES, camera_folder, frame_keypoints

    plot = window.error_plot
    assert set(plot.curves) == {f"{m}:{k}" for m in ("calibrated", "uncalibrated")
                                for k in ("mpjpe_mm", "pa_mpjpe_mm", "mpvpe_mm")}
    assert not plot.plotItem.getAxis("right").isVisible()  # errors against the truth share one scale
    original = window.state.scene.sample
    folder = camera_folder(tmp_path, original, "images")
    np.save(folder / "keypoints.npy", np.stack([frame_keypoints(original, f) for f in range(FRAMES)]))
    with qtbot.waitSignal(window.ready, timeout=120000):
        window.load(folder)
    assert window.state.scene.sample.ground_truth is None
    assert set(plot.curves) == {f"{m}:{k}" for m in ("calibrated", "uncalibrated")
                                for k in ("reprojection_px", "heatmap_mse")}
    trace = window.state.traces["uncalibrated"]
    np.testing.assert_allclose(plot.curves["uncalibrated:heatmap_mse"].getData()[1], trace.metrics["heatmap_mse"])
    np.testing.assert_allclose(plot.curves["uncalibrated:reprojection_px"].getData()[1],
                               trace.metrics["reprojection_px"])
    assert plot.curves["calibrated:heatmap_mse"] in plot.right_view.addedItems  # on its own scale, at the right
    assert plot.plotItem.getAxis("right").isVisible()
    window.state.set_iteration(1)
    assert f"heatmap {trace.metrics['heatmap_mse'][1]:.3g}" in plot.numbers.text()
    with qtbot.waitSignal(window.ready, timeout=120000):
        window.load(SAMPLE_SCENE)
    assert not plot.right_view.addedItems and not plot.plotItem.getAxis("right").isVisible()


def test_error_plot_range_holds_every_curve_and_stays_while_the_marker_moves(window):
    view = window.error_plot.plotItem.vb
    (x0, x1), (y0, y1) = before = view.viewRange()
    for curve in window.error_plot.curves.values():
        x, y = curve.getData()
        assert x0 <= x.min() and x.max() <= x1 and y0 <= y.min() and y.max() <= y1
    window.state.set_iteration(2)
    assert window.error_plot.marker.value() == 2 and view.viewRange() == before


def test_cached_panel_overlays_are_redrawn_when_they_change(window):
    """The overlays that keep their pixels between slider steps (the frame, the input heatmaps, the evidence...)
    must still show a change of the joint selected or of the layers. Qt places a cached drawing on whole device
    pixels, so a redrawn overlay may land up to half a pixel from where it was: a few pixels of its edges differ."""
    from PyQt6.QtCore import QPointF

    from app.capture import qimage_to_rgb

    for layer in ("ground truth", "evidence", "estimate joints"):  # markers over the input heatmaps' peaks
        window.state.set_layer(layer, False)
    panel = window.view_grid.panels[0]
    shown = qimage_to_rgb(panel.grab().toImage()).astype(int)

    def changed() -> np.ndarray:
        return (qimage_to_rgb(panel.grab().toImage()).astype(int) != shown).any(-1)

    window.state.select_joint(13)  # the input heatmaps of that joint only, and a ring around it
    ring = panel.mapFromScene(panel.plot.vb.mapViewToScene(QPointF(*panel.highlight.getData()[0][:1],
                                                                     *panel.highlight.getData()[1][:1])))
    rows, columns = np.indices(shown.shape[:2])
    away = np.hypot(columns - ring.x(), rows - ring.y()) > 30
    assert (changed() & away).sum() > 200  # the other joints' heatmaps are gone
    window.state.select_joint(-1)
    assert changed().sum() == 0
    window.state.set_layer("evidence", True)
    evidence = changed().sum()
    assert evidence > 100
    window.state.set_layer("evidence", False)
    assert changed().sum() < evidence / 5


def test_point_items_remember_their_bounding_rectangle_only_while_it_holds(window, qtbot):
    """A remembered rectangle that outlived new points, a zoom or a resize would leave stale pixels behind."""
    import pyqtgraph as pg

    from app.views.caching import ScatterItem

    panel = window.view_grid.panels[0]
    items = [panel.evidence, panel.estimate, panel.truth]
    assert all(isinstance(item, ScatterItem) for item in items)

    def fresh(item) -> tuple:
        return pg.ScatterPlotItem.boundingRect(item).getRect()  # pyqtgraph's own answer, worked out now

    def remembered(item) -> tuple:
        return item.boundingRect().getRect()

    estimate = panel.estimate
    remembered(estimate)
    assert estimate.boundingRect() is estimate.boundingRect()  # kept while nothing changed
    before = remembered(estimate)
    window.state.set_iteration(0 if window.state.iteration else 1)  # new points
    assert remembered(estimate) == fresh(estimate) != before
    estimate.setSize(14)  # bigger markers: more padding
    assert remembered(estimate) == fresh(estimate)
    panel.plot.vb.scaleBy((0.5, 0.5))  # a zoom: the padding in data units halves
    assert all(remembered(item) == fresh(item) for item in items)
    panel.resize(panel.width() // 2, panel.height())
    qtbot.waitUntil(lambda: all(remembered(item) == fresh(item) for item in items), timeout=2000)


def test_projected_mesh_ground_truth_and_occlusion_in_the_panels(window):
    from core.cameras import project_points

    state, sample = window.state, window.state.scene.sample
    occluded_view = int(np.argmax(sample.ground_truth.occluded.sum(1)))
    panel = window.view_grid.panels[occluded_view]
    assert not panel.silhouette.isVisible()
    state.set_layer("projected mesh", True)
    assert panel.silhouette.isVisible()
    projected = state.trace.vertices2d[state.iteration, occluded_view]
    rect = panel.silhouette.mapRectToParent(panel.silhouette.boundingRect())
    # the silhouette's rectangle is the projected mesh's bounding box plus one cell of margin
    assert rect.left() < projected[:, 0].min() < rect.left() + 10 and rect.right() - 10 < projected[:, 0].max()
    assert rect.top() < projected[:, 1].min() < rect.top() + 10 and rect.bottom() - 10 < projected[:, 1].max()
    assert panel.silhouette.image.mean() > 0.2
    truth, _ = project_points(sample.ground_truth.joints3d, sample.cameras[occluded_view])
    np.testing.assert_allclose(np.stack(panel.truth.getData(), 1), truth, atol=1e-3)
    hidden = sample.ground_truth.occluded[occluded_view]
    assert hidden.any() and len(panel.occluded.getData()[0]) == hidden.sum()
    state.set_layer("ground truth", False)
    assert not panel.truth.isVisible() and not panel.occluded.isVisible()
    state.set_layer("ground truth", True)


def test_a_camera_can_be_hidden_everywhere(window):
    state, scene = window.state, window.scene3d
    action = window.camera_menu.actions()[1]
    assert action.text() == "cam02" and action.isChecked()
    action.setChecked(False)
    assert not state.view_shown(1)
    assert not window.view_grid.panels[1].isVisible() and window.view_grid.panels[0].isVisible()
    assert not scene.view_actors[1].GetVisibility() and scene.view_actors[0].GetVisibility()
    assert not any(a.GetVisibility() for a in scene.camera_actors_of_view[1] + scene.skeleton_actors_of_view[1])
    action.setChecked(True)
    assert window.view_grid.panels[1].isVisible() and scene.view_actors[1].GetVisibility()


def test_reset_view_fills_the_3d_view_with_the_cameras_and_the_person(window):
    scene3d = window.scene3d
    scene3d.look_through(1)  # somewhere else first
    scene3d.reset_view()
    cameras = np.array([c.center for c in window.state.scene.sample.cameras])
    view = scene3d.view_coordinates(np.vstack([cameras, window.state.scene.sample.ground_truth.joints3d]))
    assert (np.abs(view) < 0.95).all()  # everything inside, with a margin
    span = view.max(0) - view.min(0)
    assert span.max() > 1.5  # at least three quarters of the view's width or height
    np.testing.assert_allclose((view.max(0) + view.min(0)) / 2, 0, atol=0.1)  # centred


def test_look_through_a_camera(window):
    camera = window.state.scene.sample.cameras[2]
    window.scene3d.look_through(2)
    view = window.scene3d.plotter.camera
    np.testing.assert_allclose(view.position, camera.center, atol=1e-6)
    direction = np.asarray(view.focal_point) - np.asarray(view.position)
    np.testing.assert_allclose(direction / np.linalg.norm(direction), camera.R[2], atol=1e-6)
    # the ground-truth pelvis, seen through the 3D view, lands where the camera projects it
    renderer = window.scene3d.plotter.renderer
    renderer.SetWorldPoint(*window.state.scene.sample.ground_truth.joints3d[0], 1.0)
    renderer.WorldToDisplay()
    x, y, _ = renderer.GetDisplayPoint()
    width, height = renderer.GetSize()
    u, _ = camera.project(window.state.scene.sample.ground_truth.joints3d[:1])
    # same vertical scale (field of view): compare offsets from the centre, relative to the image height
    assert abs((height / 2 - y) / height - (u[0, 1] - camera.K[1, 2]) / camera.height) < 0.02


def test_layer_toggles_hide_and_show(window):
    scene, panel = window.scene3d, window.view_grid.panels[0]
    window.state.set_layer("per-view meshes", False)
    assert not any(a.GetVisibility() for a in scene.view_actors)
    window.state.set_layer("fused mesh", True)
    assert scene.fused_actor.GetVisibility()
    window.state.set_layer("estimate joints", False)
    assert not panel.estimate.isVisible()
    assert not panel.difference_heat.isVisible()
    window.state.set_layer("heatmap difference", True)
    assert panel.difference_heat.isVisible()
    trace, k = window.state.trace, window.state.iteration
    np.testing.assert_allclose(panel.difference_heat.image,
                               trace.input_heatmaps[0].max(0) - trace.heatmaps[k, 0].max(0), atol=1e-3)
    window.state.set_layer("per-view meshes", True)
    window.state.set_layer("estimate joints", True)
    assert all(a.GetVisibility() for a in scene.view_actors) and panel.estimate.isVisible()
    window.controls.opacity.setValue(30)
    assert window.state.heat_opacity == pytest.approx(0.3) and panel.input_heat.opacity() == pytest.approx(0.3)


def test_saved_traces_open_without_the_network(window, qtbot, tmp_path):
    paths = []
    for mode, trace in window.state.traces.items():
        paths.append(tmp_path / f"{mode}.npz")
        trace.save(paths[-1])
    window.model = None
    with qtbot.waitSignal(window.ready, timeout=60000):
        window.open_traces(paths)
    assert window.model is None  # nothing was run
    assert set(window.state.traces) == {"calibrated", "uncalibrated"}
    np.testing.assert_allclose(window.scene3d.view_meshes[0].points,
                               window.state.trace.vertices[window.state.iteration, 0])


def test_a_wrong_checkpoint_is_refused_and_the_estimates_stay(window, qtbot, tmp_path):
    before, checkpoint = window.state.traces, window.checkpoint
    bad = tmp_path / "model_best_iter3.pth.tar"
    bad.write_bytes(b"not a checkpoint")
    with qtbot.waitSignal(window.ready, timeout=60000):
        window.run_inference(bad)
    assert str(bad) in window.last_error and "cannot read checkpoint" in window.last_error
    assert window.state.traces is before and window.checkpoint == checkpoint
    assert str(bad) not in window.recent_files()
    good = tmp_path / "mine.pt"
    shutil.copy(checkpoint, good)
    with qtbot.waitSignal(window.ready, timeout=120000):
        window.run_inference(good)
    assert window.checkpoint == good and window.recent_files()[0] == str(good)  # a checkpoint that ran


def test_official_2d_evidence_needs_a_checkpoint_that_has_it(window, qtbot):
    """The File menu's switch to the official checkpoint's AdaFuse: the shipped compact checkpoint has none, so
    the estimate is refused by name, and the check mark, the evidence source and the estimates stay as they were
    (the switch itself is tested with an official checkpoint in test_official_parity)."""
    before = window.state.traces
    with qtbot.waitSignal(window.ready, timeout=60000):
        window.official_2d_action.setChecked(True)
    assert "no official 2D network" in window.last_error and str(window.checkpoint) in window.last_error
    assert not window.official_2d_action.isChecked() and not window.official_2d
    assert window.state.traces is before


def test_exports_from_the_window_reload(window, tmp_path):
    import trimesh

    from core.trace import RefinementTrace

    window.state.set_iteration(1)
    window.state.set_view_shown(2, False)
    window.export_meshes(tmp_path, "ply")
    trace = window.state.trace
    mesh = trimesh.load(tmp_path / "calibrated_iter1_cam02.ply", process=False)
    np.testing.assert_allclose(np.asarray(mesh.vertices), trace.vertices[1, 1], atol=1e-5)
    assert len(list(tmp_path.glob("*.ply"))) == 4  # the three shown views and the averaged estimate
    assert not (tmp_path / "calibrated_iter1_cam03.ply").exists()
    window.export_traces(tmp_path)
    assert RefinementTrace.load(tmp_path / "sample.uncalibrated.npz").mode == "uncalibrated"
    assert "wrote" in window.statusBar().currentMessage()


def test_viewport_screenshots_and_videos(window, tmp_path):
    import cv2

    from PyQt6.QtWidgets import QGraphicsItem

    from app.capture import SCENE_3D, grab_viewport, record_refinement
    from core.video import count_frames

    window.state.set_iteration(1)
    save_screenshot(window, tmp_path / "scene.png", SCENE_3D, scale=2)
    width, height = window.scene3d.plotter.window_size
    assert cv2.imread(str(tmp_path / "scene.png")).shape[:2] == (2 * height, 2 * width)
    panel = window.view_grid.panels[0]
    save_screenshot(window, tmp_path / "cam01.png", "cam01", scale=2)
    shot = cv2.imread(str(tmp_path / "cam01.png"))
    assert shot.shape[:2] == (2 * panel.height(), 2 * panel.width()) and shot.std() > 20
    # drawn at twice the pixels, not the overlays' cached screen-resolution pixmaps enlarged
    scaled = grab_viewport(window, "cam01", scale=2)
    for item in panel.scene().items():
        item.setCacheMode(QGraphicsItem.CacheMode.NoCache)
    np.testing.assert_array_equal(grab_viewport(window, "cam01", scale=2), scaled)
    record_refinement(window, tmp_path / "scene.gif", SCENE_3D)
    record_refinement(window, tmp_path / "cam01.mp4", "cam01")
    frames = window.state.max_iteration + 1  # iterations 0..N
    assert count_frames(tmp_path / "scene.gif") == count_frames(tmp_path / "cam01.mp4") == frames
    assert window.state.iteration == 1  # back where it was
    with pytest.raises(ValueError, match="no viewport"):
        save_screenshot(window, tmp_path / "x.png", "cam09")
    assert not (tmp_path / "x.png").exists()


def test_layout_and_recent_files_are_remembered(window, qtbot, settings, tmp_path):
    assert window.recent_files()[0] == str(SAMPLE_SCENE)
    window.error_dock.hide()
    window.close()  # saves the layout
    again = MainWindow(settings=settings)
    qtbot.addWidget(again)
    again.show()
    assert again.error_dock.isHidden() and not again.scene_dock.isHidden()
    assert [a.text() for a in again.recent_menu.actions()][0] == str(SAMPLE_SCENE)
    again.shutdown()
    again.scene3d.plotter.close()


def test_dropped_trace_opens_and_joins_recent_files(window, qtbot, tmp_path):
    from PyQt6.QtCore import QMimeData, QPointF, Qt, QUrl
    from PyQt6.QtGui import QDropEvent

    path = tmp_path / "dropped.npz"
    window.state.traces["uncalibrated"].save(path)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton,
                       Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(window.ready, timeout=60000):
        window.dropEvent(event)
    assert set(window.state.traces) == {"uncalibrated"} and window.state.mode == "uncalibrated"
    assert window.recent_files()[0] == str(path)
    window.open_path(tmp_path / "notes.txt")
    assert "not a sample folder" in window.last_error and set(window.state.traces) == {"uncalibrated"}


def test_screenshot_has_content(window, tmp_path):
    from app.capture import screenshot_problems

    path = tmp_path / "shot.png"
    save_screenshot(window, path)
    assert screenshot_problems(path) == []
    import cv2  # the check can fail: a dark window with no body in it does not pass

    cv2.imwrite(str(tmp_path / "blank.png"), np.full((950, 1500, 3), 40, np.uint8))
    found = screenshot_problems(tmp_path / "blank.png")
    assert any("blank" in p for p in found) and any("no body" in p for p in found)
    noise = cv2.imread(str(path))  # the 3D view as Qt alone grabs a native OpenGL window: random memory
    noise[:, 750:] = np.random.default_rng(0).integers(0, 256, noise[:, 750:].shape, dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "noise.png"), noise)
    assert any("noise" in p for p in screenshot_problems(tmp_path / "noise.png"))


def run_main(*args, timeout=120):
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


def test_command_line_screenshot_and_quit(tmp_path):
    shot = tmp_path / "window.png"
    result = run_main("--mode", "both", "--iteration", "1", "--screenshot", str(shot), "--quit")
    assert result.returncode == 0, result.stderr
    from app.capture import screenshot_problems

    assert screenshot_problems(shot) == []


def test_command_line_reports_bad_data(tmp_path):
    result = run_main("--data", str(tmp_path / "missing"), "--quit")
    assert result.returncode != 0
    assert "missing" in result.stderr and "not a folder" in result.stderr


def test_command_line_exits_non_zero_and_never_hangs_when_it_cannot_show_what_was_asked(tmp_path):
    """A bad trace is reported at once (it used to hang the event loop); a checkpoint that cannot run after the
    data loaded ends in 2, with no screenshot claiming a result."""
    bad = tmp_path / "bad.npz"
    np.savez(bad, header=np.array("{not json"))
    result = run_main("--trace", str(bad), "--screenshot", str(tmp_path / "a.png"), "--quit", timeout=60)
    assert result.returncode == 2 and "bad.npz" in result.stderr and not (tmp_path / "a.png").exists()
    refused = tmp_path / "model_best_iter3.pth.tar"
    refused.write_bytes(b"not a checkpoint")
    result = run_main("--checkpoint", str(refused), "--screenshot", str(tmp_path / "b.png"), "--quit")
    assert result.returncode == 2 and "model_best_iter3.pth.tar" in result.stderr
    assert not (tmp_path / "b.png").exists()


def test_about_box_and_title_say_what_is_running(window):
    from core import __version__

    assert window.windowTitle().startswith(f"HeatFormer Studio {__version__}")
    assert not window.windowIcon().isNull()
    about = window.about_text()
    assert __version__ in about and "torch" in about and ("CPU" in about or "CUDA" in about)
    assert "heatformer_compact.pt@" in about and "synthetic" in about and "free body model" in about
    assert "Apache" in about and "CC0" in about and "arXiv:2412.04456" in about
    assert "BlazePose" in about and "mediapipe" in about


def test_3d_view_adapts_to_software_opengl(window):
    """Xvfb's OpenGL is Mesa's llvmpipe: the 3D view drops multisampling and order-independent transparency there
    and says so in About; on a GPU it keeps them."""
    scene3d = window.scene3d
    assert scene3d.renderer_name  # read when the first scene was shown
    software = scene3d.software_opengl
    assert software == any(n in scene3d.renderer_name.lower() for n in ("llvmpipe", "softpipe", "swrast"))
    assert (scene3d.plotter.ren_win.GetMultiSamples() == 0) == software
    assert scene3d.plotter.renderer.GetUseOIT() != software
    assert ("software OpenGL" in window.about_text()) == software


def test_wayland_sessions_run_the_window_through_xwayland(monkeypatch):
    from app.application import use_x11_for_vtk

    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    use_x11_for_vtk()
    assert os.environ["QT_QPA_PLATFORM"] == "xcb"
    monkeypatch.setenv("QT_QPA_PLATFORM", "wayland")  # the user's choice stays
    use_x11_for_vtk()
    assert os.environ["QT_QPA_PLATFORM"] == "wayland"


def test_reset_settings_clears_the_saved_ones(tmp_path):
    import os

    config = tmp_path / "config"
    saved = config / "HeatFormer" / "HeatFormer Studio.conf"
    saved.parent.mkdir(parents=True)
    saved.write_text("[General]\nbody_model=/somewhere/SMPL_NEUTRAL.pkl\nrecent=/data/a\n")
    env = {**os.environ, "XDG_CONFIG_HOME": str(config)}
    result = subprocess.run([sys.executable, str(ROOT / "main.py"), "--reset-settings", "--data",
                             str(tmp_path / "missing"), "--quit"], capture_output=True, text=True, timeout=120,
                            cwd=ROOT, env=env)
    assert "cleared the settings" in result.stdout and str(saved) in result.stdout
    assert "body_model" not in saved.read_text() and "recent" not in saved.read_text()


def test_frame_slider_runs_and_exports_a_sequence(window, qtbot, tmp_path):
    from conftest import FRAMES, camera_folder, frame_keypoints
    from core.trace import RefinementTrace

    original = window.state.scene.sample
    folder = camera_folder(tmp_path, original, "images")
    np.save(folder / "keypoints.npy", np.stack([frame_keypoints(original, f) for f in range(FRAMES)]))
    controls = window.controls
    assert not controls.frame_slider.isVisible()  # a single sample has no frames to slide through
    with qtbot.waitSignal(window.ready, timeout=120000):
        window.load(folder)
    assert controls.frame_slider.isVisible() and controls.frame_slider.maximum() == FRAMES - 1
    with qtbot.waitSignal(window.ready, timeout=120000):
        controls.frame_slider.setValue(2)  # as when the user releases the slider there
    scene = window.state.scene
    assert scene.sample.frame == 2 and "000002 (3/3)" in controls.frame_label.text()
    np.testing.assert_array_equal(scene.sample.keypoints, frame_keypoints(original, 2))
    np.testing.assert_array_equal(window.view_grid.panels[0].evidence.getData()[0],
                                  scene.sample.keypoints[0][scene.sample.keypoints[0, :, 2] > 0, 0])
    assert window.state.trace.info["sample_frame"] == 2
    with qtbot.waitSignal(window.ready, timeout=120000):
        window.run_frames(0, 1)
    assert sorted(window.frame_traces) == [0, 1, 2]  # 2 was estimated when shown; 0 and 1 now
    assert [window.frame_traces[f]["calibrated"].info["sample_frame"] for f in range(FRAMES)] == [0, 1, 2]
    with qtbot.waitSignal(window.ready, timeout=60000):
        window.state.request_frame(0)  # estimated already: shown from memory, not run again
    assert window.state.traces["calibrated"] is window.frame_traces[0]["calibrated"]
    with qtbot.waitSignal(window.export_done, timeout=60000) as done:
        window.export_sequence(tmp_path / "params")
    assert "wrote 6 files" in done.args[0]
    assert len(list((tmp_path / "params").glob("00000[012]_*calibrated_iter*_smpl.npz"))) == 6
    window.state.set_view_shown(3, False)
    with qtbot.waitSignal(window.export_done, timeout=60000) as done:
        window.export_sequence(tmp_path / "meshes", "ply")
    assert "wrote 24 files" in done.args[0]  # 3 frames x 2 modes x (3 shown views + the averaged mesh)
    names = {p.name.split("_", 2)[2] for p in (tmp_path / "meshes" / "000001").glob("*calibrated_iter*.ply")}
    assert names == {"averaged.ply", "cam01.ply", "cam02.ply", "cam03.ply"}  # the hidden cam04 is left out
    window.frame_traces[1]["calibrated"].save(tmp_path / "frame1.npz")
    with qtbot.waitSignal(window.ready, timeout=60000):
        window.open_traces([tmp_path / "frame1.npz"])  # a trace reopens on its own frame
    assert window.state.scene.sample.frame == 1
    np.testing.assert_allclose(window.state.trace.vertices,
                               RefinementTrace.load(tmp_path / "frame1.npz").vertices)


def test_a_folder_without_keypoints_gets_the_built_in_or_the_users_detector(window, qtbot, tmp_path, monkeypatch):
    pytest.importorskip("onnx")
    from conftest import camera_folder
    from test_detector import JOINTS, DotSimcc, export

    from core.detector import PoseDetector

    folder = camera_folder(tmp_path, window.state.scene.sample, "images")
    with qtbot.waitSignal(window.ready, timeout=60000):  # no keypoints: the built-in detector makes them
        window.load(folder)
    assert window.state.scene.sample.source == str(folder) and window.state.scene.sample.joint_set == "coco17"
    assert "detector: the subject" in window.view_grid.panels[0].evidence_note.toPlainText()
    (tmp_path / "broken.json").write_text('{"model": "x.onnx", "output": "dense"}')
    window.use_detector(tmp_path / "broken.json")
    assert "broken.json" in window.last_error and window.detector is None
    model = export(DotSimcc(), tmp_path / "rtm.onnx", ["simcc_x", "simcc_y"])
    (tmp_path / "rtm.json").write_text(json.dumps({"model": model.name, "output": "simcc"}))
    with qtbot.waitSignal(window.load_failed, timeout=60000) as failed:  # the test model puts every joint on
        window.use_detector(tmp_path / "rtm.json")  # one dot: degenerate evidence, refused by name
    assert "lie at one point" in failed.args[0]
    detect = PoseDetector.detect
    offsets = np.stack([np.arange(JOINTS) * 4.0, np.arange(JOINTS) * 6.0, np.zeros(JOINTS)], 1)
    monkeypatch.setattr(PoseDetector, "detect", lambda self, image, box=None: detect(self, image, box) + offsets)
    with qtbot.waitSignal(window.ready, timeout=120000):
        window.use_detector(tmp_path / "rtm.json")
    sample = window.state.scene.sample
    assert sample.source == str(folder) and sample.joint_set == "coco17" and window.state.traces


def test_real_footage_opens_with_nothing_but_videos_and_a_calibration(window, qtbot):
    """Pose2Sim's real multi-person footage: the built-in detector's subject in every panel, said in each."""
    real = Path(__file__).parent / "fixtures" / "real_multiperson"
    with qtbot.waitSignal(window.ready, timeout=120000):
        window.load(real)
    sample = window.state.scene.sample
    assert sample.num_views == 4 and sample.cameras[0].image_size == (1088, 1920) and window.state.traces
    for panel in window.view_grid.panels:
        note = panel.evidence_note.toPlainText()
        assert "the subject" in note and "COCO-17; made: pelvis" in note
        assert panel.evidence_note.isVisible()
    window.state.set_layer("evidence", False)
    assert not window.view_grid.panels[0].evidence_note.isVisible()


def test_side_by_side_shows_each_camera_in_both_modes(window, qtbot):
    from app.state import SIDE_BY_SIDE

    state, grid = window.state, window.view_grid
    state.set_mode(SIDE_BY_SIDE)
    assert len(grid.twins) == 4 and all(t.isVisible() and t.active for t in grid.twins)
    assert grid.layout_.getItemPosition(grid.layout_.indexOf(grid.twins[1]))[:2] == (0, 3)  # beside cam02
    state.set_iteration(1)
    for mode, panel in (("calibrated", grid.panels[2]), ("uncalibrated", grid.twins[2])):
        np.testing.assert_allclose(np.stack(panel.estimate.getData(), 1), state.traces[mode].joints2d[1, 2],
                                   atol=1e-4)
        assert mode in panel.plot.titleLabel.text and not np.stack(panel.comparison_points.getData(), 1).size
    assert window.scene3d.comparison_meshes  # the 3D scene still shows both
    state.set_view_shown(3, False)
    assert not grid.twins[3].isVisible() and not grid.twins[3].active
    state.set_mode("calibrated")
    assert not any(t.isVisible() or t.active for t in grid.twins)
    state.set_iteration(2)  # idle twins do not follow the slider ...
    assert np.allclose(np.stack(grid.twins[0].estimate.getData(), 1), state.traces["uncalibrated"].joints2d[1, 0])
    state.set_view_shown(3, True)
    state.set_mode(SIDE_BY_SIDE)  # ... and catch up when shown again
    np.testing.assert_allclose(np.stack(grid.twins[0].estimate.getData(), 1),
                               state.traces["uncalibrated"].joints2d[2, 0], atol=1e-4)


def test_fewer_views_after_side_by_side(window, qtbot, tmp_path):
    """Panels and twins of views the new sample lacks are deleted; the state's signals must not reach them."""
    from dataclasses import replace

    from app.state import SIDE_BY_SIDE
    from core.dataset_io import read_sample, write_sample

    window.state.set_mode(SIDE_BY_SIDE)
    full = read_sample(SAMPLE_SCENE)
    keep = [0, 1, 2]
    write_sample(replace(full, cameras=[full.cameras[v] for v in keep], frames=[full.frames[v] for v in keep],
                         keypoints=full.keypoints[keep], ground_truth=None), tmp_path / "three")
    with qtbot.waitSignal(window.ready, timeout=120000):
        window.load(tmp_path / "three")
    grid = window.view_grid
    assert len(grid.panels) == len(grid.twins) == 3 and all(t.isVisible() for t in grid.twins)
    for mode in ("calibrated", SIDE_BY_SIDE, "both"):
        window.state.set_mode(mode)
        window.state.set_iteration(1)
        window.state.select_joint(4)
        window.state.set_iteration(2)
    qtbot.wait(100)  # the deleted panels are gone now; nothing above may have reached them
    np.testing.assert_allclose(np.stack(grid.panels[2].estimate.getData(), 1),
                               window.state.traces["calibrated"].joints2d[2, 2], atol=1e-4)


def test_official_database_opens_with_its_ground_truth(window, qtbot, tmp_path):
    """A BEHAVE database (written by the test in the official structure) opens like a folder; the joints its
    ground truth lacks (NaN) are left out of the panels, the 3D view and the errors."""
    from core.dataset_io import read_sample
    from test_heatformer_db import write_behave

    path = write_behave(tmp_path, read_sample(SAMPLE_SCENE))
    with qtbot.waitSignal(window.ready, timeout=120000):
        window.open_path(path)
    sample = window.state.scene.sample
    assert sample.source == str(path) and sample.view_names == ["k0", "k1", "k2", "k3"]
    known = int(np.isfinite(sample.ground_truth.joints3d).all(1).sum())
    assert known == 14
    assert len(window.view_grid.panels[1].truth.getData()[0]) == known
    assert window.scene3d.plotter.actors["truth-joints"].GetMapper().GetInput().GetNumberOfPoints() == known
    assert np.isfinite(window.state.traces["calibrated"].metrics["mpjpe_mm"]).all()


def test_another_calibration_file_is_used_and_estimated_again(window, qtbot, tmp_path):
    """Dropping a calibration file onto the window re-sees the open frame through its cameras; one that lacks a
    camera is refused by name and the previous cameras and estimates stay."""
    from dataclasses import replace

    from core.calibration import save_calibration

    before = window.state.scene
    before_trace = window.state.traces["calibrated"]
    moved = [replace(c, t=c.t + np.array([0.05, 0, 0])) for c in before.sample.cameras]
    save_calibration(moved[:3], tmp_path / "three.toml", "toml")
    with qtbot.waitSignal(window.load_failed, timeout=60000) as blocker:
        window.open_path(tmp_path / "three.toml")
    assert "three.toml" in blocker.args[0] and "cam04" in blocker.args[0]
    assert window.state.scene is before and window.state.traces["calibrated"] is before_trace
    save_calibration(moved, tmp_path / "moved.toml", "toml")
    with qtbot.waitSignal(window.ready, timeout=120000):
        window.open_path(tmp_path / "moved.toml")
    np.testing.assert_allclose(window.state.scene.sample.cameras[1].t, moved[1].t)
    assert window.state.traces["calibrated"] is not before_trace  # estimated again with the new cameras
    assert str(tmp_path / "moved.toml") in window.recent_files()
    window.state.traces["calibrated"].save(tmp_path / "moved.npz")  # reopened, it brings its cameras back
    with qtbot.waitSignal(window.ready, timeout=60000):
        window.load(SAMPLE_SCENE)
    np.testing.assert_allclose(window.state.scene.sample.cameras[1].t, before.sample.cameras[1].t)
    with qtbot.waitSignal(window.ready, timeout=60000):
        window.open_traces([tmp_path / "moved.npz"])
    np.testing.assert_allclose(window.state.scene.sample.cameras[1].t, moved[1].t)


def test_3d_view_renders_after_the_panels_coalesced_and_coarse_while_moving(window, qtbot):
    """A slider step updates the panels at once and leaves the 3D view for later; steps in quick succession (a
    movement) are rendered once, at the latest iteration, at the level of detail; when they stop the full meshes
    come back."""
    state, scene, trace = window.state, window.scene3d, window.state.trace
    scene.settle()
    rendered = scene.frames_rendered
    for k in (1, 2, 3):  # faster than any render: no event processed in between
        state.set_iteration(k)
    panel = window.view_grid.panels[0]
    np.testing.assert_allclose(np.stack(panel.estimate.getData(), 1), trace.joints2d[3, 0], atol=1e-4)
    assert scene.frames_rendered == rendered  # not on the step's path
    qtbot.waitUntil(lambda: scene.frames_rendered > rendered, timeout=5000)
    assert scene.frames_rendered == rendered + 1 and scene.shown_iteration == 3  # one render, the latest step
    actor = scene.view_actors[1]
    coarse = actor.GetMapper().GetInput()
    assert scene.shown_coarse and coarse.GetNumberOfCells() < len(trace.faces) / 5
    lod = scene.lod
    np.testing.assert_allclose(pv_points(coarse), trace.vertices[3, 1][lod.index])
    assert set(lod.index) <= set(np.asarray(trace.faces).ravel())  # a subset of the body's own vertices
    qtbot.waitUntil(lambda: not scene.shown_coarse, timeout=5000)  # the steps stopped
    assert actor.GetMapper().GetInput() is scene.view_meshes[1]
    np.testing.assert_allclose(scene.view_meshes[1].points, trace.vertices[3, 1])
    truth = scene.truth_actors[0].GetMapper().GetInput()
    assert truth.GetNumberOfCells() == len(window.state.scene.faces)  # the truth back in full, normals kept
    assert truth.GetPointData().GetNormals() is not None


def pv_points(dataset) -> np.ndarray:
    import pyvista as pv

    return np.asarray(pv.wrap(dataset).points)


def click_inspector_column(qtbot, inspector, column: int) -> None:
    """A real mouse click in the middle of a column's estimate tile."""
    from PyQt6.QtCore import QPointF, Qt

    from app.views.heatmap_inspector import tile_rect

    x, y, w, h = tile_rect(1, column, inspector.shown["size"])
    scene_point = inspector.box.mapViewToScene(QPointF(x + w / 2, y + h / 2))
    qtbot.mouseClick(inspector.canvas.viewport(), Qt.MouseButton.LeftButton,
                     pos=inspector.canvas.mapFromScene(scene_point))


def test_heatmap_inspector_shows_the_traces_arrays_and_selects_by_click(window, qtbot, tmp_path):
    from app.capture import HEATMAPS
    from app.views.heatmap_inspector import BY_VIEW, ESTIMATE_RGB, INPUT_RGB, tile_rect

    state, inspector, trace = window.state, window.inspector, window.state.trace
    assert inspector.isVisible()
    state.select_view(2)
    state.set_iteration(1)
    shown = inspector.shown
    assert (shown["view"], shown["iteration"]) == (2, 1) and len(shown["names"]) == 17
    size = shown["size"]
    assert size == trace.input_heatmaps.shape[:1:-1]  # (w, h)
    for joint in (0, 9, 16):
        x, y, w, h = tile_rect(0, joint, size)
        expected = (np.clip(trace.input_heatmaps[2, joint].astype(np.float32), 0, 1)[..., None] * INPUT_RGB)
        np.testing.assert_array_equal(shown["image"][y:y + h, x:x + w], expected.astype(np.uint8))
        x, y, w, h = tile_rect(1, joint, size)
        expected = (np.clip(trace.heatmaps[1, 2, joint].astype(np.float32), 0, 1)[..., None] * ESTIMATE_RGB)
        np.testing.assert_array_equal(shown["image"][y:y + h, x:x + w], expected.astype(np.uint8))
        error = ((trace.heatmaps[1, 2, joint].astype(np.float64) - trace.input_heatmaps[2, joint]) ** 2).mean()
        assert shown["errors"][joint] == pytest.approx(error, rel=1e-5)
    worst = int(np.argmax(shown["errors"]))
    assert inspector.worst.rect().x() == pytest.approx(tile_rect(0, worst, size)[0] - 1)
    state.set_iteration(3)  # it steps with the slider
    assert inspector.shown["iteration"] == 3
    click_inspector_column(qtbot, inspector, 5)
    assert state.selected_joint == 5 and window.controls.joint.currentText() == "left_knee"
    assert all(panel.highlight.isVisible() for panel in window.view_grid.panels)
    assert inspector.selected.isVisible()
    inspector.mode.setCurrentText(BY_VIEW)  # the selected joint in every view
    shown = inspector.shown
    assert shown["joint"] == 5 and shown["names"] == list(trace.view_names)
    x, y, w, h = tile_rect(1, 3, size)
    expected = (np.clip(trace.heatmaps[3, 3, 5].astype(np.float32), 0, 1)[..., None] * ESTIMATE_RGB)
    np.testing.assert_array_equal(shown["image"][y:y + h, x:x + w], expected.astype(np.uint8))
    click_inspector_column(qtbot, inspector, 3)
    assert state.selected_view == 3
    path = save_screenshot(window, tmp_path / "heatmaps.png", HEATMAPS, 2)
    import cv2

    picture = cv2.imread(str(path))
    assert picture.shape[:2] == (2 * inspector.height(), 2 * inspector.width()) and picture.std() > 5


def test_error_plot_can_show_the_selected_joints_errors(window):
    from core.inference import joint_errors

    state, plot = window.state, window.error_plot
    trace = state.traces["calibrated"]
    mean_curve = plot.curves["calibrated:mpjpe_mm"].getData()[1]
    np.testing.assert_allclose(mean_curve, trace.metrics["mpjpe_mm"])
    plot.set_per_joint(True)
    state.select_joint(13)
    expected = np.nanmean(joint_errors(trace, state.scene.sample)["mpjpe_mm"][..., 13], axis=1)
    np.testing.assert_allclose(plot.curves["calibrated:mpjpe_mm"].getData()[1], expected)
    assert not np.allclose(expected, trace.metrics["mpjpe_mm"])
    assert "pa_mpjpe_mm" not in {key.split(":")[1] for key in plot.curves}  # not defined per joint
    assert plot.numbers.text().startswith("left_wrist · iteration")
    state.select_joint(-1)  # none selected: the means again
    np.testing.assert_allclose(plot.curves["calibrated:mpjpe_mm"].getData()[1], trace.metrics["mpjpe_mm"])


def test_ab_compares_two_checkpoints_side_by_side_in_the_plot_and_in_3d(window, qtbot, tmp_path, body):
    from app.views.scene3d import DISTANCE
    from core.model.checkpoint import load_model, save_checkpoint
    from core.resources import resolve_checkpoint_path

    other = load_model(resolve_checkpoint_path(None), body)
    with torch.no_grad():
        for parameter in other.parameters():
            parameter.mul_(0.9)
    save_checkpoint(other, tmp_path / "other.pt", "the shipped weights x 0.9", {})
    with qtbot.waitSignal(window.ready, timeout=120000):
        window.compare(tmp_path / "other.pt")
    state, grid = window.state, window.view_grid
    assert state.mode == "A/B calibrated" and "other.pt" in state.ab_label
    a, b = state.traces["calibrated"], state.ab_traces["calibrated"]
    assert state.trace is a and state.comparison is b and not np.allclose(a.vertices, b.vertices)
    assert "A/B calibrated" in [window.controls.mode.itemText(i) for i in range(window.controls.mode.count())]
    plot = window.error_plot
    np.testing.assert_allclose(plot.curves["A:mpjpe_mm"].getData()[1], a.metrics["mpjpe_mm"])
    np.testing.assert_allclose(plot.curves["B:mpjpe_mm"].getData()[1], b.metrics["mpjpe_mm"])
    state.set_iteration(2)
    assert all(t.isVisible() and t.active for t in grid.twins)  # each camera's panel twice: A, then B
    np.testing.assert_allclose(np.stack(grid.twins[1].estimate.getData(), 1), b.joints2d[2, 1], atol=1e-4)
    np.testing.assert_allclose(np.stack(grid.panels[1].estimate.getData(), 1), a.joints2d[2, 1], atol=1e-4)
    assert "cam02 · B" in grid.twins[1].plot.titleLabel.text and "other.pt" in window.model_label.text()
    scene = window.scene3d
    scene.settle()
    np.testing.assert_allclose(scene.comparison_meshes[2].points, b.vertices[2, 2])
    np.testing.assert_allclose(scene.view_meshes[2].point_data[DISTANCE],
                               np.linalg.norm(a.vertices[2, 2] - b.vertices[2, 2], axis=1) * 1000, rtol=1e-5)
    assert scene.view_actors[2].GetMapper().GetScalarVisibility() and "distance to B" in scene.note
    state.set_ab({}, "")  # stop comparing: back to the calibrated mode, every mode plotted
    assert state.mode == "calibrated" and "calibrated:mpjpe_mm" in plot.curves and "A:mpjpe_mm" not in plot.curves


def test_ab_of_one_checkpoint_at_two_iteration_counts(window, qtbot):
    state = window.state
    state.set_mode("uncalibrated")
    with qtbot.waitSignal(window.ready, timeout=120000):
        window.compare(None, 2)
    a, b = state.trace, state.comparison
    assert state.mode == "A/B uncalibrated" and b.iterations == 2 and a.iterations == state.max_iteration == 3
    np.testing.assert_allclose(b.vertices[:3], a.vertices[:3], atol=1e-5)  # the same network: the same first steps
    state.set_iteration(3)  # B shows its last iteration there
    np.testing.assert_allclose(np.stack(window.view_grid.twins[0].estimate.getData(), 1), b.joints2d[2, 0],
                               atol=1e-4)
    window.scene3d.settle()
    np.testing.assert_allclose(window.scene3d.comparison_meshes[0].points, b.vertices[2, 0])
    assert window.error_plot.curves["B:mpjpe_mm"].getData()[0].tolist() == [0, 1, 2]


def test_panels_fit_their_slot_on_every_return_to_side_by_side(window, qtbot):
    """A plot resized while its title was long kept that width on the next side by side (fixed)."""
    state = window.state
    for mode in ("side by side", "calibrated", "side by side"):
        state.set_mode(mode)
        qtbot.wait(50)
    from PyQt6.QtCore import Qt

    for panel in window.view_grid.panels + window.view_grid.twins:  # as wide as the slot, or its title needs
        needed = panel.ci.effectiveSizeHint(Qt.SizeHint.MinimumSize).width()
        assert panel.ci.width() <= max(panel.width(), needed) + 1


def test_a_view_cut_from_a_padded_calibrated_frame_says_so_in_its_panel(tmp_path):
    """A video 8 pixels narrower than its calibration (a codec's padding) is used as the calibrated frame's top-left
    part: the panel's note says so, and says nothing for the views of the calibrated size."""
    import shutil

    from app.views.view_grid import evidence_note
    from core.dataset_io import read_sample
    from core.resources import SAMPLE_SCENE

    folder = tmp_path / "sample"
    shutil.copytree(SAMPLE_SCENE, folder)
    intri = folder / "intri.yml"
    intri.write_text(intri.read_text().replace("W_cam01: 512", "W_cam01: 520"))
    sample = read_sample(folder)
    assert evidence_note(sample, 0) == "image 512x512: top-left of the calibrated 520x512"
    assert "calibrated" not in evidence_note(sample, 1)

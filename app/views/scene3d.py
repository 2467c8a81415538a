"""The 3D scene (pyvistaqt): floor, camera frustums with their frames as image planes, the per-view meshes, joints
and skeletons of the current iteration (one colour per view, as the panel borders), the averaged mesh, the ground
truth; in "both" mode the uncalibrated meshes as wireframes over the calibrated ones.

Meshes are created once per trace and their points replaced in place when the iteration changes. The 3D view
is rendered off the slider's critical path: a step only marks it stale, and a zero-delay timer renders it after
the camera panels have painted, once for however many steps came meanwhile (the latest iteration). While steps
follow each other (dragging, keys held, playing fast) the body meshes are drawn at a level of detail made once
per mesh topology (`LevelOfDetail`); the full meshes come back when the steps stop.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyvista as pv
from pyvistaqt import QtInteractor
from PyQt6.QtCore import QTimer
from PyQt6.QtWidgets import QVBoxLayout, QWidget

from app.colors import FUSED_COLOR, TRUTH_COLOR, TRUTH_JOINT_COLOR, view_color
from app.state import AB_MODES, LoadedScene, StudioState
from core.cameras import frustum_corners
from core.joints import H36M17

FRUSTUM_DEPTH = 0.6  # metres from the camera centre to the drawn image plane
MESH_OPACITY, SELECTED_OPACITY, OTHER_OPACITY = 0.55, 0.95, 0.2
BACKGROUND, BACKGROUND_TOP = "#2b2d31", "#50545c"
# OpenGL renderers that run on the CPU (Mesa's llvmpipe under Xvfb or in VMs, SwiftShader, Windows' fallback).
SOFTWARE_RENDERERS = ("llvmpipe", "softpipe", "swrast", "software rasterizer", "swiftshader", "gdi generic",
                      "basic render")
DISTANCE = "A-B distance (mm)"  # the scalars colouring A's meshes in A/B modes
DISTANCE_CMAP = "magma"
LOD_REDUCTION = 0.9  # of the triangles, in the meshes drawn while the slider moves
SETTLE_S = 0.2  # steps closer than this count as one movement (drawn at the level of detail)
MOTION_FRAME_S = 1 / 20  # during a movement the 3D view renders at most this often, leaving time for the panels


def opengl_renderer(render_window) -> str:
    """The OpenGL renderer VTK reports for this window ('' while it has no context yet)."""
    for line in render_window.ReportCapabilities().splitlines():
        if line.lower().startswith("opengl renderer string"):
            return line.split(":", 1)[1].strip()
    return ""


def frustum_lines(center: np.ndarray, corners: np.ndarray) -> pv.PolyData:
    points = np.vstack([center, corners])
    lines = [[2, 0, 1], [2, 0, 2], [2, 0, 3], [2, 0, 4], [2, 1, 2], [2, 2, 3], [2, 3, 4], [2, 4, 1]]
    return pv.PolyData(points, lines=np.hstack(lines))


def image_plane(corners: np.ndarray) -> pv.PolyData:
    """A quad over the frustum's far corners with texture coordinates that put the image upright."""
    quad = pv.PolyData(corners, faces=np.array([4, 0, 1, 2, 3]))
    quad.active_texture_coordinates = np.array([[0, 1], [1, 1], [1, 0], [0, 0]], dtype=np.float32)
    return quad


def faces_for_pyvista(faces: np.ndarray) -> np.ndarray:
    return np.hstack([np.full((len(faces), 1), 3), faces]).astype(np.int64).ravel()


def skeleton(joints: np.ndarray, edges) -> pv.PolyData:
    """Joints as points, bones as line cells: one dataset feeds both the bone and the joint actor."""
    lines = np.hstack([np.full((len(edges), 1), 2), np.asarray(edges)]).astype(np.int64).ravel()
    return pv.PolyData(joints.astype(np.float32), lines=lines)


class LevelOfDetail:
    """A decimated copy of a mesh topology whose points are a subset of the full mesh's (VTK's DecimatePro moves
    no point), so that any pose of the full mesh gives the decimated one by indexing: made once, used for every
    view and iteration. About a tenth of the triangles: llvmpipe's cost per body mesh falls from about 3 ms."""

    def __init__(self, template: np.ndarray, faces: np.ndarray, reduction: float = LOD_REDUCTION):
        decimated = pv.PolyData(template.astype(np.float32), faces_for_pyvista(faces)).decimate_pro(
            reduction, preserve_topology=True)
        where = {point.tobytes(): i for i, point in enumerate(template.astype(np.float32))}
        self.index = np.array([where[point.tobytes()] for point in np.asarray(decimated.points, np.float32)])
        self.faces = np.asarray(decimated.faces)
        self.source_faces = faces

    def mesh(self, vertices: np.ndarray) -> pv.PolyData:
        return pv.PolyData(vertices[self.index].astype(np.float32), self.faces.copy())


@dataclass
class FollowingMesh:
    """A body mesh that follows the iteration, in full or at its level of detail (the actor's input swapped; the
    decimation, about 80 ms, is made when first needed, from ``level_of_detail``, shared by the meshes)."""

    full: pv.PolyData
    points_at: Callable[[int], np.ndarray]
    level_of_detail: Callable[[], LevelOfDetail]
    actor: object = None
    coarse: pv.PolyData | None = None
    lod: LevelOfDetail | None = None
    distance_at: Callable[[int], np.ndarray] | None = None  # per-vertex scalars that follow the iteration too

    def show(self, k: int, coarse: bool) -> None:
        points = self.points_at(k)
        if coarse and self.coarse is None:
            self.lod = self.level_of_detail()
            self.coarse = self.lod.mesh(points)
        dataset = self.coarse if coarse else self.full
        dataset.points[:] = points[self.lod.index] if coarse else points  # marks the array modified
        if self.distance_at is not None:
            distance = self.distance_at(k)
            dataset.point_data[DISTANCE] = distance[self.lod.index] if coarse else distance
        dataset.Modified()
        mapper = self.actor.GetMapper()
        if mapper.GetInput() is not dataset:
            mapper.SetInputData(dataset)


class Scene3D(QWidget):
    def __init__(self, state: StudioState):
        super().__init__()
        self.state = state
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        # No auto-update timer: it re-renders five times a second even when nothing changed; views render on change.
        self.plotter = QtInteractor(self, auto_update=False)
        self.plotter.set_background(BACKGROUND, top=BACKGROUND_TOP)
        layout.addWidget(self.plotter.interactor)
        self.truth_mesh: pv.PolyData | None = None
        self.truth_following: FollowingMesh | None = None  # the truth's mesh as drawn, full or coarse
        self.view_meshes: list[pv.PolyData] = []
        self.view_actors = []
        self.fused_mesh: pv.PolyData | None = None
        self.fused_actor = None
        self.truth_actors = []
        self.frustum_actors = []
        self.floor_centre = np.zeros(3)
        self.camera_actors_of_view: list[list] = []  # per view: its frustum and image plane
        self.skeletons: list[pv.PolyData] = []
        self.skeleton_actors_of_view: list[list] = []
        self.comparison_meshes: list[pv.PolyData] = []
        self.comparison_actors = []
        # What follows the iteration: each dataset's point array (fetched once: pyvista wraps it afresh at every
        # `.points`, about half of this update's time in a profile) and the trace's points at iteration k.
        self.moving: list[tuple[np.ndarray, pv.PolyData, Callable[[int], np.ndarray]]] = []
        self.meshes: list[FollowingMesh] = []  # the body meshes that follow it, at full or coarse detail
        self.lod: LevelOfDetail | None = None  # of the estimates' topology, kept while it stays the same
        self.shown_iteration: int | None = None  # what the 3D view's data shows, and at which detail
        self.shown_coarse = False
        self.last_step = -np.inf  # perf_counter() of the last slider step
        self.in_motion = False  # steps are following each other: the level of detail is drawn
        self.render_timer = QTimer(self, singleShot=True, interval=0)  # coalesces the steps' renders
        self.render_timer.timeout.connect(self.render_stale)
        self.settle_timer = QTimer(self, singleShot=True, interval=round(SETTLE_S * 1000))
        self.settle_timer.timeout.connect(self.settle)
        self.last_render = -np.inf  # perf_counter() after the last render of the iteration's data
        self.frames_rendered = 0  # renders of the iteration's data (for the benchmark's frame rate)
        self.joint_marks: pv.PolyData | None = None
        self.joint_mark_actor = None
        self.renderer_name = ""  # the OpenGL renderer, known once the window has shown a scene
        self.note = ""  # the corner text, when the estimates shown need one
        state.scene_changed.connect(self.show_scene)
        state.traces_changed.connect(self.show_trace)
        state.mode_changed.connect(lambda _m: self.show_trace())
        state.iteration_changed.connect(self.update_iteration)
        state.selected_view_changed.connect(self.highlight_view)
        state.selected_joint_changed.connect(lambda _j: self.update_joint_marks())
        state.layers_changed.connect(self.apply_layers)
        state.shown_views_changed.connect(self.apply_layers)

    @property
    def software_opengl(self) -> bool:
        return any(name in self.renderer_name.lower() for name in SOFTWARE_RENDERERS)

    def adapt_to_renderer(self) -> None:
        """With software OpenGL, render without multisampling, order-independent transparency and the gradient
        background: on the CPU they cost most of a frame (multisampling and OIT about 50 ms, the gradient about
        4 ms of 29 under Xvfb on 2 cores), on a GPU they are nearly free."""
        self.renderer_name = opengl_renderer(self.plotter.ren_win)
        if self.software_opengl:
            self.plotter.ren_win.SetMultiSamples(0)
            self.plotter.renderer.SetUseOIT(False)
            self.plotter.set_background(BACKGROUND)

    def add_mesh(self, dataset: pv.DataSet, **style):
        """An actor for ``dataset``, not rendered yet: pyvista renders (and resets the 3D camera) on every add
        otherwise, 14 renders (about 0.2 s) before the sample was shown; the scene sets its camera itself."""
        return self.plotter.add_mesh(dataset, reset_camera=False, render=False, **style)

    def show_scene(self, scene: LoadedScene) -> None:
        plotter = self.plotter
        if not self.renderer_name:
            self.adapt_to_renderer()
        plotter.clear()
        self.frustum_actors, self.truth_actors = [], []
        self.camera_actors_of_view = []
        self._forget_estimates()
        sample = scene.sample
        centre = scene.truth_vertices.mean(0) if scene.truth_vertices is not None else np.zeros(3)
        self.floor_centre = centre
        self.add_mesh(pv.Plane(center=(centre[0], centre[1], 0), direction=(0, 0, 1), i_size=8, j_size=8,
                                  i_resolution=16, j_resolution=16), style="wireframe", color="#777777",
                         name="floor")
        for index, camera in enumerate(sample.cameras):
            corners = frustum_corners(camera, FRUSTUM_DEPTH)
            actor = self.add_mesh(frustum_lines(camera.center, corners), color=view_color(index), line_width=2,
                                     name=f"frustum-{index}")
            self.frustum_actors.append(actor)
            self.camera_actors_of_view.append([actor])
            frame = sample.frames[index]
            if frame is not None:
                self.camera_actors_of_view[-1].append(self.add_mesh(
                    image_plane(corners), texture=pv.numpy_to_texture(frame), name=f"image-{index}"))
        self.truth_mesh, self.truth_following = None, None
        if scene.truth_vertices is not None:
            self.truth_mesh = pv.PolyData(scene.truth_vertices.astype(np.float32), faces_for_pyvista(scene.faces))
            actor = self.add_mesh(self.truth_mesh, color=TRUTH_COLOR, smooth_shading=True, opacity=0.5,
                                     culling="back", name="truth")
            self.truth_actors.append(actor)
            # drawn at the level of detail during a movement too (with its normals: the mapper's own input)
            vertices, faces = scene.truth_vertices, scene.faces
            self.truth_following = FollowingMesh(pv.wrap(actor.GetMapper().GetInput()), lambda _k: vertices,
                                                 lambda: self.level_of_detail(vertices, faces), actor)
        gt = sample.ground_truth
        known = gt.known_joints if gt is not None else np.zeros(0, bool)
        if known.any():
            self.truth_actors.append(self.add_mesh(pv.PolyData(gt.joints3d[known].astype(np.float32)), style="points",
                                                   color=TRUTH_JOINT_COLOR, point_size=10,
                                                   render_points_as_spheres=True, name="truth-joints"))
        self.reset_view()
        self.apply_layers()

    def _forget_estimates(self) -> None:
        self.view_meshes, self.view_actors, self.fused_mesh, self.fused_actor = [], [], None, None
        self.skeletons, self.skeleton_actors_of_view = [], []
        self.comparison_meshes, self.comparison_actors = [], []
        self.joint_marks, self.joint_mark_actor = None, None
        self.moving, self.meshes = [], []
        self.shown_iteration = None

    def show_trace(self) -> None:
        """(Re)create the estimate meshes and skeletons for the current mode's trace (and the comparison's)."""
        old = self.view_actors + self.comparison_actors + [a for actors in self.skeleton_actors_of_view
                                                           for a in actors]
        for actor in old + [a for a in (self.fused_actor, self.joint_mark_actor) if a is not None]:
            self.plotter.remove_actor(actor, render=False)
        self._forget_estimates()
        trace, comparison = self.state.trace, self.state.comparison
        k = self.state.iteration
        at = self.state.iteration_of
        distances = self.distances(trace, comparison)
        if trace is not None:
            edges = H36M17.edges  # the estimate's joints, whatever joint set the evidence came in
            for v in range(trace.num_views):
                mesh = self.follow_mesh(trace, lambda i, v=v: trace.vertices[min(i, trace.iterations), v])
                self.view_meshes.append(mesh.full)
                # Flat shading: smooth shading recomputes normals through a filter each time the points move.
                # Back faces culled: a body is closed, so only the translucent mesh's far side goes (it muddied
                # the colours), and a frame under software OpenGL takes about a quarter less.
                if distances is None:
                    style = dict(color=view_color(v))
                else:
                    mesh.distance_at = lambda i, v=v: distances[min(i, len(distances) - 1), v]
                    mesh.full.point_data[DISTANCE] = mesh.distance_at(k)
                    style = dict(scalars=DISTANCE, cmap=DISTANCE_CMAP, clim=self.distance_range(distances),
                                 scalar_bar_args=dict(title=DISTANCE, color="#e8eaed", n_labels=3, fmt="%.0f"))
                mesh.actor = self.add_mesh(mesh.full, opacity=MESH_OPACITY, culling="back", name=f"estimate-{v}",
                                           **style)
                self.view_actors.append(mesh.actor)
                bones = skeleton(trace.joints3d[at(trace), v], edges)
                self.skeletons.append(bones)
                self.follow(bones, lambda i, v=v: trace.joints3d[min(i, trace.iterations), v])
                self.skeleton_actors_of_view.append([
                    self.add_mesh(bones, color=view_color(v), line_width=3, name=f"bones-{v}"),
                    self.add_mesh(bones, color=view_color(v), style="points", point_size=9,
                                          render_points_as_spheres=True, name=f"joints-{v}")])
            fused = self.follow_mesh(trace, lambda i: trace.fused_vertices[min(i, trace.iterations)])
            self.fused_mesh = fused.full
            self.fused_actor = fused.actor = self.add_mesh(fused.full, color=FUSED_COLOR, culling="back",
                                                                   name="fused")
            self.joint_marks = pv.PolyData(trace.joints3d[at(trace), :, 0].copy())
            self.joint_mark_actor = self.add_mesh(self.joint_marks, color="#ffffff", style="points",
                                                          point_size=18, render_points_as_spheres=True,
                                                          name="selected-joint")
        if comparison is not None:
            for v in range(comparison.num_views):
                last = comparison.iterations
                mesh = self.follow_mesh(comparison, lambda i, v=v: comparison.vertices[min(i, last), v])
                self.comparison_meshes.append(mesh.full)
                mesh.actor = self.add_mesh(mesh.full, color=view_color(v), style="wireframe", opacity=0.35,
                                                   name=f"comparison-{v}")
                self.comparison_actors.append(mesh.actor)
        self.shown_iteration, self.shown_coarse = k, False
        self.show_note(trace, comparison)
        self.update_joint_marks(render=False)
        self.highlight_view(self.state.selected_view)
        self.apply_layers()

    def distances(self, trace, comparison) -> np.ndarray | None:
        """In A/B modes, (I, V, N) the distance in mm from each vertex of A's mesh to the same vertex of B's, at
        each iteration A shows (B at its last when it has fewer); else None."""
        if self.state.mode not in AB_MODES or trace is None or comparison is None \
                or comparison.vertices.shape[1:] != trace.vertices.shape[1:]:
            return None
        steps = np.arange(self.state.max_iteration + 1)
        a = trace.vertices[np.minimum(steps, trace.iterations)]
        b = comparison.vertices[np.minimum(steps, comparison.iterations)]
        return (np.linalg.norm(a - b, axis=-1) * 1000).astype(np.float32)

    @staticmethod
    def distance_range(distances: np.ndarray) -> tuple[float, float]:
        """One colour scale for every iteration: 0 to the 99th percentile of the final meshes' distances."""
        return 0.0, max(float(np.percentile(distances[-1], 99)), 1.0)

    def show_note(self, trace, comparison) -> None:
        """Say, in the view's corner, how uncalibrated estimates are placed: nothing put them in the world; in A/B
        modes, what the wireframes and colours are."""
        if self.state.mode in AB_MODES and comparison is not None:
            placed = "; views aligned rigidly to view 1" if trace.mode == "uncalibrated" else ""
            self.note = f"A: coloured by the distance to B; B (wireframes): {self.state.ab_label}{placed}"
        elif comparison is not None:
            self.note = "uncalibrated (wireframes): views aligned rigidly to view 1, seen through camera 1"
        elif trace is not None and trace.mode == "uncalibrated":
            self.note = "uncalibrated: views aligned rigidly to view 1, seen through camera 1"
        else:
            self.note = ""
        self.plotter.remove_actor("note", render=False)
        if self.note:
            self.plotter.add_text(self.note, position="upper_left", font_size=9, color="#e8eaed", name="note")

    def follow(self, dataset: pv.PolyData, points_at: Callable[[int], np.ndarray]) -> None:
        """Move ``dataset``'s points to ``points_at(k)`` whenever the iteration becomes k."""
        self.moving.append((dataset.points, dataset, points_at))

    def follow_mesh(self, trace, points_at: Callable[[int], np.ndarray]) -> FollowingMesh:
        """A body mesh of ``trace``'s topology at the current iteration, following it (its actor set by the
        caller)."""
        vertices = points_at(self.state.iteration)
        mesh = FollowingMesh(pv.PolyData(vertices.astype(np.float32), faces_for_pyvista(trace.faces)), points_at,
                             lambda: self.level_of_detail(trace.vertices[0, 0], trace.faces))
        self.meshes.append(mesh)
        return mesh

    def level_of_detail(self, template: np.ndarray, faces: np.ndarray) -> LevelOfDetail:
        """The decimation of this mesh topology: made for the first mesh of a topology and kept."""
        if self.lod is None or not np.array_equal(self.lod.source_faces, faces):
            self.lod = LevelOfDetail(template, faces)
        return self.lod

    def update_iteration(self, *_args) -> None:
        """A slider step: the 3D view is only marked stale here, and rendered once the panels have painted."""
        now = time.perf_counter()
        self.in_motion = now - self.last_step < SETTLE_S
        self.last_step = now
        if not self.render_timer.isActive():
            self.render_timer.start(0)
        self.settle_timer.start()

    def render_stale(self) -> None:
        """Bring the 3D view to the state's iteration (coarse while the steps go on) and render it now; during a
        movement not sooner than `MOTION_FRAME_S` after the last render (the panels paint meanwhile: a 3D view
        lagging one frame behind them, instead of every panel frame waiting for a 3D one)."""
        if self.plotter.ren_win is None:  # closed with the window
            return
        wait = self.last_render + MOTION_FRAME_S - time.perf_counter()
        if self.in_motion and wait > 0:
            self.render_timer.start(max(1, round(wait * 1000)))
            return
        if self.show_iteration(self.state.iteration, coarse=self.in_motion):
            self.plotter.ren_win.Render()
            self.last_render = time.perf_counter()
            self.frames_rendered += 1

    def show_iteration(self, k: int, coarse: bool) -> bool:
        """Put iteration ``k``'s points into the 3D view's data; whether anything changed."""
        if (k, coarse) == (self.shown_iteration, self.shown_coarse) or not (self.moving or self.meshes):
            return False
        for mesh in self.meshes + ([self.truth_following] if self.truth_following else []):
            mesh.show(k, coarse)
        for points, dataset, points_at in self.moving:
            points[:] = points_at(k)  # pyvista marks the array modified, so VTK uploads it again
            dataset.Modified()
        self.shown_iteration, self.shown_coarse = k, coarse
        self.update_joint_marks(render=False)
        return True

    def settle(self) -> None:
        """The steps stopped (or a picture is about to be taken): the full meshes of the current iteration."""
        self.render_timer.stop()
        self.settle_timer.stop()
        self.in_motion = False
        self.render_stale()

    def update_joint_marks(self, render: bool = True) -> None:
        """The selected joint of every view's estimate, as large white points (hidden when none is selected)."""
        trace, joint = self.state.trace, self.state.selected_joint
        if self.joint_marks is None:
            return
        if joint >= 0:
            self.joint_marks.points[:] = trace.joints3d[self.state.iteration_of(trace), :, joint]
            self.joint_marks.Modified()
        self.joint_mark_actor.SetVisibility(joint >= 0 and self.state.layers["estimate joints"])
        if render:
            self.plotter.update()  # one render, at Qt's next paint

    def reset_view(self) -> None:
        """An oblique view filled by the cameras and the person (the floor may run off the edges)."""
        self.plotter.camera_position = "iso"
        scene = self.state.scene
        if scene is None:
            self.plotter.reset_camera()
        else:
            points = np.array([c.center for c in scene.sample.cameras] + [[*self.floor_centre[:2], 0.0],
                                                                          [*self.floor_centre[:2], 1.8]])
            low, high = points.min(0) - 0.3, points.max(0) + 0.3
            self.plotter.reset_camera(bounds=[low[0], high[0], low[1], high[1], low[2], high[2]])
            self.fill_view(points)
        self.plotter.update()

    def view_coordinates(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) world points -> (N, 2) normalised view coordinates, -1..1 across the 3D view."""
        renderer = self.plotter.renderer
        out = []
        for point in points:
            renderer.SetWorldPoint(*point, 1.0)
            renderer.WorldToView()
            out.append(renderer.GetViewPoint()[:2])
        return np.array(out)

    def fill_view(self, points: np.ndarray, fill: float = 0.8) -> None:
        """Centre ``points`` in the view and move the 3D camera along its axis until they span ``fill`` of it:
        VTK's own reset frames a bounding sphere, which leaves a ring of cameras small and off-centre."""
        camera = self.plotter.camera
        width, height = self.plotter.renderer.GetSize()
        if width < 2 or height < 2:
            return
        for _ in range(4):  # perspective: points at other depths than the focal plane's need a few rounds
            view = self.view_coordinates(points)
            centre, half = (view.min(0) + view.max(0)) / 2, (view.max(0) - view.min(0)) / 2
            direction = np.subtract(camera.GetFocalPoint(), camera.GetPosition())
            up = np.asarray(camera.GetViewUp())
            right = np.cross(direction, up)
            right /= np.linalg.norm(right)
            up = np.cross(right, direction / np.linalg.norm(direction))
            half_height = camera.GetDistance() * np.tan(np.radians(camera.GetViewAngle()) / 2)
            shift = right * centre[0] * half_height * width / height + up * centre[1] * half_height
            camera.SetFocalPoint(*(np.asarray(camera.GetFocalPoint()) + shift))
            camera.SetPosition(*(np.asarray(camera.GetPosition()) + shift))
            camera.Dolly(fill / max(half.max(), 1e-3))
        self.plotter.renderer.ResetCameraClippingRange()

    def look_through(self, index: int) -> None:
        """Put the 3D camera at camera ``index``'s pose with its vertical field of view (distortion ignored)."""
        camera = self.state.scene.sample.cameras[index]
        view = self.plotter.camera
        view.position = tuple(camera.center)
        view.focal_point = tuple(camera.center + camera.R[2])  # along the optical axis
        view.up = tuple(-camera.R[1])  # image y points down
        view.view_angle = float(np.degrees(2 * np.arctan(camera.height / 2 / camera.K[1, 1])))
        self.plotter.update()

    def highlight_view(self, index: int) -> None:
        for i, actor in enumerate(self.frustum_actors):
            actor.GetProperty().SetLineWidth(6 if i == index else 2)
        for i, actor in enumerate(self.view_actors):
            actor.GetProperty().SetOpacity(MESH_OPACITY if index < 0 else SELECTED_OPACITY if i == index
                                           else OTHER_OPACITY)
        self.plotter.update()  # one render, at Qt's next paint

    def apply_layers(self) -> None:
        layers, shown = self.state.layers, self.state.view_shown
        for v, actor in enumerate(self.view_actors):
            actor.SetVisibility(layers["per-view meshes"] and shown(v))
        for v, actor in enumerate(self.comparison_actors):
            actor.SetVisibility(layers["per-view meshes"] and shown(v))
        for v, actors in enumerate(self.skeleton_actors_of_view):
            for actor in actors:
                actor.SetVisibility(layers["estimate joints"] and shown(v))
        if self.fused_actor is not None:
            self.fused_actor.SetVisibility(layers["fused mesh"])
        for actor in self.truth_actors:
            actor.SetVisibility(layers["ground truth"])
        for v, actors in enumerate(self.camera_actors_of_view):
            for actor in actors:
                actor.SetVisibility(layers["cameras"] and shown(v))
        self.update_joint_marks()

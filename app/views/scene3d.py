"""The 3D scene (pyvistaqt): floor, camera frustums with their frames as image planes, the per-view meshes of the
current iteration (one colour per view, as the panel borders), the averaged mesh and the ground truth.

Meshes are created once per trace and their points replaced in place when the iteration changes.
"""
from __future__ import annotations

import numpy as np
import pyvista as pv
from pyvistaqt import QtInteractor
from PyQt6.QtWidgets import QVBoxLayout, QWidget

from app.colors import FUSED_COLOR, TRUTH_COLOR, view_color
from app.state import LoadedScene, StudioState
from core.cameras import frustum_corners

FRUSTUM_DEPTH = 0.6  # metres from the camera centre to the drawn image plane
MESH_OPACITY, SELECTED_OPACITY, OTHER_OPACITY = 0.55, 0.95, 0.2


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


class Scene3D(QWidget):
    def __init__(self, state: StudioState):
        super().__init__()
        self.state = state
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        # No auto-update timer: it re-renders five times a second even when nothing changed; views render on change.
        self.plotter = QtInteractor(self, auto_update=False)
        self.plotter.set_background("#2b2d31", top="#50545c")
        layout.addWidget(self.plotter.interactor)
        self.truth_mesh: pv.PolyData | None = None
        self.view_meshes: list[pv.PolyData] = []
        self.view_actors = []
        self.fused_mesh: pv.PolyData | None = None
        self.fused_actor = None
        self.truth_actors = []
        self.camera_actors = []
        self.frustum_actors = []
        state.scene_changed.connect(self.show_scene)
        state.traces_changed.connect(self.show_trace)
        state.mode_changed.connect(lambda _m: self.show_trace())
        state.iteration_changed.connect(self.update_iteration)
        state.selected_view_changed.connect(self.highlight_view)
        state.layers_changed.connect(self.apply_layers)

    def show_scene(self, scene: LoadedScene) -> None:
        plotter = self.plotter
        plotter.clear()
        self.frustum_actors, self.camera_actors, self.truth_actors = [], [], []
        self.view_meshes, self.view_actors, self.fused_mesh, self.fused_actor = [], [], None, None
        sample = scene.sample
        centre = scene.truth_vertices.mean(0) if scene.truth_vertices is not None else np.zeros(3)
        plotter.add_mesh(pv.Plane(center=(centre[0], centre[1], 0), direction=(0, 0, 1), i_size=8, j_size=8,
                                  i_resolution=16, j_resolution=16), style="wireframe", color="#777777",
                         name="floor")
        for index, camera in enumerate(sample.cameras):
            corners = frustum_corners(camera, FRUSTUM_DEPTH)
            actor = plotter.add_mesh(frustum_lines(camera.center, corners), color=view_color(index), line_width=2,
                                     name=f"frustum-{index}")
            self.frustum_actors.append(actor)
            self.camera_actors.append(actor)
            frame = sample.frames[index]
            if frame is not None:
                self.camera_actors.append(plotter.add_mesh(image_plane(corners), texture=pv.numpy_to_texture(frame),
                                                           name=f"image-{index}"))
        self.truth_mesh = None
        if scene.truth_vertices is not None:
            self.truth_mesh = pv.PolyData(scene.truth_vertices.astype(np.float32), faces_for_pyvista(scene.faces))
            self.truth_actors.append(plotter.add_mesh(self.truth_mesh, color=TRUTH_COLOR, smooth_shading=True,
                                                      opacity=0.5, name="truth"))
        gt = sample.ground_truth
        if gt is not None and gt.joints3d is not None:
            self.truth_actors.append(plotter.add_points(gt.joints3d.astype(np.float32), color="#ffd400",
                                                        point_size=10, render_points_as_spheres=True,
                                                        name="truth-joints"))
        self.reset_view()
        self.apply_layers()

    def show_trace(self) -> None:
        """(Re)create the estimate meshes for the current mode's trace."""
        for actor in self.view_actors + ([self.fused_actor] if self.fused_actor else []):
            self.plotter.remove_actor(actor, render=False)
        self.view_meshes, self.view_actors, self.fused_mesh, self.fused_actor = [], [], None, None
        trace = self.state.trace
        if trace is not None:
            faces = faces_for_pyvista(trace.faces)
            k = self.state.iteration
            for v in range(trace.num_views):
                mesh = pv.PolyData(trace.vertices[k, v].copy(), faces)
                self.view_meshes.append(mesh)
                # Flat shading: smooth shading recomputes normals through a filter each time the points move.
                self.view_actors.append(self.plotter.add_mesh(mesh, color=view_color(v), opacity=MESH_OPACITY,
                                                              name=f"estimate-{v}"))
            self.fused_mesh = pv.PolyData(trace.fused_vertices[k].copy(), faces)
            self.fused_actor = self.plotter.add_mesh(self.fused_mesh, color=FUSED_COLOR, name="fused")
        self.highlight_view(self.state.selected_view)
        self.apply_layers()

    def update_iteration(self, *_args) -> None:
        trace = self.state.trace
        if trace is None or not self.view_meshes:
            return
        k = self.state.iteration
        for v, mesh in enumerate(self.view_meshes):
            mesh.points[:] = trace.vertices[k, v]
            mesh.Modified()
        self.fused_mesh.points[:] = trace.fused_vertices[k]
        self.fused_mesh.Modified()
        self.plotter.update()  # one render, at Qt's next paint

    def reset_view(self) -> None:
        self.plotter.camera_position = "iso"
        self.plotter.reset_camera()
        self.plotter.update()

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
        layers = self.state.layers
        for actor in self.view_actors:
            actor.SetVisibility(layers["per-view meshes"])
        if self.fused_actor is not None:
            self.fused_actor.SetVisibility(layers["fused mesh"])
        for actor in self.truth_actors:
            actor.SetVisibility(layers["ground truth"])
        for actor in self.camera_actors:
            actor.SetVisibility(layers["cameras"])
        self.plotter.update()  # one render, at Qt's next paint

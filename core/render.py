"""A small software renderer for synthetic frames: flat-shaded triangles drawn far-to-near (painter's
algorithm) with OpenCV, over a sky gradient and a checkered floor (world z = 0, z up).

It is deliberately simple: good enough to give the image encoder something to look at and a person something
to recognise, with no GPU and no OpenGL (core/ stays free of VTK).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from core.cameras import Camera, project_points

SUBPIXEL_BITS = 4  # cv2 fill with fixed-point vertices, for smooth edges
NEAR = 0.05


@dataclass
class Mesh:
    """Triangles with one RGB colour per face (uint8)."""

    vertices: np.ndarray  # (N, 3) world
    faces: np.ndarray  # (F, 3)
    face_colors: np.ndarray  # (F, 3)


def clustered(template: np.ndarray, faces: np.ndarray, cell: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A coarse version of a mesh topology by vertex clustering on a grid of ``cell`` metres over ``template``
    (N, 3): every vertex is replaced by the first vertex of its cell, and faces that collapse are dropped. Returns
    (the vertices kept, as indices into the full mesh; the kept faces over them; the indices of the faces kept),
    so that any pose of the full mesh gives the coarse one by indexing. The renderer's cost is per face, not per
    pixel (a 4-view training sample: about 75 ms at 256x256 and at 64x64 alike), so fewer faces are what makes
    synthetic frames cheap."""
    cells = np.floor(template / cell).astype(np.int64)
    _, first, representative = np.unique(cells, axis=0, return_index=True, return_inverse=True)
    mapped = first[representative.ravel()][faces]  # each corner's representative vertex
    distinct = (mapped[:, 0] != mapped[:, 1]) & (mapped[:, 1] != mapped[:, 2]) & (mapped[:, 0] != mapped[:, 2])
    kept_faces = np.flatnonzero(distinct)
    kept_vertices, compact = np.unique(mapped[kept_faces], return_inverse=True)
    return kept_vertices, compact.reshape(-1, 3), kept_faces


def box_mesh(center: np.ndarray, size: np.ndarray, color=(150, 150, 160)) -> Mesh:
    """An axis-aligned box as 12 outward-facing triangles."""
    corners = np.array([[x, y, z] for x in (-0.5, 0.5) for y in (-0.5, 0.5) for z in (-0.5, 0.5)])
    vertices = np.asarray(center) + corners * np.asarray(size)
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    faces = np.array([tri for a, b, c, d in quads for tri in ((a, b, c), (a, c, d))])
    return Mesh(vertices, faces, np.tile(np.asarray(color, np.uint8), (len(faces), 1)))


def background(camera: Camera, tile: float = 0.25, extent: float = 6.0) -> np.ndarray:
    """Sky gradient plus a checkered floor, so that the ground plane proves the calibration at a glance."""
    h, w = camera.height, camera.width
    ramp = np.linspace(0.0, 1.0, h)[:, None, None]
    image = ((1 - ramp) * np.array([205, 215, 230]) + ramp * np.array([150, 160, 175])).astype(np.uint8)
    image = np.ascontiguousarray(np.broadcast_to(image, (h, w, 3)))
    edges = np.arange(-extent, extent, tile)
    x0, y0 = (a.ravel() for a in np.meshgrid(edges, edges, indexing="ij"))
    parity = (np.round((x0 + extent) / tile) + np.round((y0 + extent) / tile)).astype(int) % 2
    corners = np.stack([np.stack([x0, y0], 1), np.stack([x0 + tile, y0], 1), np.stack([x0 + tile, y0 + tile], 1),
                        np.stack([x0, y0 + tile], 1)], axis=1)  # (T, 4, 2)
    quads = np.concatenate([corners, np.zeros(corners.shape[:2] + (1,))], axis=2)
    cam = camera.to_camera(quads)
    # Tiles far outside the field of view are skipped: the distortion polynomial explodes there.
    max_tangent = 1.5 * np.hypot(w, h) / 2 / min(camera.K[0, 0], camera.K[1, 1])
    keep = np.all(cam[..., 2] >= NEAR, axis=1) & np.all(np.hypot(cam[..., 0], cam[..., 1]) <= max_tangent * cam[..., 2],
                                                        axis=1)
    uv, _ = project_points(quads[keep], camera)
    polygons = np.round(uv * (1 << SUBPIXEL_BITS)).astype(np.int32)
    for which, color in ((1, (120, 118, 110)), (0, (95, 92, 88))):  # tiles never overlap: one call per colour
        cv2.fillPoly(image, list(polygons[parity[keep] == which]), color, lineType=cv2.LINE_AA, shift=SUBPIXEL_BITS)
    return image


def render(meshes: list[Mesh], camera: Camera, image: np.ndarray | None = None,
           depth_layers: int | None = None) -> np.ndarray:
    """Draw ``meshes`` into a copy of ``image`` (default: `background`) as seen by ``camera``.

    ``depth_layers``: None draws every triangle in exact far-to-near order; a number N draws N depth slabs far to
    near, each in one OpenCV call per shade (about 30 times faster, with small errors where surfaces within one
    slab overlap) — used for training frames."""
    image = background(camera) if image is None else image.copy()
    all_uv, all_cam, all_tris, all_colors = [], [], [], []
    offset = 0
    for mesh in meshes:
        uv, _ = project_points(mesh.vertices, camera)
        all_uv.append(uv)
        all_cam.append(camera.to_camera(mesh.vertices))
        all_tris.append(mesh.faces + offset)
        all_colors.append(mesh.face_colors)
        offset += len(mesh.vertices)
    uv, cam = np.concatenate(all_uv), np.concatenate(all_cam)
    tris, colors = np.concatenate(all_tris), np.concatenate(all_colors).astype(np.float64)

    corners = cam[tris]  # (F, 3, 3) camera-frame corners
    normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    normals /= np.linalg.norm(normals, axis=1, keepdims=True).clip(1e-12)
    centres = corners.mean(1)
    facing = np.einsum("fc,fc->f", normals, centres) < 0  # front faces point towards the camera
    in_front = corners[:, :, 2].min(1) > NEAR
    keep = np.flatnonzero(facing & in_front)
    # Headlight Lambert shading plus ambient.
    view_dirs = -centres[keep] / np.linalg.norm(centres[keep], axis=1, keepdims=True)
    shade = 0.35 + 0.65 * np.clip(np.einsum("fc,fc->f", normals[keep], view_dirs), 0, 1)
    shaded = np.clip(colors[keep] * shade[:, None], 0, 255).astype(np.uint8)
    order = np.argsort(-centres[keep, 2])
    pts = np.round(uv[tris[keep]] * (1 << SUBPIXEL_BITS)).astype(np.int32)
    if depth_layers is None:
        for k in order:
            cv2.fillConvexPoly(image, pts[k], shaded[k].tolist(), lineType=cv2.LINE_8, shift=SUBPIXEL_BITS)
        return image
    depth = centres[keep, 2]
    slab = np.minimum(((depth.max() - depth) / max(np.ptp(depth), 1e-6) * depth_layers).astype(int), depth_layers - 1)
    quantised = (shaded.astype(np.int64) // 16) * 16 + 8
    keys = (quantised[:, 0] << 16) | (quantised[:, 1] << 8) | quantised[:, 2]
    for layer in range(depth_layers):  # far to near
        in_layer = np.flatnonzero(slab == layer)
        for key in np.unique(keys[in_layer]):
            chosen = in_layer[keys[in_layer] == key]
            cv2.fillPoly(image, list(pts[chosen]), [int(key >> 16), int(key >> 8 & 255), int(key & 255)],
                         lineType=cv2.LINE_8, shift=SUBPIXEL_BITS)
    return image



def splat_silhouette(points: np.ndarray) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """A mesh's silhouette from its projected vertices (N, 2): the vertices binned on a grid as fine as their
    density allows, then closed morphologically. About 1 ms, where filling the mesh's triangles costs 20 ms or
    more; good for an overlay that follows a slider. Returns the mask and its rectangle (x0, y0, w, h) in pixels."""
    points = points[np.isfinite(points).all(1)]
    if len(points) == 0:
        return np.zeros((1, 1), bool), (0.0, 0.0, 1.0, 1.0)
    low, high = points.min(0), points.max(0)
    width, height = np.maximum(high - low, 1.0)
    cell = max(1.0, float(np.sqrt(width * height / len(points))))  # about one vertex per cell inside the body
    cols, rows = int(np.ceil(width / cell)) + 3, int(np.ceil(height / cell)) + 3
    origin = low - cell  # one empty cell of margin on every side, so closing cannot reach the border
    index = np.floor((points - origin) / cell).astype(np.int64)
    mask = np.zeros((rows, cols), np.uint8)
    mask[index[:, 1], index[:, 0]] = 1
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))
    return mask.astype(bool), (float(origin[0]), float(origin[1]), cols * cell, rows * cell)

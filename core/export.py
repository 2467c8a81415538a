"""Exports from a refinement trace, all written atomically: meshes (OBJ, PLY, GLB via trimesh) of any iteration and
view or of the averaged estimate, and SMPL parameters (npz, json) in smplx naming."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from core.files import atomic_path, safe_filename, write_text
from core.trace import RefinementTrace

MESH_FORMATS = ("obj", "ply", "glb")


def mesh_name(trace: RefinementTrace, iteration: int, view: int | None, fmt: str) -> str:
    who = "averaged" if view is None else trace.view_names[view]
    return safe_filename(f"{trace.mode}_iter{iteration}_{who}.{fmt}")


def export_meshes(trace: RefinementTrace, iteration: int, folder: str | Path, views: list[int] | None = None,
                  averaged: bool = True, fmt: str = "obj") -> list[Path]:
    """One file per chosen view (default: all) and, if ``averaged``, the averaged estimate; world coordinates."""
    if fmt not in MESH_FORMATS:
        raise ValueError(f"unknown mesh format {fmt!r}; expected one of {MESH_FORMATS}")
    if not 0 <= iteration <= trace.iterations:
        raise ValueError(f"iteration {iteration} is outside 0..{trace.iterations}")
    folder = Path(folder)
    chosen = list(range(trace.num_views)) if views is None else views
    items = [(v, trace.vertices[iteration, v]) for v in chosen]
    if averaged:
        items.append((None, trace.fused_vertices[iteration]))
    import trimesh  # here: its import is a twentieth of the window's start-up, and only exports need it

    written = []
    for view, vertices in items:
        mesh = trimesh.Trimesh(vertices=vertices, faces=trace.faces, process=False)
        path = folder / mesh_name(trace, iteration, view, fmt)
        with atomic_path(path) as tmp:
            mesh.export(tmp, file_type=fmt)
        written.append(path)
    return written


def parameters(trace: RefinementTrace, iteration: int) -> dict[str, np.ndarray]:
    """Per-view SMPL parameters of one iteration, each in its own camera's frame (smplx naming)."""
    return {"view_names": np.array(trace.view_names), "global_orient": trace.global_orient[iteration],
            "body_pose": trace.body_pose[iteration], "betas": trace.betas[iteration],
            "joints3d_world": trace.joints3d[iteration]}


def export_parameters(trace: RefinementTrace, iteration: int, path: str | Path) -> Path:
    """``.npz`` or ``.json``, chosen by the suffix."""
    path = Path(path)
    params = parameters(trace, iteration)
    meta = {"mode": trace.mode, "iteration": iteration, "frame": "global_orient in each camera's frame "
            "(x right, y down, z forward); joints3d_world in world coordinates, metres",
            "checkpoint": trace.info.get("checkpoint", ""), "body_model": trace.info.get("body_model", "")}
    if path.suffix == ".json":
        write_text(path, json.dumps({**meta, **{k: v.tolist() for k, v in params.items()}}, indent=1))
    elif path.suffix == ".npz":
        with atomic_path(path) as tmp:
            np.savez(tmp, meta=np.array(json.dumps(meta)), **params)
    else:
        raise ValueError(f"{path}: parameters are written as .npz or .json")
    return path

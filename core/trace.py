"""`RefinementTrace`: everything the views need to show iteration k, as plain arrays, saved as a versioned .npz.

A trace opens without the network (made on a GPU machine, inspected on a laptop). Shapes use I = iterations + 1
(index 0 is the initial estimate), V views, J = 17 H36M joints, N mesh vertices.
"""
from __future__ import annotations

import json
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path

import numpy as np

from core.errors import InputError
from core.files import atomic_path, check_version

FORMAT_TAG = "heatformer-trace"
VERSION = 1


def is_trace_file(path: str | Path) -> bool:
    """Whether ``path`` is a HeatFormer trace (an .npz with our header), without reading its arrays."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            return "header" in archive.files and json.loads(str(archive["header"])).get("format") == FORMAT_TAG
    except Exception:
        return False


@dataclass
class RefinementTrace:
    mode: str  # "calibrated" or "uncalibrated"
    view_names: list[str]
    # per-view SMPL parameters, in each camera's orientation (axis-angle)
    global_orient: np.ndarray  # (I, V, 3)
    body_pose: np.ndarray  # (I, V, 69)
    betas: np.ndarray  # (I, V, 10)
    vertices: np.ndarray  # (I, V, N, 3) world, metres (uncalibrated: aligned for display, see `placement`)
    joints3d: np.ndarray  # (I, V, J, 3) world, metres
    display_rotation: np.ndarray  # (I, V, 3, 3) camera axes -> world axes used to place each estimate
    joints2d: np.ndarray  # (I, V, J, 2) each view's estimate in its own image, pixels
    heatmaps: np.ndarray  # (I, V, J, h, w) rendered from each estimate, in the view's crop
    input_heatmaps: np.ndarray  # (V, J, h, w)
    input_keypoints: np.ndarray  # (V, J, 3) the 2D evidence the heatmaps were rendered from (fused if calibrated)
    crop_boxes: np.ndarray  # (V, 4) image pixels: x0, y0, width, height
    fused_vertices: np.ndarray  # (I, N, 3) world: pose and shape averaged over views
    fused_joints3d: np.ndarray  # (I, J, 3)
    faces: np.ndarray  # (F, 3)
    vertices2d: np.ndarray | None = None  # (I, V, N, 2) each view's mesh in its own image, pixels (absent in
    # traces written before it existed)
    metrics: dict[str, np.ndarray] = field(default_factory=dict)  # name -> (I,) or (I, V)
    timings: dict[str, float] = field(default_factory=dict)  # stage -> seconds
    info: dict = field(default_factory=dict)  # device, checkpoint, body model, trained, placement, sample, ...

    @property
    def iterations(self) -> int:
        return self.global_orient.shape[0] - 1

    @property
    def num_views(self) -> int:
        return len(self.view_names)

    def save(self, path: str | Path) -> None:
        arrays = {f.name: getattr(self, f.name) for f in fields(self) if isinstance(getattr(self, f.name), np.ndarray)}
        arrays["heatmaps"] = self.heatmaps.astype(np.float16)
        arrays["input_heatmaps"] = self.input_heatmaps.astype(np.float16)
        arrays.update({f"metric.{k}": v for k, v in self.metrics.items()})
        header = {"format": FORMAT_TAG, "version": VERSION, "mode": self.mode, "view_names": self.view_names,
                  "timings": self.timings, "info": self.info}
        with atomic_path(path) as tmp:
            np.savez_compressed(tmp, header=np.array(json.dumps(header)), **arrays)

    @classmethod
    def load(cls, path: str | Path) -> "RefinementTrace":
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as archive:
                data = {k: archive[k] for k in archive.files}
        except Exception as exc:
            raise InputError(path, f"cannot read trace ({type(exc).__name__}: {exc})") from exc
        if "header" not in data:
            raise InputError(path, "not a HeatFormer trace (no header)")
        header = _header(path, data.pop("header"))
        metrics = {k[len("metric."):]: data.pop(k) for k in list(data) if k.startswith("metric.")}
        names = {f.name for f in fields(cls)}
        optional = {f.name for f in fields(cls) if f.default is not MISSING or f.default_factory is not MISSING}
        missing = names - set(data) - optional - {"mode", "view_names"}
        if missing:
            raise InputError(path, f"trace lacks {', '.join(sorted(missing))}")
        arrays = {k: v.astype(np.float32) if v.dtype == np.float16 else v for k, v in data.items() if k in names}
        _check_arrays(path, arrays, metrics, len(header["view_names"]))
        return cls(mode=header["mode"], view_names=header["view_names"], metrics=metrics,
                   timings=header["timings"], info=header["info"], **arrays)


# Each array's shape: letters are sizes that must agree across arrays (I iterations + 1, V views, N vertices,
# J joints, P betas, H and W heatmap rows and columns, F faces), numbers are fixed.
SHAPES = {
    "global_orient": "I V 3", "body_pose": "I V 69", "betas": "I V P", "vertices": "I V N 3",
    "joints3d": "I V J 3", "display_rotation": "I V 3 3", "joints2d": "I V J 2", "heatmaps": "I V J H W",
    "input_heatmaps": "V J H W", "input_keypoints": "V J 3", "crop_boxes": "V 4", "fused_vertices": "I N 3",
    "fused_joints3d": "I J 3", "faces": "F 3", "vertices2d": "I V N 2",
}


def _header(path: Path, raw: np.ndarray) -> dict:
    """The trace's JSON header, checked: format, version, mode, view names, timings and info."""
    try:
        header = json.loads(str(raw))
    except (json.JSONDecodeError, RecursionError) as exc:
        raise InputError(path, f"the trace's header is not JSON ({exc})") from exc
    if not isinstance(header, dict) or header.get("format") != FORMAT_TAG:
        raise InputError(path, "not a HeatFormer trace")
    check_version(path, header.get("version", 0), VERSION, "trace")
    if header.get("mode") not in ("calibrated", "uncalibrated"):
        raise InputError(path, f"trace mode {header.get('mode')!r} is neither calibrated nor uncalibrated")
    views = header.get("view_names")
    if (not isinstance(views, list) or not views or not all(isinstance(v, str) and v for v in views)
            or len(set(views)) != len(views)):
        raise InputError(path, "the trace's view_names must be a list of distinct, non-empty names")
    header.setdefault("timings", {})
    header.setdefault("info", {})
    timings, info = header["timings"], header["info"]
    if not isinstance(info, dict) or not isinstance(timings, dict) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in timings.values()):
        raise InputError(path, "the trace's timings must map stages to seconds and its info must be an object")
    return header


def _check_arrays(path: Path, arrays: dict[str, np.ndarray], metrics: dict[str, np.ndarray], views: int) -> None:
    """Shapes that agree with each other and with the view names, finite numbers, faces within the mesh, a
    value per iteration in each metric (a metric may be NaN where it is not known)."""
    sizes = {"V": views}
    for name, spec in SHAPES.items():
        if name not in arrays:
            continue
        value = arrays[name]
        dims = spec.split()
        if value.ndim != len(dims):
            raise InputError(path, f"trace array {name} has shape {value.shape}, expected ({', '.join(dims)})")
        for axis, (dim, size) in enumerate(zip(dims, value.shape)):
            expected = int(dim) if dim.isdigit() else sizes.setdefault(dim, size)
            if size != expected:
                raise InputError(path, f"trace array {name} has {size} along axis {axis} where {dim} is {expected} "
                                       f"elsewhere in the trace")
        if name == "faces":
            if not np.issubdtype(value.dtype, np.integer):
                raise InputError(path, "trace faces are not integer vertex indices")
        elif not np.issubdtype(value.dtype, np.floating) or not np.isfinite(value).all():
            raise InputError(path, f"trace array {name} holds non-numbers (NaN, infinite or not floats)")
    if sizes.get("I", 0) < 1:
        raise InputError(path, "the trace has no iteration")
    for name, value in metrics.items():
        if value.ndim not in (1, 2) or value.shape[0] != sizes["I"] or not np.issubdtype(value.dtype, np.floating):
            raise InputError(path, f"trace metric {name} has shape {value.shape}: expected {sizes['I']} iterations")
    faces = arrays.get("faces")
    if faces is not None and faces.size and (faces.min() < 0 or faces.max() >= sizes.get("N", 0)):
        raise InputError(path, f"trace faces index vertices outside 0..{sizes.get('N', 0) - 1}")

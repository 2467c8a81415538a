"""The native calibration JSON: {"format": "heatformer-calibration", "version": 1, "cameras": [...]}.

Each camera: name, width, height, K (3x3), dist (OpenCV order, 0..8 values), R (3x3), t (3, metres),
world -> camera, OpenCV axes.
"""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from core.files import check_version, read_json, write_text
from core.calibration.common import build_camera
from core.cameras import Camera
from core.errors import InputError

FORMAT_TAG = "heatformer-calibration"
VERSION = 1


def camera_from_dict(entry: dict, source) -> Camera:
    try:
        return build_camera(source, entry["name"], entry["K"], entry["R"], entry["t"], entry["width"],
                            entry["height"], entry.get("dist", []))
    except KeyError as exc:
        raise InputError(source, f"camera {entry.get('name', '?')!r} lacks key {exc.args[0]!r}") from exc


def camera_to_dict(camera: Camera) -> dict:
    return {"name": camera.name, "width": camera.width, "height": camera.height, "K": camera.K.tolist(),
            "dist": camera.dist.tolist(), "R": camera.R.tolist(), "t": camera.t.tolist()}


def read(path: Path, units: str | None = None) -> list[Camera]:
    data = read_json(path)
    if not isinstance(data.get("cameras"), list):
        raise InputError(path, "native calibration needs a list under 'cameras'")
    check_version(path, data.get("version", VERSION), VERSION, "calibration")
    scale = {None: 1.0, "m": 1.0, "mm": 1e-3}.get(units or data.get("units"))
    if scale is None:
        raise InputError(path, f"unknown units {units or data.get('units')!r}")
    cameras = [camera_from_dict(entry if isinstance(entry, dict) else {}, path) for entry in data["cameras"]]
    return [replace(c, t=c.t * scale) for c in cameras]


def write(cameras: list[Camera], path: Path) -> None:
    data = {"format": FORMAT_TAG, "version": VERSION, "units": "m",
            "cameras": [camera_to_dict(c) for c in cameras]}
    write_text(path, json.dumps(data, indent=2))

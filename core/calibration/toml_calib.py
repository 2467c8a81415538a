"""Pose2Sim / anipose / FreeMoCap calibration TOML: one table per camera.

Keys: name, size [w, h] (or image_size), matrix 3x3, distortions (4 or 5), rotation (Rodrigues), translation,
fisheye. Non-camera tables (metadata, capture_volume, charuco, checkerboard) are skipped. anipose/FreeMoCap
store translations in board units, often millimetres: detected from the camera distances (override: units).
"""
from __future__ import annotations

import tomllib
from pathlib import Path

import cv2
import numpy as np

from core.files import write_text
from core.calibration.common import build_camera, metres_factor
from core.cameras import Camera
from core.errors import InputError

NON_CAMERA_TABLES = {"metadata", "capture_volume", "charuco", "checkerboard"}


def read(path: Path, units: str | None = None) -> list[Camera]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InputError(path, f"cannot read TOML ({exc})") from exc
    tables = {k: v for k, v in data.items() if isinstance(v, dict) and k not in NON_CAMERA_TABLES}
    raw = []
    for key, table in tables.items():
        missing = [k for k in ("matrix", "rotation", "translation") if k not in table]
        if "size" not in table and "image_size" not in table:
            missing.append("size")
        if missing:
            raise InputError(path, f"camera table [{key}] lacks {', '.join(missing)}")
        if table.get("fisheye", False):
            raise InputError(path, f"camera [{key}] is a fisheye camera; only the pinhole model is supported")
        try:
            rvec = np.asarray(table["rotation"], dtype=np.float64)
            rot = cv2.Rodrigues(rvec.reshape(3, 1))[0] if rvec.size == 3 else rvec.reshape(3, 3)
            width, height = table.get("size", table.get("image_size"))
        except (ValueError, TypeError, cv2.error) as exc:
            raise InputError(path, f"camera [{key}]: {exc}") from exc
        raw.append((table.get("name", key), table["matrix"], rot, np.asarray(table["translation"], float).ravel(),
                    width, height, table.get("distortions", [])))
    scale = metres_factor([r[3] for r in raw], units, path)
    return [build_camera(path, name, K, rot, t * scale, w, h, dist) for name, K, rot, t, w, h, dist in raw]


def _toml_value(value) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[ " + ", ".join(_toml_value(v) for v in value) + " ]"
    return repr(float(value)) if isinstance(value, float) else str(value)


def write(cameras: list[Camera], path: Path) -> None:
    """Pose2Sim's layout: [cam_01] tables, metres, 4 distortion coefficients unless more are non-zero."""
    lines = []
    for i, cam in enumerate(cameras, start=1):
        dist = cam.dist if np.any(cam.dist[4:]) else np.pad(cam.dist, (0, max(0, 4 - cam.dist.size)))[:4]
        entries = {
            "name": cam.name, "size": [float(cam.width), float(cam.height)], "matrix": cam.K.tolist(),
            "distortions": [float(d) for d in dist], "rotation": cv2.Rodrigues(cam.R)[0].ravel().tolist(),
            "translation": cam.t.tolist(), "fisheye": False,
        }
        lines.append(f"[cam_{i:02d}]")
        lines += [f"{k} = {_toml_value(v)}" for k, v in entries.items()]
        lines.append("")
    lines += ["[metadata]", 'adjusted = false', "error = 0.0", ""]
    write_text(path, "\n".join(lines))

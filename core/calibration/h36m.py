"""Human3.6M-style camera JSON (I2L-MeshNet / official HeatFormer): {"1": {"R", "t", "f", "c"[, "k", "p"]}}.

t is in millimetres with x_cam = R X + t (not the H36M-Toolbox convention, where T is the camera centre).
The files carry no image size; H36M frames are 1000x1000, used unless "width"/"height" keys are present
(our writer adds them). Distortion: k = (k1, k2, k3) radial, p = (p1, p2) tangential.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from core.files import read_json, write_text
from core.calibration.common import build_camera, metres_factor
from core.cameras import Camera
from core.errors import InputError

H36M_IMAGE_SIZE = 1000


def read(path: Path, units: str | None = None) -> list[Camera]:
    data = read_json(path)
    raw = []
    for name, entry in data.items():
        missing = [k for k in ("R", "t", "f", "c") if not isinstance(entry, dict) or k not in entry]
        if missing:
            raise InputError(path, f"camera {name!r} lacks {', '.join(missing)}")
        try:
            (fx, fy), (cx, cy) = np.ravel(entry["f"]), np.ravel(entry["c"])
            k = np.ravel(entry.get("k", [0, 0, 0])).astype(float)
            p = np.ravel(entry.get("p", [0, 0])).astype(float)
            dist = [k[0], k[1], p[0], p[1], k[2]]
        except (ValueError, TypeError, IndexError) as exc:
            raise InputError(path, f"camera {name!r}: f, c, k, p malformed ({exc})") from exc
        K = [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]
        raw.append((str(name), K, entry["R"], np.asarray(entry["t"], float).ravel(),
                    entry.get("width", H36M_IMAGE_SIZE), entry.get("height", H36M_IMAGE_SIZE), dist))
    scale = metres_factor([r[3] for r in raw], units or "mm", path)
    return [build_camera(path, name, K, R, t * scale, w, h, dist) for name, K, R, t, w, h, dist in raw]


def write(cameras: list[Camera], path: Path) -> None:
    data = {}
    for cam in cameras:
        dist = np.zeros(5)
        dist[: min(5, cam.dist.size)] = cam.dist[:5]
        data[cam.name] = {
            "R": cam.R.tolist(), "t": (cam.t * 1000.0).tolist(), "f": [cam.K[0, 0], cam.K[1, 1]],
            "c": [cam.K[0, 2], cam.K[1, 2]], "k": [dist[0], dist[1], dist[4]], "p": [dist[2], dist[3]],
            "width": cam.width, "height": cam.height,
        }
    write_text(path, json.dumps(data, indent=2))

"""Helpers shared by the calibration readers: camera construction that names the file, unit detection."""
from __future__ import annotations

import numpy as np

from core.cameras import Camera
from core.errors import InputError

MM_THRESHOLD = 50.0  # a median camera distance above this many "units" is taken to be millimetres


def build_camera(source, name, K, R, t, width, height, dist=(), size_guessed: bool = False) -> Camera:
    """A `Camera`, with any problem in the values reported against the file ``source``."""
    if name is None or not str(name).strip():
        raise InputError(source, f"a camera has no name ({name!r})")
    try:
        return Camera(name=str(name), K=np.asarray(K, float), R=np.asarray(R, float), t=np.asarray(t, float),
                      width=float(width), height=float(height), dist=np.asarray(dist, float), size_guessed=size_guessed)
    except InputError as exc:
        raise InputError(source, str(exc)) from exc
    except (TypeError, ValueError) as exc:
        raise InputError(source, f"camera {name!r}: {exc}") from exc


def metres_factor(translations: list[np.ndarray], units: str | None, source) -> float:
    """Factor that turns the file's translations into metres: from ``units`` if given, else detected."""
    if units == "m":
        return 1.0
    if units == "mm":
        return 1e-3
    if units is not None:
        raise InputError(source, f"unknown units {units!r}; expected 'm' or 'mm'")
    if not translations:
        raise InputError(source, "calibration holds no cameras")
    distance = float(np.median([np.linalg.norm(t) for t in translations]))
    return 1e-3 if distance > MM_THRESHOLD else 1.0

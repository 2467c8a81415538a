"""EasyMocap's intri.yml / extri.yml (OpenCV FileStorage), metres, x_cam = R X + T.

intri.yml: names, K_<cam>, dist_<cam> (1x5; D_<cam> as fallback), optional H_<cam>/W_<cam>.
extri.yml: names, R_<cam> (3x1 Rodrigues), Rot_<cam> (3x3, used if present), T_<cam> (3x1).
Image size is often missing: it is then taken as twice the principal point, with a warning, and the camera is
marked `size_guessed`, so that its images' real size replaces the guess.
"""
from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

from core.files import atomic_path
from core.calibration.common import build_camera, metres_factor
from core.cameras import Camera
from core.errors import InputError

log = logging.getLogger(__name__)


def _pair(path: Path) -> tuple[Path, Path]:
    folder = path if path.is_dir() else path.parent
    intri, extri = folder / "intri.yml", folder / "extri.yml"
    for p in (intri, extri):
        if not p.exists():
            raise InputError(p, "EasyMocap calibration needs both intri.yml and extri.yml in one folder")
    return intri, extri


def _open(path: Path) -> cv2.FileStorage:
    try:
        storage = cv2.FileStorage(str(path), cv2.FILE_STORAGE_READ)
    except cv2.error as exc:
        raise InputError(path, f"not a readable OpenCV YAML file ({exc.err})") from exc
    if not storage.isOpened():
        raise InputError(path, "not a readable OpenCV YAML file")
    return storage


def _names(storage: cv2.FileStorage, path: Path) -> list[str]:
    node = storage.getNode("names")
    if node.empty():
        raise InputError(path, "missing the 'names' list")
    return [node.at(i).string() for i in range(node.size())]


def _matrix(storage: cv2.FileStorage, key: str, path: Path, required: bool = True):
    node = storage.getNode(key)
    if node.empty():
        if required:
            raise InputError(path, f"missing {key}")
        return None
    try:
        value = node.real() if (node.isReal() or node.isInt()) else node.mat()
    except cv2.error as exc:
        raise InputError(path, f"{key} is not a number or matrix ({exc.err})") from exc
    if value is None:
        raise InputError(path, f"{key} is not a matrix")
    return np.asarray(value, dtype=np.float64)


def _rotation(storage: cv2.FileStorage, name: str, path: Path) -> np.ndarray:
    """R_<cam> as a Rodrigues vector (or, in some writers, a 3x3 matrix); Rot_<cam> where R_ is absent."""
    rvec = _matrix(storage, f"R_{name}", path, required=False)
    if rvec is None:
        return _matrix(storage, f"Rot_{name}", path).reshape(3, 3)
    if rvec.size == 9:
        return rvec.reshape(3, 3)
    if rvec.size != 3:
        raise InputError(path, f"R_{name} has {rvec.size} values; expected a Rodrigues vector (3) or 3x3 matrix")
    return cv2.Rodrigues(rvec.reshape(3, 1))[0]


def read(path: Path, units: str | None = None) -> list[Camera]:
    intri_path, extri_path = _pair(path)
    intri, extri = _open(intri_path), _open(extri_path)
    names = _names(intri, intri_path)
    raw = []
    for name in names:
        K = _matrix(intri, f"K_{name}", intri_path)
        dist = _matrix(intri, f"dist_{name}", intri_path, required=False)
        if dist is None:
            dist = _matrix(intri, f"D_{name}", intri_path, required=False)
        rot = _rotation(extri, name, extri_path)
        t = _matrix(extri, f"T_{name}", extri_path).reshape(-1)
        width = _matrix(intri, f"W_{name}", intri_path, required=False)
        height = _matrix(intri, f"H_{name}", intri_path, required=False)
        guessed = width is None or height is None
        if guessed:
            width, height = 2 * K[0, 2], 2 * K[1, 2]
            log.warning("%s: no image size for camera %s; assuming %dx%d (twice the principal point) until its "
                        "images say otherwise", intri_path, name, round(float(width)), round(float(height)))
        raw.append((name, K, rot, t, round(float(width)), round(float(height)), [] if dist is None else dist,
                    guessed))
    scale = metres_factor([r[3] for r in raw], units, extri_path)
    return [build_camera(extri_path, name, K, rot, t * scale, width, height, np.ravel(dist), guessed)
            for name, K, rot, t, width, height, dist, guessed in raw]


def _write_storage(path: Path, fill) -> None:
    with atomic_path(path) as tmp:
        storage = cv2.FileStorage(str(tmp), cv2.FILE_STORAGE_WRITE)
        fill(storage)
        storage.release()


def write(cameras: list[Camera], folder: Path) -> None:
    folder = folder if folder.suffix == "" else folder.parent
    names = [c.name for c in cameras]

    def intri(storage):
        storage.write("names", names)
        for c in cameras:
            storage.write(f"K_{c.name}", c.K)
            dist = np.zeros(5)
            dist[: min(5, c.dist.size)] = c.dist[:5]
            storage.write(f"dist_{c.name}", dist.reshape(1, 5))
            storage.write(f"H_{c.name}", c.height)
            storage.write(f"W_{c.name}", c.width)

    def extri(storage):
        storage.write("names", names)
        for c in cameras:
            storage.write(f"R_{c.name}", cv2.Rodrigues(c.R)[0])
            storage.write(f"Rot_{c.name}", c.R)
            storage.write(f"T_{c.name}", c.t.reshape(3, 1))

    if any(c.dist.size > 5 and np.any(c.dist[5:]) for c in cameras):
        log.warning("EasyMocap stores 5 distortion coefficients; k4..k6 are dropped")
    _write_storage(folder / "intri.yml", intri)
    _write_storage(folder / "extri.yml", extri)

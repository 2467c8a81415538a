"""aitviewer's camera .npz (what its `MultiViewSystem` reads): arrays over M cameras.

ids (M), intrinsics (M, 3, 3), extrinsics (M, 3, 4) world -> camera [R | t] in OpenCV axes, dist_coeffs (M, 5)
in OpenCV order. aitviewer passes the image size separately (cols, rows), so the file has none: it is taken as
twice the principal point, the cameras marked `size_guessed`, until their images give the real size. Our writer
adds `cols` and `rows` (M) entries, which aitviewer ignores and this reader uses. Translations in metres, or in
millimetres when the cameras are far (`metres_factor`).
"""
from __future__ import annotations

import logging
import zipfile
from pathlib import Path

import numpy as np

from core.calibration.common import build_camera, metres_factor
from core.cameras import Camera
from core.errors import InputError
from core.files import atomic_path

log = logging.getLogger(__name__)
REQUIRED = ("ids", "intrinsics", "extrinsics")


def is_aitviewer(path: Path) -> bool:
    """An .npz whose entries include aitviewer's camera arrays (traces and samples are .npz files too)."""
    if path.suffix != ".npz" or not path.is_file():
        return False
    try:
        with zipfile.ZipFile(path) as archive:
            names = {Path(n).stem for n in archive.namelist()}
    except (OSError, zipfile.BadZipFile):
        return False
    return all(key in names for key in REQUIRED)


def read(path: Path, units: str | None = None) -> list[Camera]:
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise InputError(path, f"cannot read the .npz ({exc})") from exc
    missing = [key for key in REQUIRED if key not in arrays]
    if missing:
        raise InputError(path, f"aitviewer camera file lacks {', '.join(missing)}")
    ids, K, extrinsics = arrays["ids"].reshape(-1), arrays["intrinsics"], arrays["extrinsics"]
    count = len(ids)
    dist = arrays.get("dist_coeffs", np.zeros((count, 5)))
    for key, value, shape in (("intrinsics", K, (count, 3, 3)), ("extrinsics", extrinsics, (count, 3, 4)),
                              ("dist_coeffs", dist, (count, dist.shape[-1]))):
        if value.shape != shape:
            raise InputError(path, f"{key} has shape {value.shape}; {count} camera ids need {shape}")
    guessed = "cols" not in arrays or "rows" not in arrays
    if guessed:
        cols, rows = np.round(2 * K[:, 0, 2]), np.round(2 * K[:, 1, 2])
        log.warning("%s: aitviewer camera files carry no image size; assuming twice the principal point until "
                    "the images say otherwise", path)
    else:
        cols, rows = arrays["cols"].reshape(-1), arrays["rows"].reshape(-1)
        if len(cols) != count or len(rows) != count:
            raise InputError(path, f"cols and rows need one value for each of the {count} cameras")
    scale = metres_factor([e[:, 3] for e in extrinsics], units, path)
    return [build_camera(path, str(ids[i]), K[i], extrinsics[i, :, :3], extrinsics[i, :, 3] * scale, cols[i], rows[i],
                         dist[i], guessed) for i in range(count)]


def write(cameras: list[Camera], path: Path) -> None:
    """The file aitviewer's MultiViewSystem reads (its images then go in one folder per camera name), in metres,
    with five distortion coefficients (OpenCV's k1 k2 p1 p2 k3) and our cols/rows entries."""
    if any(np.any(c.dist[5:]) for c in cameras):
        log.warning("aitviewer stores 5 distortion coefficients; k4..k6 are dropped")
    dist = np.zeros((len(cameras), 5))
    for i, camera in enumerate(cameras):
        dist[i, : min(5, camera.dist.size)] = camera.dist[:5]
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, ids=np.array([c.name for c in cameras]), intrinsics=np.stack([c.K for c in cameras]),
                 extrinsics=np.stack([np.hstack([c.R, c.t[:, None]]) for c in cameras]), dist_coeffs=dist,
                 cols=np.array([c.width for c in cameras]), rows=np.array([c.height for c in cameras]))

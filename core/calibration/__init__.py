"""Calibration files in and out. Every reader returns `Camera`s in metres, world -> camera, OpenCV axes.

Formats: native JSON, EasyMocap intri.yml/extri.yml, Pose2Sim/anipose Calib.toml, Human3.6M camera JSON,
Qualisys .qca.txt, aitviewer's camera .npz.
Traps and conventions of each are in shared/calibration-formats.md; see `load_calibration` for detection.
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from core.cameras import Camera
from core.calibration import aitviewer, easymocap, h36m, native, qualisys, toml_calib
from core.errors import InputError, reading
from core.files import read_json

Format = Literal["native", "easymocap", "toml", "h36m", "qualisys", "aitviewer"]
FORMATS: tuple[str, ...] = ("native", "easymocap", "toml", "h36m", "qualisys", "aitviewer")


def detect_format(path: Path) -> Format:
    """Guess the format from the file name and, for JSON, its top-level keys."""
    if path.is_dir() or path.name in ("intri.yml", "extri.yml") or path.suffix in (".yml", ".yaml"):
        return "easymocap"
    if path.suffix == ".toml":
        return "toml"
    if qualisys.is_qca(path):
        return "qualisys"
    if aitviewer.is_aitviewer(path):
        return "aitviewer"
    if path.suffix == ".json":
        data = read_json(path)
        if "cameras" in data:
            return "native"
        if data and all(isinstance(v, dict) and "f" in v for v in data.values()):
            return "h36m"
        raise InputError(path, "JSON is neither a native calibration (key 'cameras') nor Human3.6M-style "
                               "({'1': {'R', 't', 'f', 'c'}, ...})")
    raise InputError(path, "unknown calibration format: expected .json, .toml, .qca.txt, intri.yml/extri.yml or an "
                           "aitviewer camera .npz (ids, intrinsics, extrinsics)")


def is_calibration_file(path: Path) -> bool:
    """Whether ``path`` is a calibration file this module reads (JSON is looked into: detector configurations and
    other JSON files are not calibrations)."""
    if not path.is_file() or (path.suffix not in (".json", ".toml", ".yml", ".yaml") and not qualisys.is_qca(path)
                              and not aitviewer.is_aitviewer(path)):
        return False
    try:
        detect_format(path)
    except InputError:
        return False
    return True


def load_calibration(path: str | Path, fmt: Format | None = None, units: str | None = None) -> list[Camera]:
    """Read cameras from ``path``. ``units`` ('m' or 'mm') overrides unit detection where a format has it."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, "calibration file does not exist")
    fmt = fmt or detect_format(path)
    readers = {"native": native.read, "easymocap": easymocap.read, "toml": toml_calib.read, "h36m": h36m.read,
               "qualisys": qualisys.read, "aitviewer": aitviewer.read}
    if fmt not in readers:
        raise InputError(path, f"unknown calibration format {fmt!r}; expected one of {', '.join(FORMATS)}")
    with reading(path, f"{fmt} calibration"):
        cameras = readers[fmt](path, units=units)
    if not cameras:
        raise InputError(path, "calibration holds no cameras")
    names = [c.name for c in cameras]
    if len(set(names)) != len(names):
        raise InputError(path, f"camera names repeat: {names}")
    return cameras


def save_calibration(cameras: list[Camera], path: str | Path, fmt: Format = "native") -> None:
    """Write cameras atomically; for EasyMocap ``path`` is the folder that receives intri.yml and extri.yml."""
    writers = {"native": native.write, "easymocap": easymocap.write, "toml": toml_calib.write, "h36m": h36m.write,
               "qualisys": qualisys.write, "aitviewer": aitviewer.write}
    if fmt not in writers:
        raise ValueError(f"unknown calibration format {fmt!r}")
    writers[fmt](cameras, Path(path))


def check_views_match(cameras: list[Camera], view_names: list[str], source: str | Path) -> None:
    """Raise if the calibration's cameras and the data's views differ (count or names)."""
    names = [c.name for c in cameras]
    if len(names) != len(view_names):
        raise InputError(source, f"calibration has {len(names)} cameras but the data has {len(view_names)} views")
    missing = sorted(set(view_names) - set(names))
    if missing:
        raise InputError(source, f"no calibration for view(s) {', '.join(missing)} (cameras: {', '.join(names)})")

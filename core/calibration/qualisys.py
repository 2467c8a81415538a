"""Qualisys calibration `*.qca.txt` (XML; what Pose2Sim's demos ship), read and written.

Per `<camera serial=...>`: `<fov_video left right top bottom>` (the image: right - left + 1 wide),
`<intrinsic>` in sensor sub-pixels, 64 to a pixel (focal lengths, principal point and, as Pose2Sim converts them,
the distortion coefficients), the principal point counted from the sensor's corner (the image starts at the
video window's left and top), and `<transform x y z r11..r33>`: the camera centre in world millimetres and the
rotation from world to a camera frame whose y and z point the other way from OpenCV's (up and backwards): a turn
of 180 degrees about x takes it to OpenCV's axes.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from core.calibration.common import build_camera
from core.cameras import Camera
from core.errors import InputError
from core.files import write_text

SUBPIXELS = 64.0
TO_OPENCV = np.diag([1.0, -1.0, -1.0])  # the 180-degree turn about x, its own inverse
ROTATION_KEYS = [f"r{i}{j}" for i in (1, 2, 3) for j in (1, 2, 3)]


def is_qca(path: Path) -> bool:
    return path.name.lower().endswith(".qca.txt")


def _number(element: ET.Element, key: str, path: Path) -> float:
    value = element.get(key)
    if value is None:
        raise InputError(path, f"<{element.tag}> lacks {key}")
    try:
        return float(value)
    except ValueError as exc:
        raise InputError(path, f"<{element.tag}> {key}={value!r} is not a number") from exc


def read(path: Path, units: str | None = None) -> list[Camera]:
    if units not in (None, "mm"):
        raise InputError(path, "Qualisys calibrations are in millimetres")
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise InputError(path, f"not a readable Qualisys XML file ({exc})") from exc
    cameras = []
    for index, camera in enumerate(root.findall("cameras/camera")):
        name = camera.get("serial") or f"cam{index + 1:02d}"
        parts = {tag: camera.find(tag) for tag in ("fov_video", "intrinsic", "transform")}
        missing = [tag for tag, element in parts.items() if element is None]
        if missing:
            raise InputError(path, f"camera {name!r} lacks <{'>, <'.join(missing)}>")
        window, intrinsic, transform = parts["fov_video"], parts["intrinsic"], parts["transform"]
        left, top = _number(window, "left", path), _number(window, "top", path)
        width = _number(window, "right", path) - left + 1
        height = _number(window, "bottom", path) - top + 1
        value = {key: _number(intrinsic, key, path) / SUBPIXELS for key in (
            "focalLengthU", "focalLengthV", "centerPointU", "centerPointV", "radialDistortion1",
            "radialDistortion2", "radialDistortion3", "tangentalDistortion1", "tangentalDistortion2")}
        K = [[value["focalLengthU"], 0, value["centerPointU"] - left],
             [0, value["focalLengthV"], value["centerPointV"] - top], [0, 0, 1]]
        dist = [value["radialDistortion1"], value["radialDistortion2"], value["tangentalDistortion1"],
                value["tangentalDistortion2"], value["radialDistortion3"]]
        to_camera = np.array([_number(transform, key, path) for key in ROTATION_KEYS]).reshape(3, 3)
        centre = np.array([_number(transform, key, path) for key in "xyz"]) / 1000.0
        R = TO_OPENCV @ to_camera
        cameras.append(build_camera(path, name, K, R, -R @ centre, width, height, dist))
    if not cameras:
        raise InputError(path, "no <cameras><camera> in this Qualisys calibration")
    return cameras


def write(cameras: list[Camera], path: Path) -> None:
    root = ET.Element("calibration", {"source": "HeatFormer Studio", "type": "regular"})
    group = ET.SubElement(root, "cameras")
    for cam in cameras:
        element = ET.SubElement(group, "camera", {"active": "1", "serial": cam.name, "model": "none"})
        window = {"left": "0", "top": "0", "right": str(cam.width - 1), "bottom": str(cam.height - 1)}
        ET.SubElement(element, "fov_video", window)
        dist = np.zeros(5)
        dist[: min(5, cam.dist.size)] = cam.dist[:5]
        k1, k2, p1, p2, k3 = (f"{v * SUBPIXELS:.10g}" for v in dist)
        ET.SubElement(element, "intrinsic", {
            "focalLengthU": f"{cam.K[0, 0] * SUBPIXELS:.10g}", "focalLengthV": f"{cam.K[1, 1] * SUBPIXELS:.10g}",
            "centerPointU": f"{cam.K[0, 2] * SUBPIXELS:.10g}", "centerPointV": f"{cam.K[1, 2] * SUBPIXELS:.10g}",
            "radialDistortion1": k1, "radialDistortion2": k2, "radialDistortion3": k3,
            "tangentalDistortion1": p1, "tangentalDistortion2": p2, "skew": "0"})
        to_camera = TO_OPENCV @ cam.R
        centre = cam.center * 1000.0
        ET.SubElement(element, "transform", {**{k: f"{v:.15g}" for k, v in zip(ROTATION_KEYS, to_camera.ravel())},
                                             **{k: f"{v:.15g}" for k, v in zip("xyz", centre)}})
    ET.indent(root)
    write_text(path, "<?xml version='1.0' encoding='ASCII'?>\n" + ET.tostring(root, encoding="unicode") + "\n")

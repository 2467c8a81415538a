from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.body_model import BodyModel  # noqa: E402
from core.cameras import Camera, look_at  # noqa: E402


@pytest.fixture(scope="session")
def body() -> BodyModel:
    return BodyModel()


def make_rig(views: int = 4, distortion: bool = True) -> list[Camera]:
    """Cameras on a circle around (0, 0, 1), each with its own intrinsics and (optionally) distortion."""
    cameras = []
    for i in range(views):
        angle = 2 * np.pi * i / views + 0.3
        R, t = look_at(np.array([4 * np.cos(angle), 4 * np.sin(angle), 1.5 + 0.1 * i]), np.array([0, 0, 1.0]))
        K = np.array([[900 + 20 * i, 0, 320 + i], [0, 905 + 20 * i, 240 - i], [0, 0, 1]])
        dist = np.array([0.05 * (i - 1.5), -0.01, 0.001, -0.002, 0.003]) if distortion else np.zeros(5)
        cameras.append(Camera(f"cam{i}", K, R, t, 640, 480, dist))
    return cameras


@pytest.fixture
def rig() -> list[Camera]:
    return make_rig()

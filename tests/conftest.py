from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.body_model import BodyModel  # noqa: E402
from core.calibration import save_calibration  # noqa: E402
from core.cameras import Camera, look_at  # noqa: E402

FRAMES = 3  # frames of the sequences `camera_folder` makes


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


def frame_keypoints(original, frame: int) -> np.ndarray:
    """(V, 17, 3) H36M keypoints of frame ``frame``: the sample's, moved a little further right each frame."""
    keypoints = original.keypoints.copy()
    keypoints[..., 0] += 3.0 * frame
    return keypoints


def camera_folder(tmp_path, original, layout: str, calibration: str = "easymocap", video: str = ".avi"):
    """A sequence folder of FRAMES frames in the "images" or "videos" layout (``video``: .avi or .mp4), without
    2D evidence."""
    folder = tmp_path / layout
    (folder / calibration).parent.mkdir(parents=True, exist_ok=True)
    fmt = "easymocap" if calibration == "easymocap" else "aitviewer" if calibration.endswith(".npz") else "toml"
    save_calibration(original.cameras, folder if calibration == "easymocap" else folder / calibration, fmt)
    for view, image in zip(original.view_names, original.frames):
        bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        if layout == "images":
            (folder / "images" / view).mkdir(parents=True)
            for f in range(FRAMES):
                cv2.imwrite(str(folder / "images" / view / f"{f:06d}.jpg"), bgr)
        else:
            (folder / "videos").mkdir(exist_ok=True)
            codec = cv2.VideoWriter_fourcc(*("MJPG" if video == ".avi" else "mp4v"))
            writer = cv2.VideoWriter(str(folder / "videos" / f"{view}{video}"), codec, 25,
                                     (image.shape[1], image.shape[0]))
            for f in range(FRAMES):  # a frame number drawn in, to check that seeking finds the right frame
                writer.write(cv2.putText(bgr.copy(), str(f), (20, 120), cv2.FONT_HERSHEY_SIMPLEX, 4, (255,) * 3, 8))
            writer.release()
    return folder

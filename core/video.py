"""A refinement as a video: frames of one camera's view drawn without a window (for the command line), stamped
with what they show, and written as MP4 through OpenCV or GIF through Pillow, atomically.

Frames are RGB uint8 arrays of one size; the format follows the file's suffix.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from core.files import atomic_path
from core.joints import H36M17
from core.trace import RefinementTrace

VIDEO_FORMATS = (".mp4", ".gif")
ESTIMATE_RGB = (0, 200, 255)


def stamp(frame: np.ndarray, text: str) -> np.ndarray:
    """``text`` on a dark band at the top of a copy of ``frame``: every frame says what it shows."""
    out = frame.copy()
    scale = max(frame.shape[1] / 900, 0.4)
    band = int(28 * scale)
    out[:band] = (out[:band] * 0.35).astype(np.uint8)
    cv2.putText(out, text, (int(8 * scale), int(20 * scale)), cv2.FONT_HERSHEY_SIMPLEX, 0.6 * scale,
                (255, 255, 255), max(1, int(1.5 * scale)), cv2.LINE_AA)
    return out


def draw_estimate(image: np.ndarray, vertices2d: np.ndarray | None, faces: np.ndarray, joints2d: np.ndarray,
                  color=ESTIMATE_RGB) -> np.ndarray:
    """The projected mesh as a half-transparent silhouette and the joints with their skeleton over ``image``."""
    out = image.copy()
    if vertices2d is not None:
        mask = np.zeros(image.shape[:2], np.uint8)
        for triangle in np.round(vertices2d[faces] * 16).astype(np.int32):
            cv2.fillConvexPoly(mask, triangle, 1, cv2.LINE_8, 4)
        tint = np.asarray(color, np.float32)
        out[mask > 0] = (0.55 * out[mask > 0] + 0.45 * tint).astype(np.uint8)
    points = np.round(joints2d).astype(int)
    for a, b in H36M17.edges:
        cv2.line(out, tuple(points[a]), tuple(points[b]), color, 2, cv2.LINE_AA)
    for point in points:
        cv2.circle(out, tuple(point), 3, (255, 255, 255), -1, cv2.LINE_AA)
    return out


def refinement_frames(trace: RefinementTrace, view: int, image: np.ndarray | None, width: int,
                      height: int) -> list[np.ndarray]:
    """One frame per iteration: camera ``view``'s image (black if None) with that iteration's estimate."""
    base = image if image is not None else np.zeros((height, width, 3), np.uint8)
    frames = []
    for k in range(trace.iterations + 1):
        vertices = trace.vertices2d[k, view] if trace.vertices2d is not None else None
        text = f"{trace.mode} | {trace.view_names[view]} | iteration {k}/{trace.iterations}"  # ASCII: Hershey fonts
        if "mpjpe_mm" in trace.metrics:
            text += f" | mean MPJPE {trace.metrics['mpjpe_mm'][k]:.0f} mm"
        frames.append(stamp(draw_estimate(base, vertices, trace.faces, trace.joints2d[k, view]), text))
    return frames


def write_video(frames: list[np.ndarray], path: str | Path, fps: float = 2.0) -> Path:
    """Write ``frames`` (each (H, W, 3) RGB uint8) to ``path`` (.mp4 or .gif). GIF merges identical consecutive
    frames, which is one reason every frame is stamped."""
    path = Path(path)
    if path.suffix.lower() not in VIDEO_FORMATS:
        raise ValueError(f"{path}: videos are written as {' or '.join(VIDEO_FORMATS)}")
    if not frames:
        raise ValueError(f"{path}: no frames to write")
    height, width = frames[0].shape[:2]
    if any(f.shape != frames[0].shape for f in frames):
        raise ValueError(f"{path}: frames differ in size")
    with atomic_path(path) as tmp:
        if path.suffix.lower() == ".gif":
            images = [Image.fromarray(np.ascontiguousarray(f)) for f in frames]
            images[0].save(tmp, save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
        else:
            # mp4v needs even sizes; a one-pixel crop is invisible and keeps every player happy
            even = (width // 2 * 2, height // 2 * 2)
            writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, even)
            if not writer.isOpened():
                raise OSError(f"{path}: OpenCV cannot write MP4 here")
            for frame in frames:
                writer.write(cv2.cvtColor(np.ascontiguousarray(frame[: even[1], : even[0]]), cv2.COLOR_RGB2BGR))
            writer.release()
    return path


def count_frames(path: str | Path) -> int:
    """Frames in a written video (for checks): decoded, not read from the header."""
    path = Path(path)
    if path.suffix.lower() == ".gif":
        with Image.open(path) as image:
            return image.n_frames
    capture = cv2.VideoCapture(str(path))
    count = 0
    while capture.read()[0]:
        count += 1
    capture.release()
    return count

"""Appearance randomisation of synthetic frames, so that a network trained on them meets real footage halfway.

The plain synthetic frames show the body in six fixed part colours (left and right limbs told apart by colour,
which no real person offers) over one sky and checkered floor, sharp and noiseless. Here instead: clothes (a
shirt with long or short sleeves, trousers or shorts, shoes, skin of several tones; left and right alike),
cluttered procedural backgrounds, and a camera's faults: exposure, gamma, colour cast, blur, sensor noise and
JPEG artefacts. Every draw comes from the caller's generator, so a seed still gives one frame.
"""
from __future__ import annotations

import cv2
import numpy as np

from core.cameras import Camera
from core.render import background

# SMPL-24 joints grouped by what a clothed person shows there (each vertex belongs to its strongest joint).
TORSO = (3, 6, 9, 13, 14, 16, 17)  # spine, collars, upper arms: the shirt
FOREARMS = (18, 19)  # the shirt's long sleeves, or skin
HIPS = (0, 1, 2)  # the trousers' top
SHINS = (4, 5)  # long trousers, or skin
FEET = (7, 8, 10, 11)  # shoes
SKIN = (12, 15, 20, 21, 22, 23)  # neck, head, hands
SKIN_TONES = np.array([[255, 224, 196], [234, 192, 160], [198, 145, 110], [150, 100, 70], [95, 65, 45]], float)


def clothing_colors(part_of_face: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(F,) SMPL-24 joint of each face -> (F, 3) uint8 colours of one randomly dressed person."""
    skin = SKIN_TONES[rng.integers(len(SKIN_TONES))] * rng.uniform(0.85, 1.1)
    shirt, trousers, shoes = (_cloth_colour(rng) for _ in range(3))
    colour_of_joint = np.zeros((24, 3))
    for joints, colour in ((TORSO, shirt), (FOREARMS, shirt if rng.random() < 0.5 else skin), (HIPS, trousers),
                           (SHINS, trousers if rng.random() < 0.7 else skin), (FEET, shoes), (SKIN, skin)):
        colour_of_joint[list(joints)] = colour
    return np.clip(colour_of_joint[part_of_face], 0, 255).astype(np.uint8)


def _cloth_colour(rng: np.random.Generator) -> np.ndarray:
    """Mostly muted or dark, sometimes vivid, as clothes are."""
    if rng.random() < 0.6:
        grey = rng.uniform(20, 220)
        return np.clip(grey + rng.normal(0, 15, 3), 0, 255)
    return rng.uniform(0, 255, 3)


def random_background(camera: Camera, rng: np.random.Generator) -> np.ndarray:
    """A frame-sized backdrop: the checkered floor now and then (it shows the calibration), else a smooth colour
    field with rectangles and ellipses of clutter (walls, furniture, people's shapes at a distance)."""
    if rng.random() < 0.25:
        image = background(camera).astype(np.float64)
        return np.clip(image * rng.uniform(0.6, 1.3, 3), 0, 255).astype(np.uint8)
    h, w = camera.height, camera.width
    cells = int(rng.integers(2, 9))
    field = rng.uniform(0, 255, (cells, cells, 3)).astype(np.float32)
    image = cv2.resize(field, (w, h), interpolation=cv2.INTER_CUBIC)
    for _ in range(int(rng.integers(3, 16))):
        colour = rng.uniform(0, 255, 3).tolist()
        x, y = rng.uniform(0, w), rng.uniform(0, h)
        sx, sy = rng.uniform(0.03, 0.4) * w, rng.uniform(0.03, 0.4) * h
        if rng.random() < 0.6:
            cv2.rectangle(image, (int(x - sx), int(y - sy)), (int(x + sx), int(y + sy)), colour, -1)
        else:
            cv2.ellipse(image, (int(x), int(y)), (int(sx), int(sy)), rng.uniform(0, 180), 0, 360, colour, -1)
    return np.clip(image, 0, 255).astype(np.uint8)


def camera_faults(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Exposure, gamma and colour cast, then blur, sensor noise and JPEG compression, each of random strength."""
    x = image.astype(np.float32) / 255.0
    x = (x * rng.uniform(0.6, 1.4) * rng.uniform(0.9, 1.1, 3)).clip(0, 1) ** rng.uniform(0.7, 1.4)
    if rng.random() < 0.5:
        x = cv2.GaussianBlur(x, (0, 0), rng.uniform(0.3, 1.5))
    x = x + rng.normal(0, rng.uniform(0, 0.03), x.shape).astype(np.float32)
    out = (x.clip(0, 1) * 255).round().astype(np.uint8)
    ok, encoded = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(30, 96))])
    return cv2.imdecode(encoded, cv2.IMREAD_UNCHANGED) if ok else out

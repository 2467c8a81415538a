"""A user's top-down 2D pose model (ONNX: RTMPose, ViTPose and the like), run with onnxruntime on each view to make
the 2D evidence of a sequence that has none. Nothing is downloaded: the user points at their own model.

The configuration is a JSON file (paths relative to it), or the defaults for a bare ``.onnx``:

    {"model": "rtmpose-m.onnx", "input_size": [192, 256], "mean": [123.675, 116.28, 103.53],
     "std": [58.395, 57.12, 57.375], "channels": "rgb", "output": "simcc", "simcc_split_ratio": 2.0,
     "joint_set": "coco17", "box_padding": 1.25}

``output`` is "heatmap" (one output, (1, J, h, w)) or "simcc" (two outputs, x (1, J, W * ratio) then
y (1, J, H * ratio)). The person box is the previous frame's detections in that view, or the full frame.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path

import cv2
import numpy as np

from core.errors import InputError
from core.joints import JOINT_SETS

OUTPUTS = ("heatmap", "simcc")
MIN_BOX_FRACTION = 0.1  # a person box is at least this fraction of the image's larger side


# Numeric keys: how many numbers (None: one) and their range; NaN and infinities are outside every range.
NUMBER_RANGES = {"input_size": (2, 8, 4096), "mean": (3, -1e3, 1e3), "std": (3, 1e-6, 1e3),
                 "simcc_split_ratio": (None, 0.1, 16), "box_padding": (None, 1, 10),
                 "tracking_confidence": (None, 0, 1)}


def _numbers_within(value, count: int | None, low: float, high: float) -> bool:
    items = [value] if count is None else value
    if count is not None and (not isinstance(value, list) or len(value) != count):
        return False
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) and low <= v <= high for v in items)


@dataclass(frozen=True)
class DetectorConfig:
    model: Path
    input_size: tuple[int, int] = (192, 256)  # width, height of the network input
    mean: tuple[float, float, float] = (123.675, 116.28, 103.53)  # per channel, on 0-255 values
    std: tuple[float, float, float] = (58.395, 57.12, 57.375)
    channels: str = "rgb"  # channel order the model expects: "rgb" or "bgr"
    output: str = "heatmap"
    simcc_split_ratio: float = 2.0
    joint_set: str = "coco17"
    box_padding: float = 1.25  # the person box is enlarged by this factor before cropping
    tracking_confidence: float = 0.3  # joints at least this confident define the next frame's box

    @classmethod
    def load(cls, path: str | Path) -> DetectorConfig:
        """A JSON configuration, or a bare .onnx with the defaults; every value is checked."""
        path = Path(path)
        if path.suffix.lower() == ".onnx":
            values = {"model": path}
        else:
            try:
                values = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise InputError(path, f"cannot read the detector configuration ({exc})") from exc
            if not isinstance(values, dict) or "model" not in values:
                raise InputError(path, "a detector configuration is a JSON object with at least \"model\"")
            unknown = sorted(set(values) - {f.name for f in fields(cls)})
            if unknown:
                raise InputError(path, f"unknown key(s) {', '.join(unknown)}")
            values["model"] = path.parent / values["model"]
        for key, (count, low, high) in NUMBER_RANGES.items():
            if key in values and not _numbers_within(values[key], count, low, high):
                raise InputError(path, f"{key} must be {'a number' if count is None else f'{count} numbers'} "
                                       f"from {low} to {high}, not {values[key]!r}")
        if "input_size" in values and not all(float(v).is_integer() for v in values["input_size"]):
            raise InputError(path, "input_size must be whole pixels")
        for key in ("channels", "output", "joint_set"):
            if key in values and not isinstance(values[key], str):
                raise InputError(path, f"{key} must be a name, not {values[key]!r}")
        config = cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})
        if config.output not in OUTPUTS or config.channels not in ("rgb", "bgr"):
            raise InputError(path, f"output must be one of {OUTPUTS} and channels 'rgb' or 'bgr'")
        if config.joint_set not in JOINT_SETS:
            raise InputError(path, f"unknown joint_set {config.joint_set!r}; known: {', '.join(JOINT_SETS)}")
        return config


def box_from_keypoints(keypoints: np.ndarray, min_confidence: float) -> np.ndarray | None:
    """(x0, y0, x1, y1) around the joints at least ``min_confidence`` confident, or None with fewer than two."""
    confident = keypoints[keypoints[:, 2] >= min_confidence, :2]
    if len(confident) < 2:
        return None
    return np.concatenate([confident.min(0), confident.max(0)])


class PoseDetector:
    """One ONNX session; `detect` maps a person box of an image to (J, 3) keypoints in that image's pixels."""

    def __init__(self, config: DetectorConfig):
        import onnxruntime

        self.config = config
        self.joints = JOINT_SETS[config.joint_set]
        if not config.model.is_file():
            raise InputError(config.model, "no such ONNX model file")
        try:
            self.session = onnxruntime.InferenceSession(str(config.model), providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types for unreadable models
            raise InputError(config.model, f"cannot load the ONNX model ({exc})") from exc
        needed = 1 if config.output == "heatmap" else 2
        if len(self.session.get_outputs()) < needed:
            raise InputError(config.model, f"a {config.output} model needs {needed} output(s); this one has "
                                           f"{len(self.session.get_outputs())}")
        model_input = self.session.get_inputs()[0]
        self.input_name = model_input.name
        width, height = config.input_size
        fixed = model_input.shape[2:] if len(model_input.shape) == 4 else []
        if all(isinstance(d, int) for d in fixed) and len(fixed) == 2 and tuple(fixed) != (height, width):
            raise InputError(config.model, f"the model takes {fixed[1]}x{fixed[0]} images; the configuration's "
                                           f"input_size is {width}x{height}")

    def _crop(self, image: np.ndarray, box: np.ndarray | None) -> tuple[np.ndarray, float, np.ndarray]:
        """The network input for ``box`` (enlarged to the input's aspect ratio), with the scale and offset that
        map input pixels back: image = input / scale + offset."""
        width, height = self.config.input_size
        if box is None:
            box = np.array([0, 0, image.shape[1], image.shape[0]], float)
        centre = (box[:2] + box[2:]) / 2
        size = np.maximum(box[2:] - box[:2], MIN_BOX_FRACTION * max(image.shape[:2])) * self.config.box_padding
        size = np.maximum(size, [size[1] * width / height, size[0] * height / width])
        scale = width / size[0]
        offset = centre - np.array([width, height]) / (2 * scale)
        warp = np.array([[scale, 0, -scale * offset[0]], [0, scale, -scale * offset[1]]])
        crop = cv2.warpAffine(image, warp, (width, height), flags=cv2.INTER_LINEAR)
        return crop, scale, offset

    def detect(self, image: np.ndarray, box: np.ndarray | None = None) -> np.ndarray:
        """(J, 3) x, y in ``image`` pixels and confidence in [0, 1], for an HxWx3 RGB uint8 image."""
        config = self.config
        crop, scale, offset = self._crop(image, box)
        if config.channels == "bgr":
            crop = crop[..., ::-1]
        tensor = ((crop.astype(np.float32) - np.asarray(config.mean, np.float32)) / np.asarray(config.std, np.float32))
        try:
            outputs = self.session.run(None, {self.input_name: tensor.transpose(2, 0, 1)[None]})
        except Exception as exc:  # onnxruntime's own exception types: wrong input rank, type, ...
            raise InputError(config.model, f"the model cannot run on a {tensor.shape} image ({exc})") from exc
        if config.output == "heatmap":
            heatmaps = np.asarray(outputs[0], np.float32)[0]
            joints, rows, cols = heatmaps.shape
            flat = heatmaps.reshape(joints, -1)
            peak = flat.argmax(1)
            width, height = config.input_size
            xy = np.stack([(peak % cols + 0.5) * width / cols, (peak // cols + 0.5) * height / rows], 1) - 0.5
            confidence = flat.max(1)
        else:
            simcc_x, simcc_y = (np.asarray(o, np.float32)[0] for o in outputs[:2])
            xy = np.stack([simcc_x.argmax(1), simcc_y.argmax(1)], 1) / config.simcc_split_ratio
            confidence = np.minimum(simcc_x.max(1), simcc_y.max(1))
        if len(xy) != len(self.joints):
            raise InputError(config.model, f"the model gives {len(xy)} joints; {config.joint_set} has "
                                           f"{len(self.joints)}")
        keypoints = np.concatenate([xy / scale + offset, np.clip(confidence, 0, 1)[:, None]], 1)
        return np.nan_to_num(keypoints).astype(np.float32)


class TrackingDetector:
    """Detections frame after frame: each view's box comes from its previous frame's detections when that frame
    was the last one detected, else the full frame is searched."""

    def __init__(self, config: DetectorConfig):
        self.detector = PoseDetector(config)
        self.joint_set = config.joint_set
        self.notes: list[str] | None = None  # the built-in detector's tracker says what each view contributed
        self.previous: tuple[int, list[np.ndarray]] | None = None  # (frame, keypoints per view)

    def detect_views(self, frame: int, images: list[np.ndarray]) -> np.ndarray:
        if any(image is None for image in images):
            raise ValueError("every view needs an image for the detector")
        last = self.previous[1] if self.previous and self.previous[0] == frame - 1 else [None] * len(images)
        minimum = self.detector.config.tracking_confidence
        keypoints = [self.detector.detect(image, None if k is None else box_from_keypoints(k, minimum))
                     for image, k in zip(images, last)]
        self.previous = frame, keypoints
        return np.stack(keypoints)

"""The built-in 2D detector: Google's BlazePose (Apache-2.0; the pose detector and the "full" landmark model of
mediapipe 0.10.21, baked to ONNX by packaging/bake_pose_detector.py), run with onnxruntime on the CPU.

Per view and frame, as BlazePose's own tracking graph does it: the person detector (an SSD on a 224x224
letterboxed frame) finds people and, for each, the hip centre and a point that sets the body's scale and
rotation; a rotated square around them (x1.25) is cropped to 256x256 for the landmark model, which gives 33
landmarks with their visibility, heatmaps that refine them, and the two alignment points that place the next
frame's crop, so the detector runs again only when the person is lost. The 33 landmarks become COCO-17, from
which core.joints makes the H36M-17 evidence.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from core.resources import DETECTOR_DIR

DETECTION_SIZE, LANDMARK_SIZE = 224, 256
DETECTION_MIN_SCORE = 0.5
NMS_OVERLAP = 0.3
ROI_SCALE = 1.25
PRESENCE_MIN = 0.5  # the landmark model's pose flag below this: the person is lost, detect again
REFINE_KERNEL, REFINE_MIN_CONFIDENCE = 7, 0.5
# BlazePose's 33 landmarks that are COCO-17's points, in COCO-17's order.
BLAZEPOSE_TO_COCO17 = (0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28)
HIP_CENTRE, SCALE_POINT = 33, 34  # the landmark model's alignment points (the detector's keypoints 0 and 1)


def ssd_anchors() -> np.ndarray:
    """(2254, 2) anchor centres in [0, 1] of the person detector: strides 8, 16 and 32 (three layers), two
    anchors per cell and layer, all of unit size."""
    centres = []
    for stride, layers in ((8, 1), (16, 1), (32, 3)):
        cells = DETECTION_SIZE // stride
        y, x = np.mgrid[0:cells, 0:cells]
        grid = np.stack([(x + 0.5) / cells, (y + 0.5) / cells], -1).reshape(-1, 1, 2)
        centres.append(np.repeat(grid, 2 * layers, axis=1).reshape(-1, 2))
    return np.concatenate(centres).astype(np.float32)


@dataclass(frozen=True)
class Region:
    """A rotated square of the image: centre and side in pixels, rotation in radians (clockwise on screen)."""
    centre: np.ndarray
    size: float
    rotation: float

    @classmethod
    def from_alignment(cls, hip_centre: np.ndarray, scale_point: np.ndarray) -> Region:
        """BlazePose's crop: centred on the hips, twice the distance to the scale point, x1.25, turned so that
        the scale point lies straight above the hips."""
        direction = scale_point - hip_centre
        rotation = np.pi / 2 - np.arctan2(-direction[1], direction[0])
        rotation = (rotation + np.pi) % (2 * np.pi) - np.pi
        return cls(hip_centre.astype(np.float64), 2 * float(np.linalg.norm(direction)) * ROI_SCALE, float(rotation))

    def crop_to_image(self) -> np.ndarray:
        """2x3 affine from crop pixels (LANDMARK_SIZE square) to image pixels."""
        scale = self.size / LANDMARK_SIZE
        c, s = np.cos(self.rotation), np.sin(self.rotation)
        linear = scale * np.array([[c, -s], [s, c]])
        return np.concatenate([linear, (self.centre - linear @ np.full(2, LANDMARK_SIZE / 2))[:, None]], 1)


def _sigmoid(logits: np.ndarray) -> np.ndarray:
    """The models' scores, visibilities and heatmaps are logits (clipped: no overflow, the same probabilities)."""
    return 1 / (1 + np.exp(-np.clip(logits, -80, 80)))


def _weighted_nms(boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray) -> list[tuple[np.ndarray, float]]:
    """BlazePose's weighted non-maximum suppression: overlapping detections averaged by score.
    boxes (N, 4) as x0, y0, x1, y1; returns [(keypoints (K, 2), score)] best first."""
    order = np.argsort(-scores)
    remaining = list(order)
    people = []
    while remaining:
        best = remaining[0]
        x0 = np.maximum(boxes[best, 0], boxes[remaining, 0])
        y0 = np.maximum(boxes[best, 1], boxes[remaining, 1])
        x1 = np.minimum(boxes[best, 2], boxes[remaining, 2])
        y1 = np.minimum(boxes[best, 3], boxes[remaining, 3])
        inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
        areas = np.prod(boxes[remaining, 2:] - boxes[remaining, :2], 1)
        iou = inter / np.maximum(areas[0] + areas - inter, 1e-9)
        cluster = [r for r, o in zip(remaining, iou) if o > NMS_OVERLAP]
        weights = scores[cluster] / scores[cluster].sum()
        people.append((np.tensordot(weights, keypoints[cluster], 1), float(scores[best])))
        remaining = [r for r, o in zip(remaining, iou) if o <= NMS_OVERLAP]
    return people


class BlazePose:
    """The two ONNX sessions; `people` finds every person of an image, `landmarks` measures one of them."""

    def __init__(self, directory=DETECTOR_DIR):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        providers = ["CPUExecutionProvider"]
        self.detector = onnxruntime.InferenceSession(str(directory / "pose_detection.onnx"), options, providers=providers)
        self.landmarker = onnxruntime.InferenceSession(str(directory / "pose_landmark_full.onnx"), options,
                                                       providers=providers)
        self.anchors = ssd_anchors()

    def _detect_window(self, image: np.ndarray, x0: int, y0: int, side: int) -> np.ndarray:
        """(N, 13) detections of the square window at (x0, y0) of that side (letterboxed where it passes the
        image): box x0, y0, x1, y1, 4 keypoints' x, y, score, all in image pixels."""
        scale = DETECTION_SIZE / side
        warp = np.array([[scale, 0, -x0 * scale], [0, scale, -y0 * scale]])
        window = cv2.warpAffine(image, warp, (DETECTION_SIZE, DETECTION_SIZE), flags=cv2.INTER_LINEAR)
        tensor = (window.astype(np.float32) / 127.5 - 1).transpose(2, 0, 1)[None]
        raw, logits = self.detector.run(None, {self.detector.get_inputs()[0].name: tensor})
        scores = _sigmoid(logits[0, :, 0])
        keep = scores >= DETECTION_MIN_SCORE
        raw, anchors = raw[0, keep] / DETECTION_SIZE, self.anchors[keep]
        centres, half = raw[:, :2] + anchors, raw[:, 2:4] / 2
        points = np.concatenate([centres - half, centres + half, (raw[:, 4:12].reshape(-1, 4, 2) + anchors[:, None])
                                 .reshape(-1, 8)], 1)
        return np.concatenate([points * side + np.tile([x0, y0], 6), scores[keep, None]], 1)

    def people(self, image: np.ndarray) -> list[tuple[Region, float]]:
        """Every person the detector finds in an HxWx3 RGB uint8 image, as crop regions with their score, best
        first. The detector sees 224x224 pixels: a tall or wide frame is also searched in overlapping squares
        of its shorter side, where people far from the camera are twice as large."""
        height, width = image.shape[:2]
        long, short = max(height, width), min(height, width)
        windows = [((width - long) // 2, (height - long) // 2, long)]
        if long > 1.3 * short:
            count = int(np.ceil(2 * long / short)) - 1
            for offset in np.linspace(0, long - short, count).round().astype(int):
                windows.append((offset, 0, short) if width > height else (0, offset, short))
        found = np.concatenate([self._detect_window(image, *w) for w in windows])
        if not len(found):
            return []
        people = _weighted_nms(found[:, :4], found[:, 4:12].reshape(-1, 4, 2), found[:, 12])
        return [(Region.from_alignment(points[0], points[1]), score) for points, score in people]

    def landmarks(self, image: np.ndarray, region: Region) -> tuple[np.ndarray, float, Region]:
        """(33, 3) landmarks in image pixels with their visibility, the pose flag, and the next frame's region."""
        to_image = region.crop_to_image()
        to_crop = cv2.invertAffineTransform(to_image)
        crop = cv2.warpAffine(image, to_crop, (LANDMARK_SIZE, LANDMARK_SIZE), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT)
        tensor = (crop.astype(np.float32) / 255).transpose(2, 0, 1)[None]
        outputs = self.landmarker.run(None, {self.landmarker.get_inputs()[0].name: tensor})
        points, flag, heatmaps = outputs[0][0].reshape(-1, 5), float(outputs[1][0, 0]), outputs[3][0]
        xy = _refined(points[:, :2], heatmaps)
        visibility = _sigmoid(points[:, 3])
        in_image = xy @ to_image[:, :2].T + to_image[:, 2]
        following = Region.from_alignment(in_image[HIP_CENTRE], in_image[SCALE_POINT])
        return np.concatenate([in_image[:33], visibility[:33, None]], 1), flag, following


def _refined(xy: np.ndarray, heatmaps: np.ndarray) -> np.ndarray:
    """Landmarks (crop pixels) moved to the mean of their heatmap's window where the heatmap is confident."""
    rows, cols, count = heatmaps.shape
    refined = xy.copy()
    half = REFINE_KERNEL // 2
    for k in range(min(count, len(xy))):
        col, row = int(xy[k, 0] / LANDMARK_SIZE * cols), int(xy[k, 1] / LANDMARK_SIZE * rows)
        r0, r1, c0, c1 = max(row - half, 0), min(row + half + 1, rows), max(col - half, 0), min(col + half + 1, cols)
        if r0 >= r1 or c0 >= c1:
            continue
        window = _sigmoid(heatmaps[r0:r1, c0:c1, k])
        if window.max() < REFINE_MIN_CONFIDENCE or window.sum() <= 0:
            continue
        grid_r, grid_c = np.mgrid[r0:r1, c0:c1]
        refined[k] = [(grid_c * window).sum() / window.sum() / cols * LANDMARK_SIZE,
                      (grid_r * window).sum() / window.sum() / rows * LANDMARK_SIZE]
    return refined

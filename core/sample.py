"""`MultiviewSample`: what the model reads for one moment in time, seen by V calibrated cameras."""
from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import numpy as np

from core.cameras import Camera
from core.errors import InputError
from core.joints import JOINT_SETS, JointSet

log = logging.getLogger(__name__)
MAX_CONFIDENCE = 1.5  # above this a "confidence" is no probability; up to it, clipped to 1 (some heatmap peaks)
# Codecs store frames in blocks of 16 pixels: a calibration of the padded frame (1088 for 1080) fits its video.
CODEC_PADDING = 15
_PADDING_TOLD: set[tuple[str, str]] = set()  # (source, view) already warned of a padded calibrated size
HEATMAP_ROUNDING = 1e-3  # float16 and resampling may dip heatmaps just below zero


def checked_confidences(confidence: np.ndarray, source) -> np.ndarray:
    """Detector scores as probabilities: up to `MAX_CONFIDENCE` clipped to 1 (with a warning), any other value
    outside 0..1 refused."""
    if confidence.min(initial=0.0) < 0 or confidence.max(initial=0.0) > MAX_CONFIDENCE:
        raise InputError(source, f"keypoint scores range over {confidence.min():.3g}..{confidence.max():.3g}; "
                                 "expected confidences in 0..1")
    if confidence.max(initial=0.0) > 1:
        log.warning("%s: keypoint scores up to %.3f clipped to 1", source, confidence.max())
    return np.minimum(confidence, 1.0)


@dataclass
class GroundTruth:
    """Known body for evaluation: SMPL parameters in world coordinates (smplx naming) and/or 3D joints."""

    global_orient: np.ndarray | None = None  # (3,) axis-angle
    body_pose: np.ndarray | None = None  # (69,) axis-angle
    betas: np.ndarray | None = None  # (10,)
    transl: np.ndarray | None = None  # (3,) metres
    joints3d: np.ndarray | None = None  # (J, 3) metres, in `joint_set` order
    joint_set: str = "h36m17"
    body_model: str = ""  # identity of the body model the SMPL parameters belong to
    occluded: np.ndarray | None = None  # (V, J) bool: joint hidden by an occluder in that view

    def __post_init__(self):
        if self.joints3d is not None:
            self.joints3d = np.array(self.joints3d, dtype=np.float64)
            if np.isinf(self.joints3d).any():
                raise ValueError("ground-truth joints contain infinity")
            self.joints3d[np.isnan(self.joints3d).any(1)] = np.nan  # a joint with an unknown coordinate is unknown

    @property
    def known_joints(self) -> np.ndarray:
        """(J,) bool: the joints with finite coordinates (a database may lack some: NaN); none without joints3d."""
        return np.zeros(0, bool) if self.joints3d is None else np.isfinite(self.joints3d).all(axis=1)

    @property
    def has_smpl(self) -> bool:
        return self.body_pose is not None and self.betas is not None and self.global_orient is not None

    def smpl_fits(self, body_identity: str) -> bool:
        """Whether the SMPL parameters can be posed with that body model: they belong to the model they were
        made with (an unrecorded model is trusted)."""
        return self.has_smpl and self.body_model in ("", body_identity)


@dataclass
class MultiviewSample:
    """V views of one frame. Frames are HxWx3 uint8 RGB (None where no image is available); 2D evidence is
    keypoints (V, J, 3 = x, y, confidence in [0, 1]) in image pixels and/or heatmaps (V, J, h, w)."""

    name: str
    cameras: list[Camera]
    frames: list[np.ndarray | None]
    keypoints: np.ndarray | None = None
    heatmaps: np.ndarray | None = None
    joint_set: str = "h36m17"
    ground_truth: GroundTruth | None = None
    source: str = ""  # the folder it was read from: ``open_sequence(source)[frame]`` reads it again
    frame: int = 0
    calibration: str = ""  # another calibration file its cameras come from (core.sequence.with_calibration)
    evidence_notes: list[str] | None = None  # per view, where its evidence came from (the built-in detector's choice)

    def __post_init__(self):
        views = len(self.cameras)
        where = self.source or self.name
        if views == 0:
            raise InputError(where, "a sample needs at least one camera")
        if len(self.frames) != views:
            raise InputError(where, f"{len(self.frames)} frames for {views} cameras")
        if self.joint_set not in JOINT_SETS:
            raise InputError(where, f"unknown joint set {self.joint_set!r}")
        joints = len(JOINT_SETS[self.joint_set])
        self._match_image_sizes(where)
        if self.keypoints is None and self.heatmaps is None:
            raise InputError(where, "no 2D evidence: give keypoints and/or heatmaps")
        if self.keypoints is not None:
            self.keypoints = np.asarray(self.keypoints, dtype=np.float32)
            if self.keypoints.shape != (views, joints, 3):
                raise InputError(where, f"keypoints have shape {self.keypoints.shape}, expected ({views}, {joints}, 3)")
            if not np.all(np.isfinite(self.keypoints)):
                raise InputError(where, "keypoints contain NaN or infinity")
            self._check_keypoints(where)
        if self.heatmaps is not None:
            self.heatmaps = np.asarray(self.heatmaps, dtype=np.float32)
            if self.heatmaps.ndim != 4 or self.heatmaps.shape[:2] != (views, joints):
                raise InputError(where, f"heatmaps have shape {self.heatmaps.shape}, "
                                        f"expected ({views}, {joints}, h, w)")
            if not np.all(np.isfinite(self.heatmaps)):
                raise InputError(where, "heatmaps contain NaN or infinity")
            if self.heatmaps.min(initial=0.0) < -HEATMAP_ROUNDING:
                raise InputError(where, "heatmaps have negative values")

    def _match_image_sizes(self, where: str) -> None:
        """Each image has its camera's size; where the calibration only guessed the size, or gave the padded size
        of a video frame a few pixels larger, the image's replaces it (in a copy of the camera list, which callers
        may share); any other difference is refused."""
        self.cameras = list(self.cameras)
        for v, (cam, frame) in enumerate(zip(self.cameras, self.frames)):
            if frame is None or frame.shape[:2] == (cam.height, cam.width):
                continue
            short = cam.width - frame.shape[1], cam.height - frame.shape[0]
            if cam.size_guessed:
                log.info("%s: view %s is %dx%d, not the guessed %dx%d", where, cam.name, frame.shape[1],
                         frame.shape[0], cam.width, cam.height)
            elif 0 <= min(short) and max(short) <= CODEC_PADDING:
                if (where, cam.name) not in _PADDING_TOLD:  # once: a sequence makes a sample per frame
                    _PADDING_TOLD.add((where, cam.name))
                    log.warning("%s: view %s is %dx%d, the calibration's %dx%d less what a video codec pads: its "
                                "image is taken as the calibrated frame's top-left part", where, cam.name,
                                frame.shape[1], frame.shape[0], cam.width, cam.height)
            else:
                raise InputError(where, f"view {cam.name}: image is {frame.shape[1]}x{frame.shape[0]} but the "
                                        f"calibration says {cam.width}x{cam.height}")
            padded = None if cam.size_guessed else (cam.width, cam.height)
            self.cameras[v] = replace(cam, width=frame.shape[1], height=frame.shape[0], size_guessed=False,
                                      calibrated_size=padded)

    def _check_keypoints(self, where: str) -> None:
        """Confidences are probabilities (`checked_confidences`); the confident joints of each view lie near its
        image and do not all sit at one point; some view sees some joint. Evidence that cannot be right is
        refused rather than turned into a confident-looking mesh."""
        self.keypoints[..., 2] = confidence = checked_confidences(self.keypoints[..., 2], where)
        if not (confidence > 0).any():
            raise InputError(where, "no view has a detected joint (every keypoint confidence is 0)")
        for cam, points in zip(self.cameras, self.keypoints):
            seen = points[points[:, 2] > 0, :2]
            if not len(seen):
                continue
            size = np.array([cam.width, cam.height], dtype=np.float64)
            if (seen < -size).any() or (seen > 2 * size).any():
                raise InputError(where, f"view {cam.name}: keypoints lie far outside its {cam.width}x{cam.height} "
                                        "image")
            if len(seen) > 1 and np.ptp(seen, axis=0).max() < 1.0:
                raise InputError(where, f"view {cam.name}: all {len(seen)} detected joints lie at one point")

    @property
    def num_views(self) -> int:
        return len(self.cameras)

    @property
    def view_names(self) -> list[str]:
        return [c.name for c in self.cameras]

    @property
    def joints(self) -> JointSet:
        return JOINT_SETS[self.joint_set]

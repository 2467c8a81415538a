"""One person among several, in every view and frame: the built-in detector's people associated across calibrated
views by how well they triangulate, and that person followed from frame to frame.

Real scenes have bystanders, and a view's most prominent person is often not the others' (the one who walks past
the camera). In the first frame, every pair of detections in two views is triangulated; the pair that agrees
best grows into a group by adding, in each other view, the detection nearest the group's reprojected joints.
Of the groups seen in the most views, the one nearest the point the cameras look at is the subject. Later frames
follow each view's landmark crop (BlazePose's tracking) and check it against the previous frame's joints
reprojected: a view that lost the person or switched to another is detected afresh and the detection nearest
the reprojection is taken; a view where none is near enough is left without evidence for that frame.

The detector swaps a person's left and right now and then (seen from behind, or in an unusual pose: on the
Pose2Sim demo, cam02's view of the subject for 25 frames on end). A swapped view neither triangulates with the
others nor gives the network the right evidence, so every comparison also tries each detection with left and
right exchanged and keeps whichever agrees; a group of views keeps the labelling most of its views had.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, replace

import numpy as np

from core.blazepose import BLAZEPOSE_TO_COCO17, PRESENCE_MIN, BlazePose, Region
from core.cameras import Camera
from core.fusion import triangulate
from core.joints import COCO17

MIN_CONFIDENCE = 0.5  # keypoints below this are not used to associate
MIN_COMMON_JOINTS = 6  # two detections are compared on at least this many joints both see
AGREEMENT = 0.04  # a detection belongs to a person when its median distance to the reprojection is within this
#                   fraction of the image diagonal (77 px on a 1080x1920 frame)


@dataclass
class Detection:
    keypoints: np.ndarray  # (17, 3) COCO-17 in image pixels, with confidence
    following: Region  # where the landmark model looks in the next frame
    tracked: bool  # found by following the previous frame's crop, not by the person detector
    swapped: bool = False  # left and right exchanged from what the detector said

    def mirrored(self) -> Detection:
        """The same detection with every left joint and its right twin exchanged."""
        return replace(self, keypoints=self.keypoints[COCO17.flip_permutation], swapped=not self.swapped)


@dataclass
class ViewChoice:
    """What one view contributed to a frame, for the panel to say."""
    people: int  # detections considered in that view
    used: bool  # whether one of them was taken as the subject
    tracked: bool  # whether it came from following the previous frame
    swapped: bool = False  # whether its left and right were exchanged to agree with the other views

    def describe(self) -> str:
        if not self.used:
            return f"detector: none of {self.people} people agrees with the other views"
        how = "followed" if self.tracked else "detected"
        return (f"detector: the subject, {how}" + (f" (of {self.people} people)" if self.people > 1 else "")
                + (", left and right swapped back" if self.swapped else ""))


def _unknown_joints() -> np.ndarray:
    return np.full((len(COCO17), 3), np.nan)


def _distance(detection: Detection, joints3d: np.ndarray, camera: Camera) -> float:
    """Median pixel distance of a detection's confident joints to ``joints3d`` reprojected into its view
    (infinite with fewer than MIN_COMMON_JOINTS joints to compare)."""
    known = np.all(np.isfinite(joints3d), axis=1)
    projected, depth = camera.project(np.nan_to_num(joints3d))
    use = known & (depth > 0) & (detection.keypoints[:, 2] >= MIN_CONFIDENCE)
    if use.sum() < MIN_COMMON_JOINTS:
        return np.inf
    return float(np.median(np.linalg.norm(detection.keypoints[use, :2] - projected[use], axis=1)))


def _agrees(detection: Detection, joints3d: np.ndarray, camera: Camera) -> bool:
    return _distance(detection, joints3d, camera) <= AGREEMENT * float(np.hypot(camera.width, camera.height))


def _nearest(detections: list[Detection], joints3d: np.ndarray, camera: Camera) -> Detection | None:
    """The detection nearest ``joints3d`` reprojected, as given or with left and right exchanged, if it agrees
    with them."""
    if not detections:
        return None
    either = [d for detection in detections for d in (detection, detection.mirrored())]
    best = either[int(np.argmin([_distance(d, joints3d, camera) for d in either]))]
    return best if _agrees(best, joints3d, camera) else None


def _as_most_labelled(group: dict[int, Detection]) -> dict[int, Detection]:
    """The group with every view exchanged back when most of its views had to be exchanged: the detector's
    labels are right more often than not, and exchanging every view triangulates the same points."""
    if 2 * sum(d.swapped for d in group.values()) <= len(group):
        return group
    return {v: d.mirrored() for v, d in group.items()}


def _joints3d(chosen: dict[int, Detection], cameras: list[Camera]) -> np.ndarray:
    views = sorted(chosen)
    keypoints = np.stack([chosen[v].keypoints for v in views]).astype(np.float64)
    try:
        return triangulate(keypoints, [cameras[v] for v in views], COCO17, min_confidence=MIN_CONFIDENCE).joints3d
    except ValueError:  # no joint seen confidently by two views
        return _unknown_joints()


def _seed_error(pair: dict[int, Detection], cameras: list[Camera]) -> float:
    """How far a pair of views' detections lie from their own triangulation (the worse of the two, px), infinite
    when either is beyond agreement."""
    joints3d = _joints3d(pair, cameras)
    if not all(_agrees(d, joints3d, cameras[v]) for v, d in pair.items()):
        return np.inf
    return max(_distance(d, joints3d, cameras[v]) for v, d in pair.items())


def _grow(seed: dict[int, Detection], candidates: list[list[Detection]], cameras: list[Camera]):
    """The seed pair's group: each other view's detection nearest its reprojected joints, if near enough."""
    group = dict(seed)
    joints3d = _joints3d(group, cameras)
    for view, detections in enumerate(candidates):
        if view not in group and (nearest := _nearest(detections, joints3d, cameras[view])) is not None:
            group[view] = nearest
    group = _as_most_labelled(group)
    joints3d = _joints3d(group, cameras)
    error = np.mean([_distance(d, joints3d, cameras[v]) for v, d in group.items()])
    return group, joints3d, error


def _looked_at(cameras: list[Camera]) -> np.ndarray:
    """The point nearest every camera's optical axis (least squares): where the capture volume is."""
    A, b = np.zeros((3, 3)), np.zeros(3)
    for camera in cameras:
        axis = camera.R[2] / np.linalg.norm(camera.R[2])
        across = np.eye(3) - np.outer(axis, axis)
        A += across
        b += across @ camera.center
    return np.linalg.lstsq(A, b, rcond=None)[0]


def associate(candidates: list[list[Detection]], cameras: list[Camera]) -> tuple[dict[int, Detection], np.ndarray]:
    """The subject's detection per view ({view: detection}, views without one left out) and its joints (17, 3),
    from every view's detections; empty with NaN joints when no two views agree."""
    groups = []
    for a, b in itertools.combinations(range(len(cameras)), 2):
        for da, db in itertools.product(candidates[a], candidates[b]):
            pairs = ({a: da, b: db}, {a: da, b: db.mirrored()})
            errors = [_seed_error(pair, cameras) for pair in pairs]
            if np.isfinite(min(errors)):
                groups.append(_grow(pairs[int(np.argmin(errors))], candidates, cameras))
    if not groups:
        return {}, _unknown_joints()
    most = max(len(g[0]) for g in groups)
    centre = _looked_at(cameras)

    def distance_to_centre(joints3d):
        finite = joints3d[np.all(np.isfinite(joints3d), axis=1)]
        return np.linalg.norm(finite.mean(0) - centre) if len(finite) else np.inf
    group, joints3d, _ = min((g for g in groups if len(g[0]) == most), key=lambda g: (distance_to_centre(g[1]), g[2]))
    return group, joints3d


class MultiviewTracker:
    """The built-in detector over a sequence: `detect_views` gives each frame's (V, 17, 3) COCO-17 keypoints
    of the one subject (confidence 0 in views without them) and `choices` what each view contributed."""

    joint_set = COCO17.name

    def __init__(self, cameras: list[Camera], model: BlazePose | None = None):
        self.cameras = cameras
        self.model = model or BlazePose()
        self.previous: tuple[int, dict[int, Detection], np.ndarray] | None = None  # frame, chosen, joints
        self.choices: list[ViewChoice] = []

    @property
    def notes(self) -> list[str]:
        """What each view contributed to the last frame, in words."""
        return [choice.describe() for choice in self.choices]

    def _measured(self, image: np.ndarray, region: Region, tracked: bool) -> Detection | None:
        landmarks, flag, following = self.model.landmarks(image, region)
        if flag < PRESENCE_MIN:
            return None
        return Detection(landmarks[list(BLAZEPOSE_TO_COCO17)].astype(np.float32), following, tracked)

    def _detected(self, image: np.ndarray) -> list[Detection]:
        found = (self._measured(image, region, tracked=False) for region, _ in self.model.people(image))
        return [d for d in found if d is not None]

    def detect_views(self, frame: int, images: list[np.ndarray]) -> np.ndarray:
        if any(image is None for image in images):
            raise ValueError("every view needs an image for the detector")
        previous = self.previous if self.previous and self.previous[0] == frame - 1 else None
        if previous is None or not np.isfinite(previous[2]).any():
            candidates = [self._detected(image) for image in images]
            chosen, joints3d = associate(candidates, self.cameras)
            counts = [len(c) for c in candidates]
        else:
            chosen, counts = {}, []
            for view, (image, camera) in enumerate(zip(images, self.cameras)):
                followed = previous[1].get(view)
                measured = self._measured(image, followed.following, tracked=True) if followed else None
                candidates = [measured] if measured else []
                subject = _nearest(candidates, previous[2], camera)
                if subject is None:
                    candidates = self._detected(image)
                    subject = _nearest(candidates, previous[2], camera)
                counts.append(len(candidates))
                if subject is not None:
                    chosen[view] = subject
            joints3d = _joints3d(chosen, self.cameras) if len(chosen) >= 2 else _unknown_joints()
        self.previous = frame, chosen, joints3d
        self.choices = [ViewChoice(counts[v], v in chosen, v in chosen and chosen[v].tracked,
                                   v in chosen and chosen[v].swapped) for v in range(len(images))]
        keypoints = np.zeros((len(images), len(COCO17), 3), np.float32)
        for view, detection in chosen.items():
            keypoints[view] = detection.keypoints
        return keypoints

"""Synthetic multiview samples from the body model: a posed person, a camera rig, rendered frames, faulty 2D
evidence and the ground truth. Used for the bundled sample scene, tests and (later) training.

World frame: metres, z up, ground at z = 0 (EasyMocap's convention). The body model is y up, so its global
orientation includes the quarter turn that stands it up.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

import numpy as np
import torch

from core.appearance import camera_faults, clothing_colors, random_background
from core.body_model import BodyModel
from core.cameras import Camera, look_at
from core.joints import H36M17, SMPL24
from core.render import Mesh, box_mesh, clustered, render
from core.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from core.sample import GroundTruth, MultiviewSample

# Joint limits (degrees) of the left side and the spine, as Euler angles about the body's x (left), y (up) and
# z (forward) axes in the rest pose; the right side mirrors them (y and z negated). Angles are drawn around a
# relaxed centre (`RELAXED_CENTRE`, else 0) with a spread of a quarter of the range, then clipped to the limits.
LEFT_AND_CENTRE_LIMITS = {
    "left_hip": ((-90, 25), (-20, 20), (-10, 40)),
    "left_knee": ((0, 130), (0, 0), (0, 0)),
    "left_ankle": ((-20, 35), (-10, 10), (-10, 10)),
    "spine1": ((-10, 25), (-15, 15), (-10, 10)),
    "spine2": ((-5, 15), (-10, 10), (-8, 8)),
    "spine3": ((-5, 15), (-10, 10), (-8, 8)),
    "neck": ((-15, 25), (-25, 25), (-10, 10)),
    "head": ((-15, 20), (-25, 25), (-10, 10)),
    "left_collar": ((0, 0), (-10, 10), (-10, 10)),
    "left_shoulder": ((-40, 40), (-80, 30), (-80, 30)),
    "left_elbow": ((0, 0), (-140, 0), (0, 0)),
    "left_wrist": ((-30, 30), (-20, 20), (-40, 40)),
}
RELAXED_CENTRE = {"left_shoulder": (0, -10, -60), "left_elbow": (0, -25, 0), "left_knee": (10, 0, 0)}


@dataclass
class RigConfig:
    """Ranges of a random camera rig around the person (H36M-like by default)."""

    views: int = 4
    distance: tuple[float, float] = (3.0, 4.5)
    height: tuple[float, float] = (0.8, 2.0)
    focal_factor: tuple[float, float] = (0.9, 1.3)  # focal length in units of the image width
    image_size: tuple[int, int] = (512, 512)
    azimuth_jitter_deg: float = 15.0
    radial_distortion: float = 0.04
    # Real rigs are set up around a capture volume, not around the person: with person_offset > 0 the cameras
    # surround and look at a point up to this many metres (horizontally) from the person, at a height drawn from
    # aim_height, so the person is off the optical axis and seen obliquely; roll_deg turns each camera about its
    # axis by up to that much. All zero: the cameras look at the person, level, as the rigs of runs 1-12.
    person_offset: float = 0.0
    aim_height: tuple[float, float] = (0.9, 0.9)
    roll_deg: float = 0.0


# Rigs shaped like those of public multiview datasets: view count, camera distances and heights, field of view
# (focal length over image width) and aspect ratio, approximately, as their calibrations give them; rendered at
# about 512 pixels wide, since the network sees crops and fields of view matter, not pixel counts. "ring" is the
# default rig (the one the shipped checkpoint was trained with).
RIG_PRESETS = {
    "ring": RigConfig(),
    "h36m": RigConfig(views=4, distance=(4.0, 6.0), height=(1.3, 1.9), focal_factor=(1.13, 1.16),
                      image_size=(500, 500), azimuth_jitter_deg=10.0),
    "mpi_inf_3dhp": RigConfig(views=8, distance=(3.0, 4.5), height=(0.3, 2.6), focal_factor=(0.72, 0.75),
                              image_size=(512, 512)),
    "behave": RigConfig(views=4, distance=(1.8, 3.0), height=(0.8, 1.6), focal_factor=(0.46, 0.5),
                        image_size=(512, 384)),
    "rich": RigConfig(views=8, distance=(3.0, 7.0), height=(0.5, 2.5), focal_factor=(0.8, 1.3),
                      image_size=(548, 400)),
    # Video cameras, not a dataset: 16:9 landscape (phones and camcorders, about 0.7-0.85 widths; zoomed in up to
    # 1.2) and 9:16 portrait (a phone held upright: about 0.75 of the long side, 1.3 widths), near enough that
    # the frame edge cuts the person in some views, as it does in real footage.
    "video": RigConfig(views=4, distance=(2.5, 6.0), height=(0.8, 2.0), focal_factor=(0.7, 1.2),
                       image_size=(512, 288)),
    "portrait": RigConfig(views=4, distance=(1.5, 4.5), height=(0.8, 2.0), focal_factor=(1.2, 1.9),
                          image_size=(288, 512)),
    # A rig shaped like Pose2Sim's real demo (its calibration: four portrait cameras 1.7-2.1 m high, 2.4-4.4 m from
    # the middle, looking 18-25 degrees down, rolled by up to 24 degrees, 1.55 widths), with the person anywhere
    # in the volume.
    "volume": RigConfig(views=4, distance=(2.5, 4.5), height=(1.5, 2.3), focal_factor=(1.2, 1.8),
                        image_size=(288, 512), person_offset=0.8, aim_height=(0.4, 1.0), roll_deg=25.0),
}


def rig_preset(name: str, views: int | None = None, width: int | None = None) -> RigConfig:
    """A preset of `RIG_PRESETS`, with another view count and/or rendered width (same aspect ratio) if given."""
    if name not in RIG_PRESETS:
        raise ValueError(f"unknown rig {name!r}; known: {', '.join(RIG_PRESETS)}")
    rig = RIG_PRESETS[name]
    if width is not None:
        rig = replace(rig, image_size=(width, round(width * rig.image_size[1] / rig.image_size[0])))
    return replace(rig, views=views) if views is not None else rig


@dataclass
class EvidenceFaults:
    """How a 2D detector goes wrong; the defaults give a plausible, imperfect detector."""

    jitter_px: float = 3.0
    miss_probability: float = 0.03
    occluded_miss_probability: float = 0.6
    swap_probability: float = 0.1  # per view: one limb's left and right are exchanged
    # A detector's joints are not the body model's (BlazePose's hips, shoulders and head top lie 17-27 px from
    # them on a person 1000 px tall, wrists and the pelvis 8 px): per sample and joint, one 3D offset that every
    # view sees, of this spread in metres per axis for the worst joints (`DEFINITION_SPREAD` scales the others);
    # triangulation cannot average it away as it does jitter. The directions are random, not the detector's own.
    definition_offset_m: float = 0.0


# How far each H36M-17 joint's definition differs between detectors and the body model, relative to the worst.
DEFINITION_SPREAD = np.array([0.3 if n in ("pelvis", "spine", "left_wrist", "right_wrist") else
                              1.0 if n in ("left_hip", "right_hip", "left_shoulder", "right_shoulder", "head_top") else
                              0.6 for n in H36M17.names])


def _limits_table() -> np.ndarray:
    """(24, 3, 3) radians per SMPL joint and axis: (low, high, relaxed centre); zeros for fixed joints."""
    table = np.zeros((len(SMPL24), 3, 3))
    for name, axes in LEFT_AND_CENTRE_LIMITS.items():
        entry = np.radians(np.column_stack([axes, RELAXED_CENTRE.get(name, (0, 0, 0))]))
        table[SMPL24.index(name)] = entry
        if name.startswith("left_"):
            mirrored = entry * np.array([[1], [-1], [-1]])
            mirrored[:, :2] = np.sort(mirrored[:, :2], axis=1)
            table[SMPL24.index("right_" + name[5:])] = mirrored
    return table


JOINT_LIMITS = _limits_table()


def euler_xyz_to_axis_angle(euler: np.ndarray) -> np.ndarray:
    """(..., 3) intrinsic x-then-y-then-z angles -> (..., 3) axis-angle."""
    e = torch.as_tensor(euler, dtype=torch.float64)
    basis = torch.eye(3, dtype=torch.float64)
    rx, ry, rz = (axis_angle_to_matrix(e[..., i: i + 1] * basis[i]) for i in range(3))
    return matrix_to_axis_angle(rx @ ry @ rz).numpy()


def random_body_pose(rng: np.random.Generator) -> np.ndarray:
    """(69,) axis-angle body pose drawn around a relaxed stance, inside the joint limits."""
    low, high, centre = JOINT_LIMITS[..., 0], JOINT_LIMITS[..., 1], JOINT_LIMITS[..., 2]
    euler = np.clip(centre + rng.normal(0, 1, low.shape) * (high - low) / 4, low, high)  # (24, 3)
    return euler_xyz_to_axis_angle(euler)[1:].reshape(-1)


def standing_orientation(yaw: float) -> np.ndarray:
    """Axis-angle that stands the y-up body model on the z-up ground, turned by ``yaw`` about z."""
    stand = axis_angle_to_matrix(torch.tensor([np.pi / 2, 0.0, 0.0], dtype=torch.float64))
    turn = axis_angle_to_matrix(torch.tensor([0.0, 0.0, yaw], dtype=torch.float64))
    return matrix_to_axis_angle(turn @ stand).numpy()


def bent_at_the_hips(global_orient: np.ndarray, body_pose: np.ndarray, pitch: float) -> tuple[np.ndarray, np.ndarray]:
    """(global orientation, body pose) of the body bent forward by ``pitch`` radians at the hips: the pelvis tips
    forward and both thighs turn back by as much, so the legs stand as drawn while the trunk leans over. Upright
    pelvises alone leave out how people stand when they reach, lift or crouch (the real demo clip leans 30-42
    degrees in half its frames; `random_body_pose`'s spine alone gives at most about 20)."""
    tip = axis_angle_to_matrix(torch.tensor([pitch, 0.0, 0.0], dtype=torch.float64))
    orient = matrix_to_axis_angle(axis_angle_to_matrix(torch.as_tensor(global_orient, dtype=torch.float64)) @ tip)
    pose = body_pose.reshape(-1, 3).copy()
    for hip in ("left_hip", "right_hip"):
        i = SMPL24.index(hip) - 1  # body_pose leaves out the root
        pose[i] = matrix_to_axis_angle(tip.T @ axis_angle_to_matrix(torch.as_tensor(pose[i]))).numpy()
    return orient.numpy(), pose.reshape(-1)


def random_rig(rng: np.random.Generator, target: np.ndarray, config: RigConfig) -> list[Camera]:
    """Cameras spread around ``target`` (azimuths evenly spaced, jittered), all looking at it, or, with
    `RigConfig.person_offset`, around and at a point of the capture volume near it."""
    width, height = config.image_size
    if config.person_offset > 0:
        bearing, reach = rng.uniform(0, 2 * np.pi), config.person_offset * np.sqrt(rng.uniform())
        target = target + np.array([reach * np.cos(bearing), reach * np.sin(bearing), 0.0])
        target[2] = rng.uniform(*config.aim_height)
    start = rng.uniform(0, 2 * np.pi)
    cameras = []
    for i in range(config.views):
        azimuth = start + 2 * np.pi * i / config.views + np.radians(rng.uniform(-1, 1) * config.azimuth_jitter_deg)
        distance = rng.uniform(*config.distance)
        eye = target + np.array([distance * np.cos(azimuth), distance * np.sin(azimuth), 0.0])
        eye[2] = rng.uniform(*config.height)
        R, t = look_at(eye, target + rng.normal(0, 0.1, 3))
        if config.roll_deg > 0:
            roll = np.radians(rng.uniform(-1, 1) * config.roll_deg)
            c, s = np.cos(roll), np.sin(roll)
            R = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]) @ R
            t = -R @ eye
        focal = width * rng.uniform(*config.focal_factor)
        K = np.array([[focal, 0, width / 2 + rng.normal(0, 3)], [0, focal, height / 2 + rng.normal(0, 3)], [0, 0, 1]])
        dist = np.array([rng.uniform(-1, 1) * config.radial_distortion, 0, 0, 0, 0])
        cameras.append(Camera(f"cam{i + 1:02d}", K, R, t, width, height, dist))
    return cameras


def segment_hits_box(start: np.ndarray, ends: np.ndarray, box_min: np.ndarray, box_max: np.ndarray) -> np.ndarray:
    """For segments start -> ends[k] (K, 3), whether each passes through the axis-aligned box (slab test)."""
    direction = ends - start
    with np.errstate(divide="ignore", invalid="ignore"):
        t0 = (box_min - start) / direction
        t1 = (box_max - start) / direction
    t_near = np.nanmax(np.minimum(t0, t1), axis=1)
    t_far = np.nanmin(np.maximum(t0, t1), axis=1)
    return (t_near <= t_far) & (t_far > 0) & (t_near < 0.98)  # stop short of the joint itself


def face_joints(body: BodyModel, faces: np.ndarray) -> np.ndarray:
    """(F,) the SMPL-24 joint each face moves with (its first vertex's largest skinning weight)."""
    return body.smpl.lbs_weights.argmax(1).numpy()[faces[:, 0]]


def part_colors(body: BodyModel, faces: np.ndarray) -> np.ndarray:
    """One colour per body part, per face."""
    palette = np.array([[70, 110, 180], [220, 120, 70], [90, 170, 110], [200, 180, 90], [160, 100, 170],
                        [90, 170, 190]], dtype=np.uint8)
    groups = {"torso": [0, 3, 6, 9, 13, 14], "head": [12, 15], "left_leg": [1, 4, 7, 10],
              "right_leg": [2, 5, 8, 11], "left_arm": [16, 18, 20, 22], "right_arm": [17, 19, 21, 23]}
    group_of_joint = np.zeros(len(SMPL24), dtype=int)
    for g, joints in enumerate(groups.values()):
        group_of_joint[joints] = g
    return palette[group_of_joint[face_joints(body, faces)]]


def _in_frame(points: np.ndarray, cam: Camera) -> np.ndarray:
    """(J,) whether each (J, 2) pixel position lies inside the camera's image."""
    return (points[:, 0] >= 0) & (points[:, 0] < cam.width) & (points[:, 1] >= 0) & (points[:, 1] < cam.height)


def faulty_keypoints(rng: np.random.Generator, uv: np.ndarray, occluded: np.ndarray, cameras: list[Camera],
                     faults: EvidenceFaults) -> np.ndarray:
    """(V, J, 3) detections from true projections (V, J, 2): jitter, misses, occlusion and left/right swaps."""
    views, joints = occluded.shape
    keypoints = np.zeros((views, joints, 3), dtype=np.float32)
    keypoints[..., :2] = uv + rng.normal(0, faults.jitter_px, uv.shape)
    keypoints[..., 2] = rng.uniform(0.65, 1.0, (views, joints))
    noisy = occluded & (rng.random((views, joints)) >= faults.occluded_miss_probability)
    keypoints[noisy, :2] += rng.normal(0, 4 * faults.jitter_px, (noisy.sum(), 2))
    keypoints[noisy, 2] = rng.uniform(0.1, 0.4, noisy.sum())
    missed = (rng.random((views, joints)) < faults.miss_probability) | (occluded & ~noisy)
    limb_pairs = [("left_wrist", "right_wrist"), ("left_elbow", "right_elbow"), ("left_ankle", "right_ankle"),
                  ("left_knee", "right_knee")]
    for v, cam in enumerate(cameras):
        if rng.random() < faults.swap_probability:
            a, b = (H36M17.index(n) for n in limb_pairs[rng.integers(len(limb_pairs))])
            keypoints[v, [a, b], :2] = keypoints[v, [b, a], :2]
        # A detector reports only what lies in the frame: neither a joint outside it, nor (swapped or jittered) a
        # position outside it.
        missed[v] |= ~_in_frame(uv[v], cam) | ~_in_frame(keypoints[v, :, :2], cam)
    keypoints[missed] = 0.0
    return keypoints


_COARSE: dict[tuple[str, float], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}  # (body, cell) -> clustered()


def coarse_body(body: BodyModel, cell: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The body model's mesh clustered on a grid of ``cell`` metres (`core.render.clustered`), made once."""
    key = (body.identity, cell)
    if key not in _COARSE:
        _COARSE[key] = clustered(body.smpl.v_template.double().numpy(), body.faces, cell)
    return _COARSE[key]


def generate_sample(body: BodyModel, seed: int, rig: RigConfig | None = None, occluders: int = 1,
                    faults: EvidenceFaults | None = None, name: str | None = None,
                    renderer: Callable[[list[Mesh], Camera, np.ndarray | None], np.ndarray] = render,
                    render_cell: float = 0.0, appearance: bool = False, bend_deg: float = 0.0) -> MultiviewSample:
    """One synthetic multiview sample; the same seed always gives the same sample. ``renderer`` draws the frames
    (training passes a faster one, see `core.training.fast_render`); ``render_cell`` > 0 draws the body clustered
    on a grid of that many metres (fewer faces: cheaper frames), else in full; ``appearance`` dresses the person,
    clutters the backgrounds and degrades the frames as a camera does (`core.appearance`, from a generator of
    its own). Only the frames change with either. ``bend_deg`` > 0 bends the body forward at the hips
    (`bent_at_the_hips`) by the absolute value of a normal draw of that spread, from a generator of its own, so
    that everything else stays as the seed draws it."""
    rig = rig or RigConfig()
    faults = faults or EvidenceFaults()
    rng = np.random.default_rng(seed)
    betas = rng.normal(0, 1, body.num_betas).clip(-2.5, 2.5)
    body_pose = random_body_pose(rng)
    global_orient = standing_orientation(rng.uniform(0, 2 * np.pi))
    if bend_deg > 0:
        pitch = np.radians(bend_deg) * abs(np.random.default_rng([seed, 3]).normal())
        global_orient, body_pose = bent_at_the_hips(global_orient, body_pose, pitch)
    with torch.no_grad():
        out = body(torch.tensor(global_orient[None], dtype=torch.float32),
                   torch.tensor(body_pose[None], dtype=torch.float32),
                   torch.tensor(betas[None], dtype=torch.float32))
    vertices = out.vertices[0].double().numpy()
    transl = np.array([rng.uniform(-0.5, 0.5), rng.uniform(-0.5, 0.5), -vertices[:, 2].min()])
    vertices += transl
    joints3d = out.joints_h36m[0].double().numpy() + transl

    target = np.array([transl[0], transl[1], 0.9])
    cameras = random_rig(rng, target, rig)
    looks = np.random.default_rng([seed, 1]) if appearance else None
    colors = part_colors(body, body.faces) if looks is None else clothing_colors(face_joints(body, body.faces), looks)
    if render_cell > 0:
        kept_vertices, kept_faces, face_index = coarse_body(body, render_cell)
        meshes = [Mesh(vertices[kept_vertices], kept_faces, colors[face_index])]
    else:
        meshes = [Mesh(vertices, body.faces, colors)]
    boxes = []
    for k in range(occluders):
        # A box between the person and one camera, tall enough to hide legs or more.
        cam = cameras[(k + rng.integers(len(cameras))) % len(cameras)]
        towards = cam.center[:2] - transl[:2]
        towards /= np.linalg.norm(towards)
        centre_xy = transl[:2] + towards * rng.uniform(0.6, 1.0)
        size = np.array([rng.uniform(0.3, 0.6), rng.uniform(0.3, 0.6), rng.uniform(0.5, 1.0)])
        boxes.append((np.array([*centre_xy, size[2] / 2]), size))
        meshes.append(box_mesh(boxes[-1][0], size))
        if looks is not None:
            meshes[-1].face_colors[:] = looks.uniform(0, 255, 3)

    detected = joints3d
    if faults.definition_offset_m > 0:
        spread = faults.definition_offset_m * DEFINITION_SPREAD[:, None]
        detected = joints3d + np.random.default_rng([seed, 2]).normal(0, 1, joints3d.shape) * spread
    uv = np.stack([cam.project(detected)[0] for cam in cameras])
    occluded = np.zeros((len(cameras), len(H36M17)), dtype=bool)
    for v, cam in enumerate(cameras):
        for centre, size in boxes:
            occluded[v] |= segment_hits_box(cam.center, joints3d, centre - size / 2, centre + size / 2)
    if looks is not None:
        frames = [camera_faults(renderer(meshes, cam, random_background(cam, looks)), looks) for cam in cameras]
    else:
        frames = [renderer(meshes, cam, None) for cam in cameras]
    keypoints = faulty_keypoints(rng, uv, occluded, cameras, faults)
    truth = GroundTruth(global_orient=global_orient, body_pose=body_pose, betas=betas, transl=transl,
                        joints3d=joints3d, joint_set="h36m17", body_model=body.identity, occluded=occluded)
    return MultiviewSample(name=name or f"synthetic-{seed}", cameras=cameras, frames=frames, keypoints=keypoints,
                           joint_set="h36m17", ground_truth=truth)

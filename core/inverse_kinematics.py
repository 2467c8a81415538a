"""Closed-form inverse kinematics: an SMPL-layout pose whose H36M-17 bones point where given 3D joints' do.

Why: the network's iteration 0 used to be the mean pose, and most of what its few decoder passes learnt was the
long way from there to the person. In calibrated mode the triangulated joints already say where the thighs,
shins, arms, trunk and head point; turning each body part's rest bone onto them, from the pelvis outwards, gives
a start a few centimetres from the truth for a few milliseconds, and leaves the decoder the corrections (the
joints' definitions, shape, noise) that the heatmap comparison is good at. Nothing is iterated: every rotation
comes from bone directions (a hinge plane for knees and elbows), so the result is deterministic.

Joints that are missing (NaN) leave their bones at the rest pose. `body_from_joints` adds the shape (the joints
are affine in the betas at a fixed pose: a ridge least-squares solve) and turns the posed torso onto the given one.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from core.body_model import JointArrays
from core.cameras import MAX_DISTORTION, project_camera_points
from core.fusion import TORSO, procrustes_rotation
from core.joints import H36M17, SMPL24

_H = {name: H36M17.index(name) for name in H36M17.names}
_S = {name: SMPL24.index(name) for name in SMPL24.names}
# Limbs as (SMPL joint at the root of the limb, SMPL joint at its hinge, H36M joints at its root, hinge and end,
# rest hinge axis in the body frame). The rest pose is SMPL's T-pose (y up, z forward, x to the body's left):
# a knee bends the shin backwards about +x; an elbow, in the T-pose with the palms down, bends the forearm
# forwards, about -y on the left arm and +y on the right.
_LIMBS = (("left_hip", "left_knee", "left_hip", "left_knee", "left_ankle", (1.0, 0.0, 0.0)),
          ("right_hip", "right_knee", "right_hip", "right_knee", "right_ankle", (1.0, 0.0, 0.0)),
          ("left_shoulder", "left_elbow", "left_shoulder", "left_elbow", "left_wrist", (0.0, -1.0, 0.0)),
          ("right_shoulder", "right_elbow", "right_shoulder", "right_elbow", "right_wrist", (0.0, 1.0, 0.0)))
_SPINE = ("spine1", "spine2", "spine3")
_LIMB_ENDS = [H36M17.index(f"{side}_{joint}") for side in ("left", "right")
              for joint in ("knee", "ankle", "elbow", "wrist")]
_STRAIGHT_SINE = 0.4  # below this sine of a limb's bend (about 24 degrees) its hinge plane is trusted less


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.sqrt(v @ v)), 1e-9)


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The cross product of two 3-vectors (np.cross costs ten times as much on one pair)."""
    return np.array([a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]])


def _frame(primary: np.ndarray, secondary: np.ndarray) -> np.ndarray:
    """(3, 3) orthonormal frame whose columns are ``primary``, ``secondary`` made orthogonal to it, and their
    cross product."""
    x = _unit(primary)
    y = _unit(secondary - (secondary @ x) * x)
    return np.stack([x, y, _cross(x, y)], axis=-1)


def _swing(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(3, 3) the smallest rotation turning direction ``source`` onto direction ``target`` (the identity where
    they point opposite ways, which no limb does between two of its own joints)."""
    a, b = _unit(source), _unit(target)
    axis, cosine = _cross(a, b), float(a @ b)
    if cosine < -0.999:
        return np.eye(3)
    cross = np.array([[0.0, -axis[2], axis[1]], [axis[2], 0.0, -axis[0]], [-axis[1], axis[0], 0.0]])
    return np.eye(3) + cross + cross @ cross / (1.0 + cosine)  # Rodrigues' formula in sine and cosine


def _fraction(rotation: np.ndarray, share: float) -> np.ndarray:
    """``rotation`` turned by ``share`` of its angle about the same axis."""
    return cv2.Rodrigues(cv2.Rodrigues(rotation)[0] * share)[0]


def _known(*vectors: np.ndarray) -> bool:
    return all(np.isfinite(v).all() for v in vectors)


def _bones(rest: np.ndarray, joints: np.ndarray):
    """bone(a, b): the rest and given (3,) vectors from H36M joint a to joint b."""
    def bone(a: str, b: str) -> tuple[np.ndarray, np.ndarray]:
        return rest[_H[b]] - rest[_H[a]], joints[_H[b]] - joints[_H[a]]
    return bone


def pelvis_orientation(rest: np.ndarray, joints: np.ndarray) -> np.ndarray | None:
    """(3, 3) the rotation that turns the rest hip line and pelvis-to-spine bone onto those of ``joints`` (17, 3);
    None where a hip, the pelvis or the spine is unknown."""
    bone = _bones(rest, joints)
    (hips_rest, hips), (up_rest, up) = bone("right_hip", "left_hip"), bone("pelvis", "spine")
    return _frame(hips, up) @ _frame(hips_rest, up_rest).T if _known(hips, up) else None


def pose_from_joints(rest: np.ndarray, joints: np.ndarray, global_orient: np.ndarray) -> np.ndarray:
    """Body pose (23, 3, 3) whose bones point as ``joints`` (17, 3) H36M-17 (NaN where unknown) do, for a body
    whose rest-pose joints are ``rest`` (17, 3) and whose pelvis is turned by ``global_orient`` (3, 3).

    The three spine joints share the turn of the thorax and shoulder line; the neck and head share that of the
    head; the hips and shoulders turn the upper limb onto its bone with the limb's bend in its hinge plane, the
    knees and elbows the lower limb onto its bone. Collars, wrists, ankles and feet stay at rest."""
    local = np.tile(np.eye(3), (24, 1, 1))
    bone = _bones(rest, joints)
    pelvis = global_orient

    (shoulders_rest, shoulders), (trunk_rest, trunk) = bone("right_shoulder", "left_shoulder"), bone("pelvis", "thorax")
    trunk_turn = np.eye(3)
    if _known(shoulders, trunk):
        trunk_turn = _frame(pelvis.T @ shoulders, pelvis.T @ trunk) @ _frame(shoulders_rest, trunk_rest).T
    local[[_S[name] for name in _SPINE]] = _fraction(trunk_turn, 1.0 / len(_SPINE))
    chest = pelvis @ trunk_turn  # spine3's rotation

    (head_rest, head), (face_rest, face) = bone("thorax", "head_top"), bone("thorax", "neck_nose")
    if _known(head, face):
        head_turn = _frame(chest.T @ head, chest.T @ face) @ _frame(head_rest, face_rest).T
        local[[_S["neck"], _S["head"]]] = _fraction(head_turn, 0.5)

    for root, hinge, a, b, c, axis in _LIMBS:
        (upper_rest, upper), (lower_rest, lower) = bone(a, b), bone(b, c)
        if not _known(upper):
            continue
        parent = pelvis if root.endswith("hip") else chest  # collars stay at rest
        upper_local = parent.T @ upper
        swing = _swing(upper_rest, upper_local)
        if not _known(lower):  # no hinge plane: the smallest turn of the upper bone
            local[_S[root]] = swing
            continue
        lower_local = parent.T @ lower
        axis_rest = np.asarray(axis)
        carried_axis = swing @ axis_rest  # the rest hinge axis carried by the smallest turn of the upper bone
        bend_axis = _cross(_unit(upper_local), _unit(lower_local))
        sine = float(np.linalg.norm(bend_axis))
        bend_axis = _unit(bend_axis) * (1.0 if bend_axis @ carried_axis >= 0 else -1.0)
        trust = min(sine / _STRAIGHT_SINE, 1.0)
        hinge_axis = _unit(trust * bend_axis + (1.0 - trust) * carried_axis)
        upper_turn = _frame(upper_local, hinge_axis) @ _frame(upper_rest, axis_rest).T
        local[_S[root]] = upper_turn
        local[_S[hinge]] = _swing(lower_rest, upper_turn.T @ lower_local)
    return local[1:]


@dataclass
class BodyFromJoints:
    global_orient: np.ndarray  # (3, 3) body -> the joints' frame
    body_pose: np.ndarray  # (23, 3, 3)
    betas: np.ndarray  # (num_betas,)


def _posed(arrays: JointArrays, rotations: np.ndarray, betas: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The body of ``arrays`` posed by ``rotations`` (24, 3, 3) with ``betas`` (nb,), at no translation: its
    joints' world rotations (24, 3, 3) and centres (24, 3), each H36M joint's share carried by each transform
    (17, 24, 3; the joints are their sums over the transforms) and the joints' slopes in the betas (17, 3, nb),
    exact since at a fixed pose the joints are affine in the betas."""
    rest = np.concatenate([arrays.joint_template[..., None], arrays.joint_shapedirs], -1)  # (24, 3, 1 + nb)
    rest[..., 0] += arrays.joint_shapedirs @ betas
    world = np.empty((24, 3, 3))
    centres = np.empty_like(rest)  # each joint's posed centre (column 0) and its slopes in the betas
    world[0], centres[0] = rotations[0], rest[0]
    for k, parent in enumerate(arrays.parents[1:], start=1):
        world[k] = world[parent] @ rotations[k]
        centres[k] = world[parent] @ (rest[k] - rest[parent]) + centres[parent]
    moved = centres - world @ rest  # each skinning transform's translation, and its slopes
    blended = arrays.h36m_rest + arrays.h36m_shapedirs @ betas
    if arrays.h36m_posedirs is not None:
        blended = blended + arrays.h36m_posedirs @ (rotations[1:] - np.eye(3)).ravel()
    weights = arrays.translation_weights
    shares = np.einsum("kab,jkb->jka", world, blended) + weights[..., None] * moved[None, :, :, 0]
    beta_slopes = (np.einsum("kab,jkbn->jan", world, arrays.h36m_shapedirs)
                   + np.einsum("jk,kan->jan", weights, moved[..., 1:]))
    return world, centres[..., 0], shares, beta_slopes


def _shape(body, global_orient: np.ndarray, body_pose: np.ndarray, joints: np.ndarray, ridge: float
           ) -> tuple[np.ndarray, np.ndarray]:
    """(nb,) the shape whose root-relative H36M joints, in this pose, come closest to the known ``joints`` (17, 3),
    and those joints (17, 3): exact ridge least squares, since at a fixed pose the joints are affine in the betas."""
    nb = body.num_betas
    _, _, shares, slopes = _posed(body.joint_arrays, np.concatenate([global_orient[None], body_pose]), np.zeros(nb))
    base = shares.sum(1)
    base, slopes = base - base[:1], (slopes - slopes[:1]).reshape(-1, nb)  # (17, 3), (51, nb)
    known = np.repeat(np.isfinite(joints).all(-1), 3)
    residual = (joints - base).ravel()[known]
    betas = np.linalg.solve(slopes[known].T @ slopes[known] + ridge * np.eye(nb), slopes[known].T @ residual)
    return betas, base + (slopes @ betas).reshape(-1, 3)


def body_from_joints(body, rest_joints: np.ndarray, joints: np.ndarray, fallback_orient: np.ndarray,
                     ridge: float = 1e-3, limb_pass: bool = True) -> BodyFromJoints:
    """Orientation, pose and shape of ``body`` (a `BodyModel`; its rest-pose H36M joints ``rest_joints`` (17, 3))
    whose H36M joints match ``joints`` (17, 3), relative to the root (NaN where unknown), in one closed-form pass:
    the pelvis from the hips and spine (``fallback_orient`` (3, 3) where unknown), the pose from the bones, the
    shape from the joints, then the orientation again, from the posed torso turned onto the given one, and the
    pose and shape once more for it; with ``limb_pass``, the limbs then turned by what the posed body misses."""
    rest = np.asarray(rest_joints, dtype=np.float64)
    joints = np.asarray(joints, dtype=np.float64)
    orient = pelvis_orientation(rest, joints)
    orient = np.asarray(fallback_orient, dtype=np.float64) if orient is None else orient
    pose = pose_from_joints(rest, joints, orient)
    betas, posed = _shape(body, orient, pose, joints, ridge)
    known = [j for j in TORSO if np.isfinite(joints[j]).all()]
    if len(known) >= 3:
        source, aim = posed[known], joints[known]
        orient = procrustes_rotation(source - source.mean(0), aim - aim.mean(0)).T @ orient
        pose = pose_from_joints(rest, joints, orient)
        betas, posed = _shape(body, orient, pose, joints, ridge)
    if limb_pass:
        goal = joints.copy()
        goal[_LIMB_ENDS] += np.nan_to_num(joints[_LIMB_ENDS] - posed[_LIMB_ENDS])
        pose = pose_from_joints(rest, goal, orient)
        betas, _ = _shape(body, orient, pose, joints, ridge)
    return BodyFromJoints(orient, pose, betas)


def _joints_and_slopes(body, rotations: np.ndarray, betas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """H36M joints (17, 3) of ``body`` posed by ``rotations`` (24, 3, 3) with ``betas``, at no translation, and
    their slopes (17, 3, 72 + nb): each rotation turned by a local increment w (R <- R exp(w)), and each beta.
    A rotation's effect is analytic: the joint's share carried by the bones below turns about that joint's centre;
    the betas' effect is exact (affine at a fixed pose). A user's SMPL file's pose correctives are left out of the
    slopes (the free model has none)."""
    arrays = body.joint_arrays
    world, centres, shares, beta_slopes = _posed(arrays, rotations, betas)
    below, weights = arrays.descendants, arrays.translation_weights
    # d joint_k / d w_j = -[s_kj]x W_j, s_kj = the shares below j, about j's centre
    carried = np.einsum("ji,kia->kja", below, shares) - (weights @ below.T)[..., None] * centres[None]
    cross = np.zeros((17, 24, 3, 3))
    cross[..., 0, 1], cross[..., 0, 2], cross[..., 1, 2] = -carried[..., 2], carried[..., 1], -carried[..., 0]
    cross = cross - np.swapaxes(cross, -1, -2)
    turning = np.swapaxes(-cross @ world[None], 1, 2).reshape(17, 3, 72)
    return shares.sum(1), np.concatenate([turning, beta_slopes], -1)


def _turned(rotations: np.ndarray, increments: np.ndarray) -> np.ndarray:
    """``rotations`` (24, 3, 3) each turned by its local increment (72,): R exp(w)."""
    return rotations @ np.stack([cv2.Rodrigues(w)[0] for w in increments.reshape(24, 3)])


def refine_body_to_joints(body, start: BodyFromJoints, joints: np.ndarray, iterations: int,
                          damping: float = 1e-3, ridge: float = 1e-3) -> BodyFromJoints:
    """``start`` moved by ``iterations`` damped Gauss-Newton steps towards the body whose root-relative H36M joints
    are ``joints`` (17, 3) (NaN where unknown). Why: the closed-form body turns bones onto the joints one at a time
    and cannot follow them exactly (12-13 mm off the joint prior's joints, docs/training-design.md); a joint
    solve over every rotation and the shape at once can, and each step is one posed body and a small linear solve
    (`_joints_and_slopes`). ``damping`` (m^2 per rad^2) keeps the rotations the joints do not pin (hands, feet,
    twists) where they are; ``ridge`` pulls the betas towards the mean."""
    known = np.isfinite(joints).all(-1)
    if iterations <= 0 or known.sum() < 3:
        return start
    nb = body.num_betas
    target = joints[known]
    rotations = np.concatenate([start.global_orient[None], start.body_pose])  # (24, 3, 3)
    betas = np.asarray(start.betas, dtype=np.float64)
    regulariser = np.diag(np.concatenate([np.full(72, damping), np.full(nb, ridge)]))
    for _ in range(iterations):
        posed, slopes = _joints_and_slopes(body, rotations, betas)
        jacobian = (slopes - slopes[:1])[known]  # root-relative
        residual = (posed - posed[:1])[known] - target
        step = _damped_step(jacobian, residual, np.ones(len(target)), regulariser,
                            np.concatenate([np.zeros(72), ridge * betas]), normalise=False)
        rotations = _turned(rotations, step[:72])
        betas = betas + step[72:]
    return BodyFromJoints(rotations[0], rotations[1:], betas)


def _pixel_rows(in_cameras: np.ndarray, cameras, keypoints: np.ndarray, robust_sigma: float
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """The views' reprojection residuals (V, J, 2) of points ``in_cameras`` (V, J, 3; each camera's frame) against
    ``keypoints`` (V, J, 3: pixels, confidence), in image diagonals; each residual's weight (V, J) in iteratively
    reweighted least squares on the classical fit's confidence-weighted Geman-McClure cost (``robust_sigma``
    diagonals); the pixels' slopes in the points (V, J, 2, 3), in diagonals (distortion left out of them); and
    the cost itself."""
    K = np.stack([c.K for c in cameras])
    dist = np.stack([np.pad(c.dist, (0, MAX_DISTORTION - c.dist.size)) for c in cameras])
    uv, depth = (x.numpy() for x in project_camera_points(torch.from_numpy(in_cameras), torch.from_numpy(K),
                                                          torch.from_numpy(dist)))
    diagonal = np.array([np.hypot(c.width, c.height) for c in cameras])[:, None, None]
    residual = (uv - keypoints[..., :2]) / diagonal
    confidence = np.where(keypoints[..., 2] > 0, keypoints[..., 2], 0.0) * (depth > 0)
    squared = (residual ** 2).sum(-1)
    weight = confidence * robust_sigma ** 2 / (squared + robust_sigma ** 2) ** 2  # the cost's slope in ``squared``
    cost = float((confidence * squared / (squared + robust_sigma ** 2)).sum())
    z = np.clip(depth, 1e-6, None)[..., None, None]
    local = np.concatenate([np.broadcast_to(np.eye(2), z.shape[:2] + (2, 2)) / z,
                            -in_cameras[..., :2, None] / z ** 2], -1)  # pinhole: (V, J, 2, 3)
    return residual, weight, K[:, None, :2, :2] @ local / diagonal[..., None], cost


def _damped_step(jacobian: np.ndarray, residual: np.ndarray, weight: np.ndarray, regulariser: np.ndarray,
                 prior_gradient: np.ndarray, normalise: bool = True) -> np.ndarray:
    """One damped, weighted Gauss-Newton step (P,) from residuals (..., D) with a ``weight`` (...) each and their
    slopes ``jacobian`` (..., D, P) in the parameters; ``regulariser`` (P, P) and ``prior_gradient`` (P,) add the
    priors; with ``normalise``, the data term is divided by the weights' sum (reweighted robust costs)."""
    # in torch: NumPy's OpenBLAS would start threads of its own for these products, and they stay spinning for a
    # while after, against torch's (the next network pass took twice as long)
    rows = torch.from_numpy(np.ascontiguousarray(jacobian).reshape(-1, jacobian.shape[-1]))
    weights = torch.from_numpy(np.repeat(weight.ravel(), residual.shape[-1]).astype(np.float64))
    total = max(float(weight.sum()), 1e-12) if normalise else 1.0
    normal = rows.T @ (weights[:, None] * rows) / total
    gradient = rows.T @ (weights * torch.from_numpy(residual.ravel())) / total + torch.from_numpy(prior_gradient)
    return torch.linalg.solve(normal + torch.from_numpy(regulariser), -gradient).numpy()


def fit_body_to_views(body, start: BodyFromJoints, root: np.ndarray, keypoints: np.ndarray, cameras,
                      iterations: int, robust_sigma: float = 0.15, damping: float = 1e-4, ridge: float = 1e-5
                      ) -> BodyFromJoints:
    """``start`` (world axes, its pelvis at ``root``) moved by ``iterations`` damped Gauss-Newton steps towards
    the views' 2D evidence ``keypoints`` (V, 17, 3: pixels, confidence) in calibrated ``cameras``: the baseline's
    confidence-weighted Geman-McClure reprojection error (``robust_sigma`` of the image diagonal), reweighted at
    every step. Why: the start is read off triangulated joints, which drop a joint that one view alone sees and
    keep the error of a view that disagrees; the fit reads every view's evidence as the classical fit does, from a
    start already near it, in a step or two. ``damping`` and ``ridge`` (per rad^2 and per unit beta, in squared
    image diagonals) keep what the views do not pin where it is. The body's translation is fitted with it; the
    pelvis stays where it was triangulated (joints are compared relative to it)."""
    keypoints = np.asarray(keypoints, dtype=np.float64)
    if iterations <= 0 or (keypoints[..., 2] > 0).sum() < 3:
        return start
    nb = body.num_betas
    R, t = np.stack([c.R for c in cameras]), np.stack([c.t for c in cameras])
    rotations = np.concatenate([start.global_orient[None], start.body_pose])
    betas = np.asarray(start.betas, dtype=np.float64)
    translation = None  # the body's: its pelvis on ``root`` at first
    regulariser = np.diag(np.concatenate([np.full(72, damping), np.full(nb, ridge), np.zeros(3)]))
    for _ in range(iterations):
        posed, slopes = _joints_and_slopes(body, rotations, betas)
        if translation is None:
            translation = np.asarray(root, dtype=np.float64) - posed[_H["pelvis"]]
        slopes = np.concatenate([slopes, np.broadcast_to(np.eye(3), (17, 3, 3))], -1)  # + the translation
        in_cameras = (posed + translation) @ R.transpose(0, 2, 1) + t[:, None]  # (V, 17, 3)
        residual, weight, pixel_slopes, _ = _pixel_rows(in_cameras, cameras, keypoints, robust_sigma)
        step = _damped_step(pixel_slopes @ np.einsum("vab,jbp->vjap", R, slopes), residual, weight, regulariser,
                            np.concatenate([np.zeros(72), ridge * betas, np.zeros(3)]))
        rotations = _turned(rotations, step[:72])
        betas = betas + step[72:72 + nb]
        translation = translation + step[72 + nb:]
    return BodyFromJoints(rotations[0], rotations[1:], betas)


def fit_body_and_views(body, start: BodyFromJoints, keypoints: np.ndarray, cameras, view_rotations: np.ndarray,
                       view_translations: np.ndarray, iterations: int, robust_sigma: float = 0.05,
                       damping: float = 1e-3, view_damping: float = 1e-6, shape_anchor: float = 1e-2
                       ) -> tuple[BodyFromJoints, np.ndarray]:
    """Uncalibrated mode's start (``start``, world axes, its pelvis at the origin) and the views placed around it
    (``view_rotations`` (V, 3, 3) and ``view_translations`` (V, 3), world -> camera; the first view's axes are the
    world's and stay) moved together by ``iterations`` damped Gauss-Newton steps towards the views' 2D evidence
    ``keypoints`` (V, 17, 3) in ``cameras`` (their intrinsics), on `fit_body_to_views`' robust reprojection error:
    a small bundle adjustment. Why: the views were placed from lifts, one at a time, and the body read off their
    average; every view's joints pin the body and the views better together (docs/training-design.md). The betas
    are held near the start's (``shape_anchor``, per unit beta): the views cannot tell a large body far away from
    a small one nearby, and pulled towards the mean shape the body would shrink or grow to it. With the views free
    a view's gross errors (a swap, a jump) can be explained by turning the view or bending the body, so the robust
    scale is a third of the calibrated fit's and the body's rotations are damped ten times as much (on `h36m` the
    calibrated fit's settings bent two bodies of 30 by 50 mm, docs/training-design.md). A step that raises the
    robust cost is undone and ends the fit. Returns the body and the views' rotations (V, 3, 3)."""
    keypoints = np.asarray(keypoints, dtype=np.float64)
    views = len(cameras)
    if iterations <= 0 or (keypoints[..., 2] > 0).sum() < 3:
        return start, view_rotations
    nb, pelvis = body.num_betas, _H["pelvis"]
    rotations = np.concatenate([start.global_orient[None], start.body_pose])
    start_betas = np.asarray(start.betas, dtype=np.float64)
    betas, turns, shifts = start_betas.copy(), np.array(view_rotations, dtype=np.float64), \
        np.array(view_translations, dtype=np.float64)
    body_count, turn_count = 72 + nb, 3 * (views - 1)  # then the views' turns (all but the first), then shifts
    regulariser = np.diag(np.concatenate([np.full(72, damping), np.full(nb, shape_anchor),
                                          np.full(turn_count, view_damping), np.full(3 * views, 1e-9)]))
    accepted, accepted_cost = None, np.inf
    for done in range(iterations + 1):
        posed, slopes = _joints_and_slopes(body, rotations, betas)
        relative, slopes = posed - posed[pelvis], slopes - slopes[pelvis]
        turned = np.einsum("vab,jb->vja", turns, relative)  # (V, 17, 3): the body turned into each camera
        residual, weight, pixel_slopes, cost = _pixel_rows(turned + shifts[:, None], cameras, keypoints,
                                                           robust_sigma)
        if cost > accepted_cost:  # a step that raised the robust cost: the views and body went astray; undone
            break
        accepted, accepted_cost = (rotations, betas, turns), cost
        if done == iterations:
            break
        jacobian = np.zeros(residual.shape + (body_count + turn_count + 3 * views,))
        jacobian[..., :body_count] = pixel_slopes @ np.einsum("vab,jbp->vjap", turns, slopes)
        cross = np.zeros(turned.shape + (3,))  # -[p]x: the slope of R p in a turn exp(w) R of the camera
        cross[..., 0, 1], cross[..., 0, 2], cross[..., 1, 2] = turned[..., 2], -turned[..., 1], turned[..., 0]
        cross = cross - np.swapaxes(cross, -1, -2)
        for v in range(views):
            if v:
                jacobian[v, ..., body_count + 3 * (v - 1): body_count + 3 * v] = pixel_slopes[v] @ cross[v]
            jacobian[v, ..., body_count + turn_count + 3 * v: body_count + turn_count + 3 * (v + 1)] = pixel_slopes[v]
        prior = np.concatenate([np.zeros(72), shape_anchor * (betas - start_betas), np.zeros(turn_count + 3 * views)])
        step = _damped_step(jacobian, residual, weight, regulariser, prior)
        rotations = _turned(rotations, step[:72])
        betas = betas + step[72:body_count]
        turns = np.stack([turns[0]] + [cv2.Rodrigues(step[body_count + 3 * (v - 1): body_count + 3 * v])[0]
                                       @ turns[v] for v in range(1, views)])
        shifts = shifts + step[body_count + turn_count:].reshape(views, 3)
    rotations, betas, turns = accepted
    return BodyFromJoints(rotations[0], rotations[1:], betas), turns

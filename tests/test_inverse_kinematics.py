"""Closed-form inverse kinematics (`core.inverse_kinematics`): iteration 0 of a network whose `pose_init` is
"triangulated"."""
from __future__ import annotations

import cv2
import numpy as np
import torch

from core.inverse_kinematics import BodyFromJoints, body_from_joints, pose_from_joints, refine_body_to_joints
from core.joints import H36M17, SMPL24
from core.rotations import axis_angle_to_matrix
from core.synthetic import random_body_pose, standing_orientation


def _joints(body, orient: np.ndarray, pose: np.ndarray, betas: np.ndarray) -> np.ndarray:
    """(17, 3) root-relative H36M joints of rotation matrices (3, 3), (23, 3, 3) and betas."""
    with torch.no_grad():
        joints = body.joints_h36m(torch.as_tensor(orient, dtype=torch.float32)[None, None],
                                  torch.as_tensor(pose, dtype=torch.float32)[None],
                                  torch.as_tensor(betas, dtype=torch.float32)[None])[0].numpy()
    return joints - joints[H36M17.index("pelvis")]


def _rest(body) -> np.ndarray:
    with torch.no_grad():
        return body.rest().joints_h36m[0].numpy()


def _random_bodies(count: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        orient = axis_angle_to_matrix(torch.as_tensor(standing_orientation(rng.uniform(-np.pi, np.pi)))).numpy()
        pose = axis_angle_to_matrix(torch.as_tensor(random_body_pose(rng)).reshape(23, 3)).numpy()
        yield orient, pose, rng.normal(0, 1, 10)


def test_the_body_models_own_joints_give_back_a_close_body(body):
    """Given the joints of random training bodies (pose, shape and turn), the closed-form body is within a few
    centimetres of them — five times closer than the mean pose and shape turned the same way — and its rotations
    are rotations."""
    errors, mean_pose_errors = [], []
    rest = _rest(body)
    for orient, pose, betas in _random_bodies(12):
        joints = _joints(body, orient, pose, betas)
        fit = body_from_joints(body, rest, joints, np.eye(3))
        rotations = np.concatenate([fit.global_orient[None], fit.body_pose])
        np.testing.assert_allclose(rotations @ np.swapaxes(rotations, -1, -2), np.tile(np.eye(3), (24, 1, 1)),
                                   atol=1e-6)
        np.testing.assert_allclose(np.linalg.det(rotations), 1.0, atol=1e-6)
        errors.append(np.linalg.norm(_joints(body, fit.global_orient, fit.body_pose, fit.betas) - joints, axis=-1))
        still = _joints(body, orient, np.tile(np.eye(3), (23, 1, 1)), np.zeros(10))
        mean_pose_errors.append(np.linalg.norm(still - joints, axis=-1))
    assert np.mean(errors) < 0.035, np.mean(errors)
    assert np.mean(errors) < np.mean(mean_pose_errors) / 5, (np.mean(errors), np.mean(mean_pose_errors))


def test_a_bent_knee_and_elbow_come_back_with_their_bend(body):
    """A knee bent by 90 degrees and an elbow by 60 are read back as bent by that much, about the hinge they bend
    about, with the thigh where it was (the regressed joints move with the skin around a bent joint: the pass
    that turns the limbs by what the posed body misses makes up for it)."""
    pose = np.tile(np.eye(3), (23, 1, 1))
    knee = axis_angle_to_matrix(torch.tensor([np.pi / 2, 0.0, 0.0], dtype=torch.float64)).numpy()
    elbow = axis_angle_to_matrix(torch.tensor([0.0, -np.pi / 3, 0.0], dtype=torch.float64)).numpy()
    pose[SMPL24.index("left_knee") - 1] = knee
    pose[SMPL24.index("left_elbow") - 1] = elbow
    joints = _joints(body, np.eye(3), pose, np.zeros(10))
    found = body_from_joints(body, _rest(body), joints, np.eye(3)).body_pose

    def angle(a, b):
        return np.degrees(np.arccos(np.clip((np.trace(a.T @ b) - 1) / 2, -1, 1)))

    for name, rotation in (("left_knee", knee), ("left_elbow", elbow), ("left_hip", np.eye(3)),
                           ("right_knee", np.eye(3))):
        assert angle(found[SMPL24.index(name) - 1], rotation) < 10, name
    without = body_from_joints(body, _rest(body), joints, np.eye(3), limb_pass=False).body_pose
    assert angle(without[SMPL24.index("left_knee") - 1], knee) > 12


def test_unknown_joints_leave_their_bones_at_rest(body):
    """A joint that was not triangulated (NaN) leaves the bone it ends at rest and nothing else NaN; without the
    hips or spine the given orientation is kept."""
    orient, pose, betas = next(_random_bodies(1, seed=3))
    joints = _joints(body, orient, pose, betas)
    joints[H36M17.index("left_ankle")] = np.nan
    fit = body_from_joints(body, _rest(body), joints, np.eye(3))
    assert np.isfinite(fit.body_pose).all() and np.isfinite(fit.betas).all()
    np.testing.assert_allclose(fit.body_pose[SMPL24.index("left_knee") - 1], np.eye(3), atol=1e-6)
    assert not np.allclose(fit.body_pose[SMPL24.index("right_knee") - 1], np.eye(3), atol=1e-3)

    joints[H36M17.index("spine")] = np.nan
    given = axis_angle_to_matrix(torch.tensor([0.3, -0.2, 0.1], dtype=torch.float64)).numpy()
    found = pose_from_joints(_rest(body), joints, given)
    assert np.isfinite(found).all()
    joints[:] = np.nan
    lost = body_from_joints(body, _rest(body), joints, given)
    np.testing.assert_allclose(lost.global_orient, given)
    np.testing.assert_allclose(lost.body_pose, np.tile(np.eye(3), (23, 1, 1)), atol=1e-6)


def test_gauss_newton_steps_take_the_closed_form_body_onto_the_joints(body):
    """The closed-form body turns one bone at a time and cannot follow the joints exactly; a damped Gauss-Newton
    step over every rotation and the shape (an analytic Jacobian: a wrong one would not converge) takes it most of
    the way, a second nearer still, and the result is a body: rotations that are rotations. A joint not given
    (NaN) is not pulled anywhere and leaves nothing NaN; zero steps return the start itself."""
    rest = _rest(body)
    before, after_one, after_two = [], [], []
    for orient, pose, betas in _random_bodies(4, seed=5):
        joints = _joints(body, orient, pose, betas)
        start = body_from_joints(body, rest, joints, np.eye(3))
        one = refine_body_to_joints(body, start, joints, 1)
        two = refine_body_to_joints(body, start, joints, 2)
        distance = lambda fit: np.linalg.norm(_joints(body, fit.global_orient, fit.body_pose, fit.betas) - joints,
                                              axis=1).mean()
        before.append(distance(start)), after_one.append(distance(one)), after_two.append(distance(two))
        rotations = np.concatenate([two.global_orient[None], two.body_pose])
        np.testing.assert_allclose(rotations @ rotations.transpose(0, 2, 1), np.tile(np.eye(3), (24, 1, 1)),
                                   atol=1e-5)
    assert np.mean(after_one) < 0.5 * np.mean(before), (before, after_one)
    assert np.mean(after_two) < np.mean(after_one), (after_one, after_two)

    joints[H36M17.index("left_wrist")] = np.nan
    partial = refine_body_to_joints(body, start, joints, 1)
    assert np.isfinite(partial.body_pose).all() and np.isfinite(partial.betas).all()
    assert refine_body_to_joints(body, start, joints, 0) is start


def test_the_fits_joint_slopes_are_the_body_models(body):
    """The fits' NumPy joint path gives the body model's joints, and its slopes are the joints' derivatives: in
    each beta (exact: affine at a fixed pose) and in a local turn of each rotation (central differences)."""
    from core.inverse_kinematics import _joints_and_slopes, _turned

    orient, pose, betas = next(_random_bodies(1, seed=8))
    rotations = np.concatenate([orient[None], pose])
    joints, slopes = _joints_and_slopes(body, rotations, betas)
    with torch.no_grad():
        expected = body.joints_h36m(torch.as_tensor(orient, dtype=torch.float32)[None, None],
                                    torch.as_tensor(pose, dtype=torch.float32)[None],
                                    torch.as_tensor(betas, dtype=torch.float32)[None])[0].double().numpy()
    np.testing.assert_allclose(joints, expected, atol=1e-5)
    for i in (0, 5):
        moved = _joints_and_slopes(body, rotations, betas + np.eye(10)[i])[0]
        np.testing.assert_allclose(moved - joints, slopes[..., 72 + i], atol=1e-9)
    for column in (0, 4, 3 * 18 + 2, 3 * 20 + 1):  # the root, the left hip, elbow and wrist
        turn = np.zeros(72)
        turn[column] = 1e-6
        difference = (_joints_and_slopes(body, _turned(rotations, turn), betas)[0]
                      - _joints_and_slopes(body, _turned(rotations, -turn), betas)[0]) / 2e-6
        np.testing.assert_allclose(difference, slopes[..., column], atol=1e-6)


def test_a_fit_to_the_views_moves_the_start_onto_what_every_view_sees(body):
    """From a start read off joints 3 cm off the truth, Gauss-Newton steps on the views' 2D evidence (exact
    projections of the true joints) take the body towards the truth: with the default damping, two steps about
    halfway; nearly undamped, four steps within 3 mm (a wrong Jacobian would not converge). A view whose
    wrist is 150 px off moves that wrist a tenth as far as a plain least-squares fit lets it (15 against 173 mm:
    the error is robust); zero steps, or no evidence, return the start itself."""
    from core.cameras import project_points
    from core.inverse_kinematics import fit_body_to_views
    from core.synthetic import generate_sample, rig_preset

    rest, wrist = _rest(body), H36M17.index("left_wrist")
    rng = np.random.default_rng(3)
    before, after, undamped, wrist_shift = [], [], [], []
    for seed in (11, 12, 13):
        sample = generate_sample(body, seed, rig_preset("ring"))
        truth = sample.ground_truth.joints3d
        root = truth[H36M17.index("pelvis")]
        keypoints = np.stack([np.concatenate([project_points(truth, c)[0], np.ones((17, 1))], 1)
                              for c in sample.cameras])
        start = body_from_joints(body, rest, truth - root + rng.normal(0, 0.03, (17, 3)), np.eye(3))
        distance = lambda fit: np.linalg.norm(_joints(body, fit.global_orient, fit.body_pose, fit.betas)
                                              - (truth - root), axis=1)
        fit = fit_body_to_views(body, start, root, keypoints, sample.cameras, 2)
        before.append(distance(start).mean()), after.append(distance(fit).mean())
        converged = fit_body_to_views(body, start, root, keypoints, sample.cameras, 4, damping=1e-7, ridge=1e-7)
        undamped.append(distance(converged).mean())
        keypoints[0, wrist, :2] += 150.0
        robust = fit_body_to_views(body, start, root, keypoints, sample.cameras, 2)
        plain = fit_body_to_views(body, start, root, keypoints, sample.cameras, 2, robust_sigma=100.0)
        wrist_shift.append([abs(distance(misled)[wrist] - distance(fit)[wrist]) for misled in (robust, plain)])
        assert fit_body_to_views(body, start, root, keypoints, sample.cameras, 0) is start
        keypoints[..., 2] = 0.0
        assert fit_body_to_views(body, start, root, keypoints, sample.cameras, 2) is start
    assert np.mean(after) < 0.6 * np.mean(before), (before, after)  # 41.6 -> 21.3 mm
    assert np.max(undamped) < 0.003, undamped  # 0.5-2.2 mm
    robust_shift, plain_shift = np.mean(wrist_shift, 0)
    assert robust_shift < 0.5 * plain_shift, wrist_shift


def test_an_uncalibrated_fit_moves_the_body_and_its_placed_views_onto_every_views_evidence(body):
    """Uncalibrated mode's bundle adjustment: from a start read off joints 3 cm off the truth (its shape the
    true one: the views cannot tell the body's size) and views placed 4 degrees and about 10 cm off, four nearly
    undamped Gauss-Newton steps on the views' 2D evidence (exact projections) take the body within 3 mm of the
    truth and the views within a tenth of a degree, the first view's rotation (the world's axes) kept (a wrong
    Jacobian would not converge). Zero steps, or no evidence, return the start and the views as given."""
    from core.cameras import project_points
    from core.inverse_kinematics import fit_body_and_views
    from core.rotations import angle_between_deg
    from core.synthetic import generate_sample, rig_preset

    rest, pelvis = _rest(body), H36M17.index("pelvis")
    rng = np.random.default_rng(4)
    turn = lambda degrees: cv2.Rodrigues(rng.normal(0, 1, 3) / np.sqrt(3) * np.radians(degrees))[0]
    body_error, view_error = [], []
    for seed in (21, 22, 23):
        sample = generate_sample(body, seed, rig_preset("ring"))
        truth = sample.ground_truth.joints3d
        keypoints = np.stack([np.concatenate([project_points(truth, c)[0], np.ones((17, 1))], 1)
                              for c in sample.cameras])
        relative = truth - truth[pelvis]
        rotations = np.stack([c.R for c in sample.cameras])
        translations = np.stack([c.R @ truth[pelvis] + c.t for c in sample.cameras])
        placed = np.stack([rotations[0]] + [turn(4.0) @ R for R in rotations[1:]])
        shifted = translations + rng.normal(0, 0.06, translations.shape)
        start = body_from_joints(body, rest, relative + rng.normal(0, 0.03, (17, 3)), np.eye(3))
        start = BodyFromJoints(start.global_orient, start.body_pose, sample.ground_truth.betas)  # the size known
        fit, turned = fit_body_and_views(body, start, keypoints, sample.cameras, placed, shifted, 4, damping=1e-7,
                                         view_damping=1e-9)
        distance = lambda f: np.linalg.norm(_joints(body, f.global_orient, f.body_pose, f.betas) - relative, axis=1)
        body_error.append([distance(start).mean(), distance(fit).mean()])
        view_error.append([np.mean([angle_between_deg(a, b) for a, b in zip(found, rotations)])
                           for found in (placed, turned)])
        np.testing.assert_array_equal(turned[0], placed[0])
        same = fit_body_and_views(body, start, keypoints, sample.cameras, placed, shifted, 0)
        assert same[0] is start and same[1] is placed
        keypoints[..., 2] = 0.0
        assert fit_body_and_views(body, start, keypoints, sample.cameras, placed, shifted, 4)[0] is start
    body_error, view_error = np.mean(body_error, 0), np.mean(view_error, 0)
    assert body_error[1] < 0.003, body_error  # 42.8 -> 0.9 mm
    assert view_error[1] < 0.1, view_error  # 2.8 -> 0.01 degrees

import dataclasses

import numpy as np
import pytest
import torch

from core.dataset_io import read_sample
from core.inference import evaluate
from core.joints import H36M17
from core.metrics import body_height, pa_mpjpe, procrustes_align, view_spread
from core.resources import SAMPLE_SCENE
from core.rotations import axis_angle_to_matrix
from core.trace import RefinementTrace


def random_rotations(n, seed):
    g = torch.Generator().manual_seed(seed)
    return axis_angle_to_matrix(torch.randn(n, 3, generator=g, dtype=torch.float64)).numpy()


def test_procrustes_undoes_a_similarity_transform():
    rng = np.random.default_rng(0)
    points = rng.normal(size=(17, 3))
    moved = 1.7 * points @ random_rotations(1, 0)[0].T + np.array([0.3, -2.0, 5.0])
    np.testing.assert_allclose(procrustes_align(moved, points), points, atol=1e-9)
    assert pa_mpjpe(moved, points) < 1e-6
    assert pa_mpjpe(points + rng.normal(scale=0.01, size=points.shape), points) > 1.0  # ~ millimetres of noise


def fake_trace(sample, joints_camera, display_rotation, offset):
    """A trace whose per-view joints are ``joints_camera`` (I, V, J, 3) placed by ``display_rotation``."""
    iterations, views = joints_camera.shape[:2]
    joints3d = np.einsum("kvab,kvnb->kvna", display_rotation, joints_camera) + offset
    zeros = np.zeros
    return RefinementTrace(
        mode="uncalibrated", view_names=sample.view_names, global_orient=zeros((iterations, views, 3)),
        body_pose=zeros((iterations, views, 69)), betas=zeros((iterations, views, 10)),
        vertices=zeros((iterations, views, 1, 3)), joints3d=joints3d, display_rotation=display_rotation,
        joints2d=zeros((iterations, views, 17, 2)), heatmaps=zeros((iterations, views, 17, 4, 4)),
        input_heatmaps=zeros((views, 17, 4, 4)), input_keypoints=zeros((views, 17, 3)),
        crop_boxes=zeros((views, 4)), fused_vertices=zeros((iterations, 1, 3)), fused_joints3d=joints3d[:, 0],
        faces=zeros((1, 3), dtype=np.int32))


def test_errors_are_measured_in_each_camera_frame_whatever_the_display_placement():
    sample = read_sample(SAMPLE_SCENE)
    truth = sample.ground_truth.joints3d
    R = np.stack([c.R for c in sample.cameras])
    in_camera = np.einsum("vab,nb->vna", R, truth - truth[0])
    display = random_rotations(2 * 4, 3).reshape(2, 4, 3, 3)
    perfect = fake_trace(sample, np.stack([in_camera, in_camera]), display, np.array([1.0, 2.0, 0.5]))
    evaluate(perfect, sample)
    np.testing.assert_allclose(perfect.metrics["mpjpe_mm"], 0, atol=1e-6)
    np.testing.assert_allclose(perfect.metrics["pa_mpjpe_mm"], 0, atol=1e-6)
    np.testing.assert_allclose(perfect.metrics["fused_mpjpe_mm"], 0, atol=1e-6)
    shifted = in_camera.copy()
    shifted[:, 13] += np.array([0.0, 0.017, 0.0])  # the left wrist 17 mm off in every view
    off = fake_trace(sample, np.stack([in_camera, shifted]), display, np.zeros(3))
    evaluate(off, sample)
    np.testing.assert_allclose(off.metrics["mpjpe_mm"], [0.0, 1.0], atol=1e-6)  # 17 mm / 17 joints
    without = dataclasses.replace(sample, ground_truth=None)
    evaluate(off, without)
    assert "mpjpe_mm" not in off.metrics


def test_orientation_error_is_the_angle_to_the_truth_in_each_camera_frame():
    from core.rotations import matrix_to_axis_angle

    sample = read_sample(SAMPLE_SCENE)
    truth = axis_angle_to_matrix(torch.as_tensor(sample.ground_truth.global_orient, dtype=torch.float64)).numpy()
    in_camera = np.stack([c.R @ truth for c in sample.cameras])  # (V, 3, 3)
    turn = axis_angle_to_matrix(torch.tensor([0.0, np.radians(10.0), 0.0], dtype=torch.float64)).numpy()
    joints = sample.ground_truth.joints3d
    trace = fake_trace(sample, np.broadcast_to(joints, (2, 4, 17, 3)), np.broadcast_to(np.eye(3), (2, 4, 3, 3)),
                       np.zeros(3))
    trace.global_orient = matrix_to_axis_angle(torch.as_tensor(np.stack([in_camera, in_camera @ turn]))).numpy()
    evaluate(trace, sample)
    np.testing.assert_allclose(trace.metrics["orient_error_deg"], [0.0, 10.0], atol=1e-3)
    evaluate(trace, dataclasses.replace(sample, ground_truth=dataclasses.replace(sample.ground_truth,
                                                                                 global_orient=None)))
    assert "orient_error_deg" not in trace.metrics


def test_height_and_view_spread_without_ground_truth():
    """Height: head top to the ankles' midpoint; spread: how far, on average, each view's joints lie from the views'
    mean (zero when the views agree)."""
    joints = np.zeros((17, 3))
    joints[H36M17.index("head_top")] = (0, 0, 1.7)
    joints[H36M17.index("left_ankle")], joints[H36M17.index("right_ankle")] = (0.1, 0, 0.1), (-0.1, 0, -0.1)
    assert body_height(joints) == pytest.approx(1.7)
    views = np.stack([joints, joints + (0.02, 0, 0), joints - (0.02, 0, 0)])
    assert view_spread(views[:1].repeat(3, 0)) == pytest.approx(0, abs=1e-12)
    assert view_spread(views) == pytest.approx(2 * 0.02 / 3)
    assert view_spread(np.stack([views, views[:1].repeat(3, 0)])).shape == (2,)

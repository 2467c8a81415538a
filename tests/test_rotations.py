import numpy as np
import torch

from core.rotations import (axis_angle_to_matrix, matrix_to_axis_angle, matrix_to_rot6d, rot6d_to_matrix)


def random_axis_angle(n, max_angle=np.pi * 0.999, seed=0):
    g = torch.Generator().manual_seed(seed)
    axis = torch.nn.functional.normalize(torch.randn(n, 3, generator=g, dtype=torch.float64), dim=-1)
    return axis * torch.rand(n, 1, generator=g, dtype=torch.float64) * max_angle


def test_axis_angle_round_trip_including_small_and_large_angles():
    aa = torch.cat([random_axis_angle(200), torch.zeros(1, 3, dtype=torch.float64),
                    torch.tensor([[1e-7, 0, 0], [0, 0, np.pi - 1e-4]], dtype=torch.float64)])
    torch.testing.assert_close(matrix_to_axis_angle(axis_angle_to_matrix(aa)), aa, atol=1e-6, rtol=1e-6)


def test_matrices_are_rotations_and_match_rodrigues():
    import cv2

    aa = random_axis_angle(20)
    mats = axis_angle_to_matrix(aa)
    eye = torch.eye(3, dtype=torch.float64).expand_as(mats)
    torch.testing.assert_close(mats @ mats.transpose(-1, -2), eye)
    for a, m in zip(aa.numpy(), mats.numpy()):
        np.testing.assert_allclose(m, cv2.Rodrigues(a)[0], atol=1e-12)


def test_6d_round_trip_and_gram_schmidt():
    mats = axis_angle_to_matrix(random_axis_angle(50))
    torch.testing.assert_close(rot6d_to_matrix(matrix_to_rot6d(mats)), mats)
    noisy = matrix_to_rot6d(mats) + 0.05 * torch.randn(50, 6, dtype=torch.float64)
    out = rot6d_to_matrix(noisy)
    torch.testing.assert_close(torch.linalg.det(out), torch.ones(50, dtype=torch.float64))


def test_axis_angle_has_a_gradient_at_the_rest_pose():
    """An optimiser that starts at zero rotation (the SMPLify-style baseline) must be able to leave it."""
    axis_angle = torch.zeros(3, requires_grad=True)
    target = axis_angle_to_matrix(torch.tensor([0.0, 0.3, 0.0]))
    ((axis_angle_to_matrix(axis_angle) - target) ** 2).sum().backward()
    assert axis_angle.grad is not None and axis_angle.grad[1] < -0.1

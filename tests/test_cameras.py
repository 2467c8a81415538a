import cv2
import numpy as np
import pytest
import torch

from core.cameras import Camera, frustum_corners, project_points, project_points_torch, stack_cameras
from core.errors import InputError

from conftest import make_rig


def random_points(n=50, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform([-1, -1, 0], [1, 1, 2], (n, 3))


@pytest.mark.parametrize("coefficients", [5, 8])
def test_projection_matches_opencv(rig, coefficients):
    points = random_points()
    for cam in rig:
        dist = np.resize(cam.dist, coefficients) * (1 if coefficients == 5 else np.r_[np.ones(5), [0.01, -0.02, 0.003]])
        camera = Camera(cam.name, cam.K, cam.R, cam.t, cam.width, cam.height, dist)
        ours, depth = project_points(points, camera)
        theirs, _ = cv2.projectPoints(points, cv2.Rodrigues(camera.R)[0], camera.t, camera.K, camera.dist)
        np.testing.assert_allclose(ours, theirs.reshape(-1, 2), atol=1e-6)
        np.testing.assert_allclose(depth, (points @ camera.R.T + camera.t)[:, 2])


def test_batched_torch_equals_numpy(rig):
    points = random_points()
    batch = stack_cameras(rig, dtype=torch.float64)
    uv, depth = project_points_torch(torch.as_tensor(points)[None].expand(len(rig), -1, -1), **batch)
    for v, cam in enumerate(rig):
        expected, expected_depth = cam.project(points)
        np.testing.assert_allclose(uv[v].numpy(), expected, atol=1e-9)
        np.testing.assert_allclose(depth[v].numpy(), expected_depth, atol=1e-12)


def test_zero_distortion_is_skipped_as_the_identity_it_is(rig):
    from core.cameras import distort, project_camera_points

    points = torch.as_tensor(random_points(), dtype=torch.float32) + torch.tensor([0.0, 0.0, 4.0])
    xy = points[:, :2] / points[:, 2:]
    zeros = torch.zeros(8)
    torch.testing.assert_close(distort(xy, zeros), xy, rtol=0, atol=0)  # what the shortcut relies on
    K = torch.as_tensor(rig[0].K, dtype=torch.float32)
    skipped, _ = project_camera_points(points, K, zeros)
    torch.testing.assert_close(skipped, project_camera_points(points, K, None)[0], rtol=0, atol=0)
    bent, _ = project_camera_points(points, K, torch.tensor([0.1, 0, 0, 0, 0, 0, 0, 0]))
    assert (bent - skipped).abs().max() > 1  # a coefficient that is not zero still bends the image


@pytest.mark.parametrize("dist", [[0.1, -0.02, 0, 0, 0.003, 0, 0, 0], [0.1, 0, 0.002, -0.001, 0, 0, 0, 0],
                                  [0.1, 0, 0, 0, 0, 0.01, -0.02, 0.003]])
def test_distortion_skips_only_terms_that_add_nothing(dist):
    """Radial-only (no tangential, no rational terms) and the other partial models equal OpenCV's full formula
    to the last bit."""
    from core.cameras import distort

    xy = torch.as_tensor(random_points(200)[:, :2], dtype=torch.float32)
    d = torch.tensor(dist)
    k1, k2, p1, p2, k3, k4, k5, k6 = d
    x, y = xy.unbind(-1)
    r2 = x * x + y * y
    radial = (1 + r2 * (k1 + r2 * (k2 + r2 * k3))) / (1 + r2 * (k4 + r2 * (k5 + r2 * k6)))
    full = torch.stack([x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x),
                        y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y], -1)
    torch.testing.assert_close(distort(xy, d), full, rtol=0, atol=0)


def test_projection_is_differentiable(rig):
    batch = stack_cameras(rig)
    points = torch.tensor(random_points(5), dtype=torch.float32, requires_grad=True)
    uv, _ = project_points_torch(points[None].expand(len(rig), -1, -1), **batch)
    uv.sum().backward()
    assert points.grad is not None and torch.isfinite(points.grad).all() and points.grad.abs().sum() > 0


def test_centre_and_frustum(rig):
    cam = make_rig(distortion=False)[0]
    _, depth = cam.project(cam.center[None] + cam.R[2] * 2.0)
    assert depth[0] == pytest.approx(2.0)
    uv, depth = cam.project(frustum_corners(cam, 1.5))
    np.testing.assert_allclose(uv, [[0, 0], [cam.width, 0], [cam.width, cam.height], [0, cam.height]], atol=1e-9)
    np.testing.assert_allclose(depth, 1.5)


@pytest.mark.parametrize("field,value,message", [
    ("R", np.diag([1.0, 1.0, 1.1]), "not a rotation"),
    ("R", np.diag([1.0, 1.0, -1.0]), "not a rotation"),
    ("t", np.array([0.0, np.nan, 0.0]), "NaN"),
    ("K", np.array([[-1.0, 0, 1], [0, 1, 1], [0, 0, 1]]), "focal"),
    ("K", np.eye(2), "shape"),
])
def test_bad_cameras_are_rejected_with_a_reason(field, value, message):
    fields = dict(name="bad", K=np.diag([500.0, 500.0, 1.0]), R=np.eye(3), t=np.zeros(3), width=100, height=100)
    fields[field] = value
    with pytest.raises(InputError, match=message) as info:
        Camera(**fields)
    assert "bad" in str(info.value)

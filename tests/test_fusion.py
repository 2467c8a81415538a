import numpy as np
import pytest

from core.fusion import triangulate
from core.joints import H36M17

from conftest import make_rig


def observed(points: np.ndarray, cameras) -> np.ndarray:
    """(V, J, 3) exact projections of ``points`` with confidence 1."""
    keypoints = np.ones((len(cameras), len(points), 3))
    for v, camera in enumerate(cameras):
        keypoints[v, :, :2] = camera.project(points)[0]
    return keypoints


@pytest.fixture
def joints() -> np.ndarray:
    rng = np.random.default_rng(3)
    return rng.uniform([-0.4, -0.4, 0.2], [0.4, 0.4, 1.7], (len(H36M17.names), 3))


def test_exact_views_are_triangulated_and_reprojected(joints):
    cameras = make_rig(4)
    keypoints = observed(joints, cameras)
    fused = triangulate(keypoints, cameras)
    np.testing.assert_allclose(fused.joints3d, joints, atol=1e-6)
    np.testing.assert_allclose(fused.keypoints[..., :2], keypoints[..., :2], atol=1e-3)
    np.testing.assert_array_equal(fused.keypoints[..., 2], 1.0)
    assert fused.inliers.all()
    assert np.nanmax(fused.reprojection_error) < 1e-3
    np.testing.assert_allclose(fused.root, joints[H36M17.index("pelvis")], atol=1e-6)


def test_a_view_that_disagrees_is_dropped_and_gets_the_others_evidence(joints):
    cameras = make_rig(4)
    keypoints = observed(joints, cameras)
    wrist = H36M17.index("left_wrist")
    keypoints[2, wrist, :2] += (60.0, -45.0)  # a detector fault in view 2 only
    fused = triangulate(keypoints, cameras)
    assert not fused.inliers[2, wrist] and fused.inliers[[0, 1, 3], wrist].all()
    np.testing.assert_allclose(fused.joints3d[wrist], joints[wrist], atol=1e-6)
    truth = cameras[2].project(joints[wrist])[0]
    np.testing.assert_allclose(fused.keypoints[2, wrist, :2], truth, atol=1e-3)  # corrected in the faulty view
    assert fused.reprojection_error[2, wrist] == pytest.approx(75.0, abs=1e-2)


def test_a_joint_seen_by_one_view_is_missing_everywhere(joints):
    cameras = make_rig(3)
    keypoints = observed(joints, cameras)
    head = H36M17.index("head_top")
    keypoints[1:, head, 2] = 0.0
    fused = triangulate(keypoints, cameras)
    assert np.isnan(fused.joints3d[head]).all()
    np.testing.assert_array_equal(fused.keypoints[:, head], 0.0)
    assert np.isnan(fused.reprojection_error[1:, head]).all()  # not detected there: no error to report
    np.testing.assert_allclose(np.delete(fused.joints3d, head, 0), np.delete(joints, head, 0), atol=1e-6)


def test_torso_orientation_turns_the_rest_torso_onto_the_triangulated_one(joints):
    import torch

    from core.fusion import TORSO, torso_orientation
    from core.rotations import axis_angle_to_matrix

    # more than 90 degrees: no small-angle luck
    turn = axis_angle_to_matrix(torch.tensor([0.3, -2.6, 0.9], dtype=torch.float64)).numpy()
    placed = joints @ turn.T + [1.0, -2.0, 0.5]
    np.testing.assert_allclose(torso_orientation(joints, placed), turn, atol=1e-9)
    placed[TORSO[:5]] = np.nan  # two torso joints are too few to say which way the body faces
    assert torso_orientation(joints, placed) is None

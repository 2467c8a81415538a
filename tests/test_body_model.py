import pickle

import numpy as np
import pytest
import smplx
import torch

from core.body_model import BodyModel
from core.errors import InputError
from core.joints import H36M17, SMPL24
from core.resources import FREE_BODY_MODEL


def pose(body, body_pose=None, betas=None, global_orient=None, batch=1):
    zeros = torch.zeros(batch, 3)
    body_pose = torch.zeros(batch, 69) if body_pose is None else body_pose
    betas = torch.zeros(batch, 10) if betas is None else betas
    return body(zeros if global_orient is None else global_orient, body_pose, betas)


def test_rest_pose_height_and_symmetry(body):
    out = body.rest()
    vertices, joints = out.vertices[0].numpy(), out.joints[0].numpy()
    height = vertices[:, 1].max() - vertices[:, 1].min()
    assert 1.5 <= height <= 1.9
    assert out.joints.shape == (1, 24, 3) and out.joints_h36m.shape == (1, 17, 3)
    mirror = np.array([-1.0, 1.0, 1.0])
    flipped = joints[SMPL24.flip_permutation] * mirror
    assert np.abs(flipped - joints).max() < 0.005  # left/right joints mirror each other within 5 mm
    left_hip, right_hip = joints[SMPL24.index("left_hip")], joints[SMPL24.index("right_hip")]
    assert left_hip[0] > 0.05 > -0.05 > right_hip[0]  # SMPL convention: the body's left is +x


def test_t_pose_arms_horizontal(body):
    joints = body.rest().joints[0].numpy()
    for side in ("left", "right"):
        shoulder, wrist = joints[SMPL24.index(f"{side}_shoulder")], joints[SMPL24.index(f"{side}_wrist")]
        assert abs(wrist[1] - shoulder[1]) < 0.02 and abs(wrist[0]) > abs(shoulder[0]) + 0.4


def test_bending_elbow_moves_forearm_not_legs(body):
    rest = body.rest().vertices[0]
    body_pose = torch.zeros(1, 69)
    elbow = SMPL24.index("left_elbow")
    body_pose[0, (elbow - 1) * 3 + 1] = -1.2  # bend forward about the vertical axis
    bent = pose(body, body_pose).vertices[0]
    moved = (bent - rest).norm(dim=1)
    weights = body.smpl.lbs_weights
    forearm = weights[:, [SMPL24.index(n) for n in ("left_wrist", "left_hand")]].sum(1) > 0.9
    legs = weights[:, [SMPL24.index(n) for n in ("left_knee", "right_knee", "left_ankle", "right_ankle")]].sum(1) > 0.5
    assert moved[forearm].min() > 0.05
    assert moved[legs].max() < 1e-6


def test_betas_change_shape_but_not_topology(body):
    a = pose(body).vertices
    betas = torch.zeros(1, 10)
    betas[0, 0] = 2.0
    b = pose(body, betas=betas).vertices
    assert a.shape == b.shape
    assert (a - b).norm(dim=-1).max() > 0.02


def test_batched_and_matches_raw_smplx(body):
    torch.manual_seed(0)
    batch = 3
    go, bp, betas = torch.randn(batch, 3) * 0.5, torch.randn(batch, 69) * 0.2, torch.randn(batch, 10)
    ours = body(go, bp, betas)
    data = dict(np.load(FREE_BODY_MODEL))
    data["posedirs"] = np.zeros(data["v_template"].shape + (207,), dtype=np.float32)
    raw = smplx.SMPL(model_path=str(FREE_BODY_MODEL), data_struct=smplx.utils.Struct(**data),
                     vertex_ids=body.landmarks)
    theirs = raw(global_orient=go, body_pose=bp, betas=betas)
    assert ours.vertices.shape == (batch, body.num_vertices, 3)
    torch.testing.assert_close(ours.vertices, theirs.vertices)
    torch.testing.assert_close(ours.joints, theirs.joints[:, :24])


def test_rotation_matrices_give_the_same_body(body):
    from core.rotations import axis_angle_to_matrix

    torch.manual_seed(1)
    go, bp, betas = torch.randn(2, 3) * 0.5, torch.randn(2, 69) * 0.3, torch.randn(2, 10)
    by_axis_angle = body(go, bp, betas)
    by_matrix = body(axis_angle_to_matrix(go)[:, None], axis_angle_to_matrix(bp.reshape(2, 23, 3)), betas)
    torch.testing.assert_close(by_axis_angle.vertices, by_matrix.vertices, atol=1e-5, rtol=1e-5)


def test_h36m_joints_are_where_they_should_be(body):
    out = body.rest()
    h36m, smpl = out.joints_h36m[0], out.joints[0]
    torch.testing.assert_close(h36m[H36M17.index("left_knee")], smpl[SMPL24.index("left_knee")])
    head_top = h36m[H36M17.index("head_top")]
    assert head_top[1] == out.vertices[0, :, 1].max()
    assert h36m[H36M17.index("neck_nose"), 2] > smpl[SMPL24.index("head"), 2]  # the nose is in front of the head


def test_missing_and_corrupt_files_are_named(tmp_path):
    with pytest.raises(InputError, match="does not exist") as info:
        BodyModel(tmp_path / "SMPL_NEUTRAL.pkl")
    assert "SMPL_NEUTRAL.pkl" in str(info.value)
    corrupt = tmp_path / "SMPL_NEUTRAL.pkl"
    corrupt.write_bytes(b"\x80\x04this is not a pickle")
    with pytest.raises(InputError, match="cannot read") as info:
        BodyModel(corrupt)
    assert str(corrupt) in str(info.value)
    wrong = tmp_path / "model.npz"
    np.savez(wrong, v_template=np.zeros((10, 3)))
    with pytest.raises(InputError, match="missing"):
        BodyModel(wrong)
    obj = tmp_path / "model.obj"
    obj.write_text("v 0 0 0")
    with pytest.raises(InputError, match=".pkl or .npz"):
        BodyModel(obj)


def test_user_smpl_pickle_loads(tmp_path):
    """A user's SMPL file (here the free model re-saved in SMPL's pickle layout, without our landmark ids or
    H36M regressor) loads, and its H36M joints come from the shared definition."""
    data = dict(np.load(FREE_BODY_MODEL))
    pkl = {k: data[k] for k in ("v_template", "f", "kintree_table", "weights", "shapedirs", "J_regressor")}
    pkl["posedirs"] = np.zeros(data["v_template"].shape + (207,))
    path = tmp_path / "SMPL_NEUTRAL.pkl"
    path.write_bytes(pickle.dumps(pkl))
    user = BodyModel(path)
    assert user.identity.startswith("SMPL SMPL_NEUTRAL.pkl@")
    out = user.rest()
    assert out.vertices.shape[1] == data["v_template"].shape[0]
    free = BodyModel().rest()
    torch.testing.assert_close(out.vertices, free.vertices)
    # Same definition, except the nose: SMPL's landmark id (332) indexes another vertex of this mesh.
    same = [i for i, name in enumerate(H36M17.names) if name != "neck_nose"]
    torch.testing.assert_close(out.joints_h36m[:, same], free.joints_h36m[:, same], atol=1e-5, rtol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_runs_on_cuda(body):
    cuda_body = BodyModel().cuda()
    out = cuda_body.rest()
    assert out.vertices.is_cuda
    torch.testing.assert_close(out.vertices.cpu(), body.rest().vertices, atol=1e-5, rtol=1e-5)


def test_fast_joint_path_equals_full_forward(body):
    from core.rotations import axis_angle_to_matrix

    torch.manual_seed(2)
    go, bp, betas = torch.randn(4, 3), torch.randn(4, 69) * 0.4, torch.randn(4, 10)
    full = body(go, bp, betas)
    rotations = axis_angle_to_matrix(go)[:, None], axis_angle_to_matrix(bp.reshape(4, 23, 3))
    fast = body.joints_h36m(*rotations, betas)
    torch.testing.assert_close(fast, full.joints_h36m, atol=1e-5, rtol=1e-5)
    posed = body.posed(*rotations, betas)
    for name in ("vertices", "joints", "joints_h36m"):
        torch.testing.assert_close(getattr(posed, name), getattr(full, name), atol=1e-5, rtol=1e-5)
    # each regressed joint's blend over the body joints sums to one: a translated body moves its joints with it
    weights = body.h36m_translation_weights
    assert weights.shape == (17, 24)
    torch.testing.assert_close(weights.sum(1), torch.ones(17))


def test_fast_joint_path_with_pose_correctives(tmp_path):
    """A user's SMPL has pose blend shapes (the free model has none): the folded joint path must add them as
    the full skinning does."""
    from core.rotations import axis_angle_to_matrix

    data = dict(np.load(FREE_BODY_MODEL))
    rng = np.random.default_rng(3)
    pkl = {k: data[k] for k in ("v_template", "f", "kintree_table", "weights", "shapedirs", "J_regressor")}
    pkl["posedirs"] = rng.normal(0, 0.01, data["v_template"].shape + (207,))
    path = tmp_path / "SMPL_NEUTRAL.pkl"
    path.write_bytes(pickle.dumps(pkl))
    user = BodyModel(path)
    assert user.has_pose_correctives
    torch.manual_seed(4)
    go, bp, betas = torch.randn(3, 3), torch.randn(3, 69) * 0.4, torch.randn(3, 10)
    full = user(go, bp, betas)
    rotations = axis_angle_to_matrix(go)[:, None], axis_angle_to_matrix(bp.reshape(3, 23, 3))
    without = BodyModel().joints_h36m(*rotations, betas)
    same = [i for i, name in enumerate(H36M17.names) if name != "neck_nose"]  # SMPL's nose id is another vertex
    assert (full.joints_h36m - without)[:, same].abs().max() > 1e-3  # the correctives move the joints measurably
    torch.testing.assert_close(user.joints_h36m(*rotations, betas), full.joints_h36m, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(user.posed(*rotations, betas).vertices, full.vertices, atol=1e-5, rtol=1e-5)
    from core.inverse_kinematics import _posed  # the closed-form solves' NumPy copy of the joint path adds them too

    for b in range(3):
        turns = torch.cat([rotations[0][b], rotations[1][b]]).double().numpy()
        shares = _posed(user.joint_arrays, turns, betas[b].double().numpy())[2]
        np.testing.assert_allclose(shares.sum(1), full.joints_h36m[b].double().numpy(), atol=1e-5)

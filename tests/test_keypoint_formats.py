"""Detector outputs as 2D evidence: OpenPose BODY_25 and COCO keypoint files load into a sample that HeatFormer
runs on, and corrupted files are refused with the file named, never a crash."""
import json
import shutil

import numpy as np
import pytest

from core.dataset_io import read_sample
from core.errors import InputError
from core.inference import evidence_keypoints, refine
from core.joints import BODY25, COCO17, H36M17, convert_keypoints
from core.keypoint_formats import (read_coco_frames, read_coco_keypoints, read_easymocap_annots, read_mmpose,
                                   read_mmpose_video, read_openpose)
from core.model.checkpoint import load_model
from core.resources import SAMPLE_SCENE

SHARED = [H36M17.index(n) for n in ("right_hip", "left_knee", "left_shoulder", "right_wrist")]


def without_keypoints(tmp_path):
    folder = tmp_path / "sample"
    shutil.copytree(SAMPLE_SCENE, folder)
    (folder / "keypoints.json").unlink()
    return folder, read_sample(SAMPLE_SCENE)


def test_openpose_folder_runs_through_heatformer(tmp_path, body):
    folder, original = without_keypoints(tmp_path)
    for v, view in enumerate(original.view_names):
        people = [convert_keypoints(original.keypoints[v], H36M17, BODY25)]
        if v == 1:  # a second, less confident person: the reader keeps the first
            people.insert(0, np.concatenate([people[0][:, :2] + 40, people[0][:, 2:] * 0.3], 1))
        path = folder / "openpose" / view / "000000_keypoints.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps({"version": 1.3, "people": [
            {"person_id": [-1], "pose_keypoints_2d": p.reshape(-1).tolist()} for p in people]}))
    sample = read_sample(folder)
    assert sample.joint_set == "body25" and sample.keypoints.shape == (4, 25, 3)
    evidence = evidence_keypoints(sample)
    np.testing.assert_allclose(evidence[:, SHARED], original.keypoints[:, SHARED], atol=1e-3)
    assert (evidence[:, H36M17.index("head_top"), 2] == 0).all()  # BODY_25 has no head top: missing
    model = load_model(None, body)
    for mode in ("calibrated", "uncalibrated"):
        trace = refine(sample, model, mode, 2, device="cpu")
        assert np.isfinite(trace.vertices).all()


def test_coco_folder_runs_through_heatformer(tmp_path, body):
    folder, original = without_keypoints(tmp_path)
    (folder / "coco").mkdir()
    for v, view in enumerate(original.view_names):
        keypoints = convert_keypoints(original.keypoints[v], H36M17, COCO17)
        (folder / "coco" / f"{view}.json").write_text(json.dumps(
            [{"image_id": 0, "category_id": 1, "keypoints": keypoints.reshape(-1).tolist(), "score": 0.9}]))
    sample = read_sample(folder)
    assert sample.joint_set == "coco17"
    np.testing.assert_allclose(evidence_keypoints(sample)[:, SHARED], original.keypoints[:, SHARED], atol=1e-3)
    trace = refine(sample, load_model(None, body), "calibrated", 1, device="cpu")
    assert np.isfinite(trace.vertices).all()
    (folder / "coco" / "cam03.json").unlink()
    with pytest.raises(InputError, match="cam03.json"):
        read_sample(folder)


def test_coco_annotation_visibility_becomes_confidence(tmp_path):
    keypoints = np.zeros((17, 3))
    keypoints[5] = (10, 20, 2)
    keypoints[6] = (30, 40, 1)
    path = tmp_path / "ann.json"
    path.write_text(json.dumps({"images": [], "annotations": [{"keypoints": keypoints.reshape(-1).tolist(),
                                                               "num_keypoints": 2}]}))
    read = read_coco_keypoints(path)
    assert read[5].tolist() == [10, 20, 1] and read[6].tolist() == [30, 40, 1] and read[0, 2] == 0


def test_nobody_detected_means_every_joint_missing(tmp_path):
    path = tmp_path / "empty_keypoints.json"
    path.write_text(json.dumps({"version": 1.3, "people": []}))
    assert read_openpose(path) is None


CORRUPT = {
    "truncated": b'{"people": [{"pose_keypoints_2d": [1, 2',
    "empty": b"",
    "wrong type": b'{"people": "nobody"}',
    "strings": b'{"people": [{"pose_keypoints_2d": ["a", "b", "c"]}]}',
    "too short": b'{"people": [{"pose_keypoints_2d": [1, 2, 0.5]}]}',
    "NaN": b'{"people": [{"pose_keypoints_2d": [NaN' + b", 1" * 74 + b"]}]}",
    "other format": b'[{"keypoints": [' + b", ".join([b"1"] * 51) + b"]}]",
    "binary": b"\xff\xfe\x00garbage",
}


@pytest.mark.parametrize("reader", [read_openpose, read_coco_keypoints, read_coco_frames, read_easymocap_annots,
                                    read_mmpose, read_mmpose_video])
@pytest.mark.parametrize("kind", sorted(CORRUPT))
def test_corrupted_files_are_refused_with_their_name(tmp_path, reader, kind):
    path = tmp_path / f"{kind.replace(' ', '_')}.json"
    path.write_bytes(CORRUPT[kind])
    if reader is read_coco_keypoints and kind == "other format":
        assert read_coco_keypoints(path).shape == (17, 3)  # this one is COCO: it must read
        return
    with pytest.raises(InputError, match=path.name):
        reader(path)


def test_h36m_joints_missing_from_coco_are_made_as_the_body_model_defines_them(body):
    """COCO-17 has no pelvis, spine, thorax or head top: converted to H36M-17 they are made from the hips,
    shoulders, ears and nose, and land near the body model's own regressed joints (projected into a camera, as
    a detector sees them) over random poses; the confidence is the weakest part's."""
    import torch

    from core.joints import COCO17, H36M17, SMPL24, convert_keypoints, synthesised_joints
    from core.synthetic import random_body_pose

    assert synthesised_joints(COCO17) == ["pelvis", "thorax", "spine", "neck_nose", "head_top"]
    rng = np.random.default_rng(7)
    landmarks = {"nose": "nose", "left_eye": "leye", "right_eye": "reye", "left_ear": "lear", "right_ear": "rear"}
    errors = {name: [] for name in synthesised_joints(COCO17)}
    for _ in range(40):
        out = body(torch.zeros(1, 3), torch.tensor(random_body_pose(rng)[None], dtype=torch.float32),
                   torch.tensor(rng.normal(0, 1, (1, 10)), dtype=torch.float32))
        vertices, joints, h36m = (t[0].numpy() for t in (out.vertices, out.joints, out.joints_h36m))
        coco = np.array([vertices[body.landmarks[landmarks[n]]] if n in landmarks else joints[SMPL24.index(n)]
                         for n in COCO17.names])
        to_pixels = lambda p: 1000 * p[..., :2] / (p[..., 2:] + 4.0) + 500  # noqa: E731 (a camera 4 m in front)
        detected = np.concatenate([to_pixels(coco), np.full((17, 1), 0.9)], 1)
        detected[COCO17.index("left_ear"), 2] = 0.4
        converted = convert_keypoints(detected, COCO17, H36M17)
        for name in errors:
            errors[name].append(np.linalg.norm(converted[H36M17.index(name), :2] - to_pixels(h36m[H36M17.index(name)])))
    assert converted[H36M17.index("head_top"), 2] == 0.4 and converted[H36M17.index("pelvis"), 2] == 0.9
    for name, px in errors.items():  # 1000 px focal at 4 m: 1 px is 4 mm
        assert np.mean(px) < 8 and np.max(px) < 25, (name, np.mean(px), np.max(px))

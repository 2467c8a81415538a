"""The official HeatFormer code's databases (Human3.6M, MPI-INF-3DHP, BEHAVE), written here in the same structure
from the bundled sample, open as sequences whose ground truth, cameras and evidence are the sample's, and run
through HeatFormer with errors measured against that ground truth; broken databases are refused with the file named."""
import json

import cv2
import joblib
import numpy as np
import pytest
import torch

from core.cameras import project_points
from core.dataset_io import read_sample
from core.errors import InputError
from core.inference import evaluate, evidence_keypoints, refine
from core.joints import BODY25, H36M17, convert_keypoints
from core.model.checkpoint import load_model
from core.resources import SAMPLE_SCENE
from core.sequence import open_sequence

# SPIN-49 indices of a few joints, from SPIN's joint list (OpenPose's 25, then 'Right Ankle', 'Right Knee', ...).
SPIN = {"right_ankle": 25, "right_hip": 27, "left_hip": 28, "left_wrist": 36, "head_top": 38, "pelvis": 39}
SPIN_ORDER = [39, 27, 26, 25, 28, 29, 30, 41, 37, 43, 38, 34, 35, 36, 33, 32, 31]  # of each H36M-17 joint


@pytest.fixture(scope="module")
def original():
    return read_sample(SAMPLE_SCENE)


@pytest.fixture(scope="module")
def model(body):
    return load_model(None, body)


def official_layout(tmp_path):
    """data/preprocessed_data and data/dataset, as the official README lays them out."""
    db_dir, image_dir = tmp_path / "data" / "preprocessed_data", tmp_path / "data" / "dataset"
    (db_dir / "extra_data").mkdir(parents=True)
    image_dir.mkdir(parents=True)
    return db_dir, image_dir


def spin49(keypoints):
    """(V, 17, 3) H36M-17 keypoints placed in SPIN-49 slots, the rest zero."""
    out = np.zeros((len(keypoints), 49, 3), dtype=np.float32)
    out[:, SPIN_ORDER] = keypoints
    return out


def write_image(path, image, size=None):
    """``image`` in the corner of a black canvas of ``size`` (width, height; Human3.6M's 1000x1002), as JPEG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    width, height = size or image.shape[1::-1]
    canvas = np.zeros((height, width, 3), np.uint8)
    canvas[: image.shape[0], : image.shape[1]] = image
    cv2.imwrite(str(path), cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))


def write_h36m(tmp_path, original, subject=9):
    """Frames 1 and 2 of one subaction: all four cameras in frame 1, three in frame 2, one in frame 3 (dropped)."""
    db_dir, image_dir = official_layout(tmp_path)
    names, joints2d = [], []
    present = {1: [1, 2, 3, 4], 2: [1, 2, 4], 3: [3]}
    for frame, cameras in present.items():
        for c in cameras:
            folder = f"s_{subject:02d}_act_02_subact_01_ca_{c:02d}"
            stored = f"images/{folder}/{folder}_{frame:06d}.jpg"
            names.append("/home/someone/h36m/" + stored)  # the preprocessing machine's prefix
            write_image(image_dir / stored, original.frames[c - 1], size=(1000, 1002))
            keypoints = original.keypoints[c - 1].copy()
            keypoints[:, 0] += frame
            joints2d.append(spin49(keypoints[None])[0])
    joblib.dump({"img_name": np.array(names), "joints2D": np.stack(joints2d)}, db_dir / "h36m_test_25fps_new_db.pt")
    cameras = {str(i + 1): {"R": c.R.tolist(), "t": (c.t * 1000).tolist(), "f": [c.K[0, 0], c.K[1, 1]],
                            "c": [c.K[0, 2], c.K[1, 2]]} for i, c in enumerate(original.cameras)}
    (db_dir / "extra_data" / f"Human36M_subject{subject}_camera.json").write_text(json.dumps(cameras))
    world = (original.ground_truth.joints3d * 1000).tolist()
    table = {"2": {"1": {"0": world, "1": world, "2": world}}}
    (db_dir / "extra_data" / f"Human36M_subject{subject}_joint_3d.json").write_text(json.dumps(table))
    return db_dir / "h36m_test_25fps_new_db.pt"


def test_human36m_database(tmp_path, original, model):
    path = write_h36m(tmp_path, original)
    sequence = open_sequence(path)
    assert sequence.frame_names == ["s_09_act_02_subact_01_000001", "s_09_act_02_subact_01_000002"]
    first, second = sequence[0], sequence[1]
    assert first.view_names == ["1", "2", "3", "4"] and second.view_names == ["1", "2", "4"]
    assert (first.cameras[0].width, first.cameras[0].height) == (1000, 1000)  # the official files carry no size
    np.testing.assert_allclose(first.cameras[2].K, original.cameras[2].K)
    np.testing.assert_allclose(first.cameras[2].t, original.cameras[2].t, atol=1e-9)
    assert first.frames[0].shape == (1000, 1000, 3)  # 1000x1002 cropped as the official code does
    assert np.abs(first.frames[0][:512, :512].astype(int) - original.frames[0]).mean() < 3
    np.testing.assert_allclose(first.ground_truth.joints3d, original.ground_truth.joints3d, atol=1e-9)
    expected = original.keypoints[[0, 1, 3]].copy()
    expected[..., 0] += 2
    np.testing.assert_allclose(second.keypoints, expected, atol=1e-4)
    for name, index in SPIN.items():  # SPIN's named slots land on the same-named H36M-17 joints
        stored = joblib.load(path)["joints2D"][0, index]
        np.testing.assert_allclose(first.keypoints[0, H36M17.index(name)], stored)
    trace = refine(first, model, "calibrated", 1, device="cpu")
    evaluate(trace, first)
    assert np.isfinite(trace.metrics["mpjpe_mm"]).all() and trace.metrics["mpjpe_mm"][0] > 0


def mpi_calibration(cameras, names) -> str:
    lines = ["Skeletool Camera Calibration File V1.0"]
    for camera, name in zip(cameras, names):
        intrinsic, extrinsic = np.eye(4), np.eye(4)
        intrinsic[:3, :3] = camera.K
        extrinsic[:3, :3], extrinsic[:3, 3] = camera.R, camera.t * 1000
        lines += [f"name          {name}", "  sensor      10 10", f"  size        {camera.width} {camera.height}",
                  "  animated    0", "  intrinsic   " + " ".join(f"{x:.10g}" for x in intrinsic.ravel()),
                  "  extrinsic   " + " ".join(f"{x:.10g}" for x in extrinsic.ravel()), "  radial      0"]
    return "\n".join(lines) + "\n"


def test_mpi_inf_3dhp_database(tmp_path, original, model):
    db_dir, image_dir = official_layout(tmp_path)
    videos = [0, 2, 7, 8]  # the official code's views
    sequence_dir = image_dir / "images_mpii3d" / "S1" / "Seq2"
    names, joints2d, camera_joints = [], [], {}
    for v, camera in zip(videos, original.cameras):
        stored = f"images_mpii3d/S1/Seq2/video_{v}/000005.jpg"
        names.append("../data/" + stored)
        write_image(image_dir / stored, original.frames[videos.index(v)])
        joints2d.append(spin49(original.keypoints[videos.index(v)][None])[0])
        in_camera = np.zeros((49, 3))
        in_camera[SPIN_ORDER] = original.ground_truth.joints3d @ camera.R.T + camera.t
        camera_joints[("1", "2", str(v), "4")] = in_camera
    joblib.dump({"img_name": np.array(names), "joints2D": np.stack(joints2d)}, db_dir / "mpii3d_val_scale12_new_db.pt")
    joblib.dump(camera_joints, db_dir / "j3d_mpi_db.pt")
    (sequence_dir / "camera.calibration").write_text(mpi_calibration(original.cameras, [str(v) for v in videos]))
    sequence = open_sequence(db_dir / "mpii3d_val_scale12_new_db.pt")
    assert sequence.frame_names == ["S1_Seq2_000005"]
    sample = sequence[0]
    assert sample.view_names == ["0", "2", "7", "8"]
    np.testing.assert_allclose(sample.cameras[3].R, original.cameras[3].R, atol=1e-8)
    np.testing.assert_allclose(sample.ground_truth.joints3d, original.ground_truth.joints3d, atol=1e-6)
    np.testing.assert_allclose(sample.keypoints, original.keypoints, atol=1e-4)
    assert all(frame is not None for frame in sample.frames)
    trace = refine(sample, model, "calibrated", 1, device="cpu")
    evaluate(trace, sample)
    assert np.isfinite(trace.metrics["mpjpe_mm"]).all()
    (sequence_dir / "camera.calibration").write_text("name 0\n  size 512 512\n  intrinsic 1 2 3\n")
    with pytest.raises(InputError, match="camera.calibration"):
        open_sequence(db_dir / "mpii3d_val_scale12_new_db.pt")[0]
    for image in sequence_dir.rglob("*.jpg"):  # its cameras live beside its images
        image.unlink()
    with pytest.raises(InputError, match="camera.calibration beside them were not found"):
        open_sequence(db_dir / "mpii3d_val_scale12_new_db.pt")[0]


def write_behave(tmp_path, original):
    db_dir, _ = official_layout(tmp_path)
    truth = np.concatenate([original.ground_truth.joints3d, np.ones((17, 1))], axis=1)
    body25 = convert_keypoints(truth, H36M17, BODY25)  # joints H36M-17 lacks get score 0
    body25[BODY25.index("left_wrist"), 3] = 0.1  # below the official evaluation's 0.3
    folder = "BEHAVE/sequences/Date01_Sub01_boxsmall/t0003.000"
    for v, image in enumerate(original.frames):
        write_image(tmp_path / folder / f"k{v}.color.jpg", image)
    entry = {"img_name": folder, "K": np.stack([c.K for c in original.cameras]),
             "R": np.stack([c.R for c in original.cameras]), "t": np.stack([c.t for c in original.cameras]),
             "w_3d_openpose": torch.from_numpy(body25).float()}
    joblib.dump([entry], db_dir / "BEHAVE_valid_db.pt")
    return db_dir / "BEHAVE_valid_db.pt"


def test_behave_database(tmp_path, original, model):
    sequence = open_sequence(write_behave(tmp_path, original))
    assert sequence.frame_names == ["Date01_Sub01_boxsmall_t0003.000"]
    sample = sequence[0]
    assert sample.view_names == ["k0", "k1", "k2", "k3"] and (sample.cameras[0].width, sample.cameras[0].height) == (
        512, 512)  # measured from the images
    truth, expected = sample.ground_truth.joints3d, original.ground_truth.joints3d
    missing = {H36M17.index(n) for n in ("neck_nose", "head_top", "left_wrist")}
    assert {j for j in range(17) if np.isnan(truth[j]).any()} == missing
    known = [j for j in range(17) if j not in missing]
    np.testing.assert_allclose(truth[known], expected[known], atol=1e-5)  # the spine too: pelvis-thorax midpoint
    evidence = evidence_keypoints(sample)  # projected BODY_25, in H36M-17 order
    right_knee = H36M17.index("right_knee")
    for v, camera in enumerate(sample.cameras):
        uv, _ = project_points(expected[right_knee][None], camera)
        np.testing.assert_allclose(evidence[v, right_knee, :2], uv[0], atol=1e-3)
    assert (evidence[:, H36M17.index("left_wrist"), 2] < 0.2).all()
    trace = refine(sample, model, "calibrated", 1, device="cpu")
    evaluate(trace, sample)
    assert np.isfinite(trace.metrics["mpjpe_mm"]).all() and np.isfinite(trace.metrics["pa_mpjpe_mm"]).all()


def test_images_are_optional(tmp_path, original):
    """Without its image folders a database still opens: ground truth and evidence, no frames."""
    path = write_h36m(tmp_path, original)
    for image in (tmp_path / "data" / "dataset").rglob("*.jpg"):
        image.unlink()
    sample = open_sequence(path)[0]
    assert sample.frames == [None] * 4 and sample.ground_truth is not None


@pytest.mark.parametrize("content", [b"", b"\x80\x04garbage", b"not a pickle at all"])
def test_unreadable_databases_are_refused(tmp_path, content):
    path = tmp_path / "h36m_test_db.pt"
    path.write_bytes(content)
    with pytest.raises(InputError, match="h36m_test_db.pt"):
        open_sequence(path)


def test_truncated_database_is_refused(tmp_path, original):
    path = write_h36m(tmp_path, original)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(InputError, match="h36m_test_25fps_new_db.pt"):
        open_sequence(path)


@pytest.mark.parametrize("fault, message", [
    ("no_joints2d", "joints2D"), ("nan", "NaN"), ("wrong_shape", "joints2D"), ("strings", "not numeric"),
    ("bad_name", "not a Human3.6M name"),
    ("no_camera_file", "camera.json"), ("no_frame", "no joints for action 2"), ("unknown_kind", "h36m_, mpii3d_"),
])
def test_inconsistent_databases_are_refused(tmp_path, original, fault, message):
    path = write_h36m(tmp_path, original)
    db = joblib.load(path)
    extra = path.parent / "extra_data"
    if fault == "no_joints2d":
        del db["joints2D"]
    elif fault == "nan":
        db["joints2D"][0, 27, 0] = np.nan
    elif fault == "strings":
        db["joints2D"] = np.array([["x"] * 3] * len(db["img_name"]))
    elif fault == "wrong_shape":
        db["joints2D"] = db["joints2D"][:, :20]
    elif fault == "bad_name":
        db["img_name"][0] = "images/frame_000001.jpg"
    elif fault == "no_camera_file":
        (extra / "Human36M_subject9_camera.json").unlink()
    elif fault == "no_frame":
        (extra / "Human36M_subject9_joint_3d.json").write_text(json.dumps({"2": {"1": {}}}))
    elif fault == "unknown_kind":
        path = path.rename(path.with_name("other_test_db.pt"))
    joblib.dump(db, path)
    with pytest.raises(InputError, match=message):
        open_sequence(path)[0]


def test_behave_entries_are_checked(tmp_path, original):
    path = write_behave(tmp_path, original)
    db = joblib.load(path)
    db[0]["w_3d_openpose"] = db[0]["w_3d_openpose"][:17]
    joblib.dump(db, path)
    with pytest.raises(InputError, match="w_3d_openpose"):
        open_sequence(path)[0]


def test_infer_and_video_commands_on_a_database(tmp_path, original):
    """The command line takes a database where it takes a folder; the trace finds its frame in it again."""
    import subprocess
    import sys
    from pathlib import Path

    from core.trace import RefinementTrace

    path = write_h36m(tmp_path, original)
    main = [sys.executable, str(Path(__file__).resolve().parent.parent / "main.py")]
    result = subprocess.run(main + ["infer", "--data", str(path), "--frames", "1", "1", "--iterations", "1",
                                    "--device", "cpu", "--out", str(tmp_path / "run.npz")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    trace = RefinementTrace.load(tmp_path / "run.s_09_act_02_subact_01_000002.npz")
    assert trace.view_names == ["1", "2", "4"] and "mpjpe_mm" in trace.metrics
    video = subprocess.run(main + ["video", "--trace", str(tmp_path / "run.s_09_act_02_subact_01_000002.npz"), "--out",
                                   str(tmp_path / "f.gif")], capture_output=True, text=True, timeout=300)
    assert video.returncode == 0 and "drawing on black" not in video.stderr, video.stderr

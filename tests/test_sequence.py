"""Multiview sequences in every layout and keypoint format load frame by frame and run through HeatFormer; broken
folders and files are refused with the file named."""
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.dataset_io import read_sample
from core.errors import InputError
from core.inference import evidence_keypoints, refine
from core.joints import BODY25, COCO17, H36M17, HALPE26, convert_keypoints
from core.model.checkpoint import load_model
from core.resources import SAMPLE_SCENE
from core.sequence import open_sequence, with_calibration

from conftest import FRAMES, camera_folder, frame_keypoints

SHARED = [H36M17.index(n) for n in ("right_hip", "left_knee", "left_shoulder", "right_wrist")]


@pytest.fixture(scope="module")
def original():
    return read_sample(SAMPLE_SCENE)


def write_detector_files(folder, original, pattern: str, joints, wrap) -> None:
    for v, view in enumerate(original.view_names):
        directory = folder / pattern.format(view)
        directory.mkdir(parents=True)
        for f in range(FRAMES):
            keypoints = convert_keypoints(frame_keypoints(original, f)[v], H36M17, joints)
            (directory / f"{view}_{f:012d}_keypoints.json").write_text(json.dumps(wrap(keypoints)))


def openpose_people(keypoints):
    return {"version": 1.3, "people": [{"person_id": [-1], "pose_keypoints_2d": keypoints.reshape(-1).tolist()}]}


def easymocap_annots(keypoints):
    return {"filename": "x.jpg", "annots": [{"personID": 0, "keypoints": keypoints.tolist()}]}


def mmpose_instances(keypoints):
    """MMPose's prediction file for a frame; the body padded to COCO-WholeBody's 133 points, as wholebody models
    write them, plus a less confident second person."""
    xy = np.zeros((133, 2))
    xy[:len(keypoints)] = keypoints[:, :2]
    scores = np.zeros(133)
    scores[:len(keypoints)] = keypoints[:, 2]
    return [{"keypoints": (xy + 30).tolist(), "keypoint_scores": (scores * 0.2).tolist(), "bbox": [[0, 0, 9, 9]]},
            {"keypoints": xy.tolist(), "keypoint_scores": scores.tolist(), "bbox": [[0, 0, 9, 9]], "bbox_score": 1}]


def check_runs(sequence, original, body, frame: int = FRAMES - 1) -> None:
    """Frame ``frame`` carries that frame's evidence and refines to a finite body."""
    sample = sequence[frame]
    evidence, expected = evidence_keypoints(sample)[:, SHARED], frame_keypoints(original, frame)[:, SHARED]
    np.testing.assert_allclose(evidence[..., :2], expected[..., :2], atol=1e-2)
    assert ((evidence[..., 2] > 0) == (expected[..., 2] > 0)).all()  # COCO annotations keep visibility, not scores
    trace = refine(sample, load_model(None, body), "calibrated", 1, device="cpu")
    assert np.isfinite(trace.vertices).all()


def test_image_folders_with_openpose_files(tmp_path, original, body):
    folder = camera_folder(tmp_path, original, "images")
    write_detector_files(folder, original, "openpose/{}", BODY25, openpose_people)
    sequence = open_sequence(folder)
    assert len(sequence) == FRAMES and sequence.frame_names == ["000000", "000001", "000002"]
    assert sequence[0].joint_set == "body25" and sequence[0].frames[2].shape == original.frames[2].shape
    check_runs(sequence, original, body)


@pytest.mark.parametrize("video", [".avi", ".mp4"])
def test_videos_with_pose2sim_halpe_output(tmp_path, original, body, video):
    folder = camera_folder(tmp_path, original, "videos", calibration="calibration/Calib_board.toml", video=video)
    write_detector_files(folder, original, "pose/{}_json", HALPE26, openpose_people)
    sequence = open_sequence(folder)
    assert len(sequence) == FRAMES and sequence[0].joint_set == "halpe26"
    in_order = [sequence[f].frames[0] for f in range(FRAMES)]
    assert np.abs(sequence[1].frames[0].astype(int) - in_order[1]).mean() < 1  # seek back finds the same frame
    assert np.abs(in_order[0].astype(int) - in_order[1]).mean() > 0.5  # and frames differ (drawn numbers)
    check_runs(sequence, original, body)


def test_image_folders_with_an_aitviewer_camera_file(tmp_path, original, body):
    folder = camera_folder(tmp_path, original, "images", calibration="calibration/cameras.npz")
    write_detector_files(folder, original, "openpose/{}", BODY25, openpose_people)
    sequence = open_sequence(folder)
    assert [c.name for c in sequence[0].cameras] == original.view_names
    check_runs(sequence, original, body)


def test_image_folders_with_easymocap_annots(tmp_path, original, body):
    folder = camera_folder(tmp_path, original, "images")
    write_detector_files(folder, original, "annots/{}", BODY25, easymocap_annots)
    check_runs(open_sequence(folder), original, body, frame=1)


def test_image_folders_with_mmpose_predictions(tmp_path, original, body):
    folder = camera_folder(tmp_path, original, "images")
    write_detector_files(folder, original, "mmpose/{}", COCO17, mmpose_instances)
    sequence = open_sequence(folder)
    assert sequence[0].joint_set == "coco17"
    check_runs(sequence, original, body)


def test_videos_with_mmpose_whole_video_predictions(tmp_path, original, body):
    folder = camera_folder(tmp_path, original, "videos")
    (folder / "mmpose").mkdir()
    for v, view in enumerate(original.view_names):
        frames = [{"frame_id": f + 1, "instances": mmpose_instances(convert_keypoints(
            frame_keypoints(original, f)[v], H36M17, COCO17))} for f in range(FRAMES)]
        (folder / "mmpose" / f"{view}.json").write_text(json.dumps(
            {"meta_info": {"dataset_name": "coco_wholebody"}, "instance_info": frames[::-1]}))  # any order
    check_runs(open_sequence(folder), original, body)
    path = folder / "mmpose" / "cam02.json"
    path.write_text(json.dumps({"instance_info": [{"frame_id": 1, "instances": []}]}))
    expect_refusal(folder, "cam02.json: keypoints for 1 frames; the sequence has 3")
    path.write_text(json.dumps({"meta_info": {}}))
    expect_refusal(folder, "cam02.json: not an MMPose video prediction file")


def test_image_folders_with_coco_files_of_every_frame(tmp_path, original, body):
    folder = camera_folder(tmp_path, original, "images")
    (folder / "coco").mkdir()
    for v, view in enumerate(original.view_names):
        coco = [convert_keypoints(frame_keypoints(original, f)[v], H36M17, COCO17) for f in range(FRAMES)]
        if view == "cam02":  # an annotation file: frame 1 has no annotation, so every joint is missing there
            content = {"images": [{"id": f + 1, "file_name": f"{f:06d}.jpg"} for f in range(FRAMES)],
                       "annotations": [{"image_id": f + 1, "keypoints": coco[f].reshape(-1).tolist(),
                                        "num_keypoints": 17} for f in (0, 2)]}
        else:  # a results list, in no particular order
            content = [{"image_id": 10 + f, "category_id": 1, "keypoints": coco[f].reshape(-1).tolist(),
                        "score": 0.9} for f in (2, 0, 1)]
        (folder / "coco" / f"{view}.json").write_text(json.dumps(content))
    sequence = open_sequence(folder)
    assert sequence[1].joint_set == "coco17" and (sequence[1].keypoints[1, :, 2] == 0).all()
    check_runs(sequence, original, body)
    (folder / "coco" / "cam04.json").write_text(json.dumps([{"keypoints": [0] * 51, "score": 1}]))
    expect_refusal(folder, "cam04.json: a COCO file of several frames needs an image_id")
    (folder / "coco" / "cam04.json").unlink()
    expect_refusal(folder, "cam04.json: no such file")


def test_keypoint_and_heatmap_arrays(tmp_path, original, body):
    folder = camera_folder(tmp_path, original, "images")
    h36m = np.stack([frame_keypoints(original, f) for f in range(FRAMES)])
    np.save(folder / "keypoints.npy", h36m)
    check_runs(open_sequence(folder), original, body)
    (folder / "keypoints.npy").unlink()
    np.savez(folder / "keypoints.npz", keypoints=convert_keypoints(h36m, H36M17, COCO17), joint_set="coco17")
    heatmaps = np.random.default_rng(0).random((FRAMES, 4, 17, 16, 16), dtype=np.float32)
    np.save(folder / "heatmaps.npy", heatmaps)
    sequence = open_sequence(folder)
    assert sequence[1].joint_set == "coco17" and np.array_equal(sequence[1].heatmaps, heatmaps[1])
    check_runs(sequence, original, body)


def test_native_sample_and_folder_of_samples(tmp_path, original):
    assert len(open_sequence(SAMPLE_SCENE)) == 1
    for name in ("b", "a"):
        shutil.copytree(SAMPLE_SCENE, tmp_path / "set" / name)
    sequence = open_sequence(tmp_path / "set")
    assert sequence.frame_names == ["a", "b"]
    np.testing.assert_array_equal(sequence[1].keypoints, original.keypoints)
    with pytest.raises(IndexError):
        sequence[2]


def test_another_calibration_file_replaces_the_cameras(tmp_path, original):
    from dataclasses import replace

    from core.calibration import is_calibration_file, save_calibration

    folder = camera_folder(tmp_path, original, "images")
    np.save(folder / "keypoints.npy", np.stack([frame_keypoints(original, f) for f in range(FRAMES)]))
    moved = [replace(c, t=c.t + np.array([0.1, 0, 0])) for c in reversed(original.cameras)]  # another order too
    save_calibration(moved, tmp_path / "moved.toml", "toml")
    assert is_calibration_file(tmp_path / "moved.toml") and not is_calibration_file(folder / "keypoints.npy")
    sequence = with_calibration(open_sequence(folder), tmp_path / "moved.toml")
    sample = sequence[2]
    assert sample.view_names == original.view_names and len(sequence) == FRAMES
    np.testing.assert_allclose(sample.cameras[0].t, original.cameras[0].t + [0.1, 0, 0], atol=1e-9)
    np.testing.assert_allclose(sample.keypoints, frame_keypoints(original, 2))
    assert sample.calibration == str(tmp_path / "moved.toml")  # traces record it, to see their frame again
    save_calibration(moved[1:], tmp_path / "three.toml", "toml")
    with pytest.raises(InputError, match="three.toml: no camera for view"):
        with_calibration(open_sequence(folder), tmp_path / "three.toml")[0]
    save_calibration([replace(c, width=640) for c in moved], tmp_path / "wide.toml", "toml")
    with pytest.raises(InputError, match="wide.toml: .*image is 512x512"):
        with_calibration(open_sequence(folder), tmp_path / "wide.toml")[0]


def expect_refusal(folder, name: str) -> None:
    with pytest.raises(InputError, match=name):
        open_sequence(folder)


def test_inconsistent_folders_are_refused_with_the_file_named(tmp_path, original):
    folder = camera_folder(tmp_path, original, "images")
    write_detector_files(folder, original, "openpose/{}", BODY25, openpose_people)
    (folder / "images" / "cam03" / "000001.jpg").unlink()
    expect_refusal(folder, "differ, e.g. in frame 000001")
    shutil.rmtree(folder / "images" / "cam03")
    expect_refusal(folder, "3 views")  # a calibrated camera without images: missing view
    videos = camera_folder(tmp_path, original, "videos")
    np.save(videos / "keypoints.npy", np.stack([frame_keypoints(original, f) for f in range(FRAMES)]))
    assert len(open_sequence(videos)) == FRAMES
    writer = cv2.VideoWriter(str(videos / "videos" / "cam02.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 25,
                             (original.cameras[1].width, original.cameras[1].height))
    writer.write(cv2.cvtColor(original.frames[1], cv2.COLOR_RGB2BGR))
    writer.release()
    expect_refusal(videos, "cam02.avi: 1 frames where cam01.avi has 3")
    (videos / "videos" / "cam02.avi").write_bytes(b"not a video at all")
    expect_refusal(videos, "cam02.avi: unreadable video")


def test_detector_files_must_match_frames_and_skeleton(tmp_path, original):
    folder = camera_folder(tmp_path, original, "images")
    write_detector_files(folder, original, "openpose/{}", BODY25, openpose_people)
    extra = folder / "openpose" / "cam02" / "zz_keypoints.json"
    extra.write_text(json.dumps(openpose_people(np.zeros((17, 3)))))
    expect_refusal(folder, "cam02: 4 keypoint files for 3 frames")
    extra.unlink()
    last = sorted((folder / "openpose" / "cam04").glob("*.json"))[-1]
    last.write_text(json.dumps(openpose_people(np.ones((17, 3)))))
    expect_refusal(folder, f"{last.name}: 17 keypoints where .* has 25")


ARRAY_FAULTS = {
    "NaN": lambda k: np.where(np.arange(k.size).reshape(k.shape) == 5, np.nan, k),
    "one view short": lambda k: k[:, :3],
    "flat": lambda k: k.reshape(-1),
    "strings": lambda k: np.full(k.shape, "x"),
}


@pytest.mark.parametrize("fault", sorted(ARRAY_FAULTS))
def test_corrupted_arrays_are_refused(tmp_path, original, fault):
    folder = camera_folder(tmp_path, original, "images")
    np.save(folder / "keypoints.npy", ARRAY_FAULTS[fault](np.stack([frame_keypoints(original, f)
                                                                    for f in range(FRAMES)])))
    expect_refusal(folder, "keypoints.np")


@pytest.mark.parametrize("content", [b"", b"\x93NUMPY garbage", b"PK\x03\x04 truncated zip"])
def test_unreadable_array_files_are_refused(tmp_path, original, content):
    folder = camera_folder(tmp_path, original, "images")
    (folder / "keypoints.npz").write_bytes(content)
    expect_refusal(folder, "keypoints.npz")


@pytest.mark.parametrize("layout, content", [
    ("annots", b""), ("annots", b'{"annots": "x"}'), ("annots", b'{"annots": [{"keypoints": [[1, 2]]}]}'),
    ("annots", b'{"people": []}'), ("annots", b"\xff\xfe"),
    ("mmpose", b'{"annots": []}'), ("mmpose", b'[{"keypoints": [[1, 2]], "keypoint_scores": [1, 2]}]'),
    ("mmpose", b'[{"keypoints": "abc", "keypoint_scores": []}]'), ("mmpose", b'[{"keypoints": [[1, 2]]}]'),
    ("mmpose", b'[{"keypoints": [[NaN, 1]], "keypoint_scores": [1]}]'),
])
def test_corrupted_detector_files_are_refused(tmp_path, original, layout, content):
    folder = camera_folder(tmp_path, original, "images")
    writer, joints = (easymocap_annots, BODY25) if layout == "annots" else (mmpose_instances, COCO17)
    write_detector_files(folder, original, layout + "/{}", joints, writer)
    broken = sorted((folder / layout / "cam01").glob("*.json"))[1]
    broken.write_bytes(content)
    expect_refusal(folder, broken.name)


def test_infer_and_video_commands_on_a_frame_range(tmp_path, original):
    import subprocess
    import sys

    from core.trace import RefinementTrace

    root = Path(__file__).resolve().parent.parent
    folder = camera_folder(tmp_path, original, "images")
    np.save(folder / "keypoints.npy", np.stack([frame_keypoints(original, f) for f in range(FRAMES)]))

    def main(*args):
        return subprocess.run([sys.executable, str(root / "main.py"), *args], capture_output=True, text=True,
                              timeout=300)

    result = main("infer", "--data", str(folder), "--frames", "1", "2", "--batch", "2", "--iterations", "1",
                  "--device", "cpu", "--out", str(tmp_path / "run.npz"))
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.glob("run.*.npz")) == ["run.000001.npz", "run.000002.npz"]
    table = result.stdout[result.stdout.index("calibrated: per iteration, mean over 2 frames"):].splitlines()
    assert "reprojection_px" in table[1] and [row.split()[0] for row in table[2:4]] == ["0", "1"]  # iterations
    saved = RefinementTrace.load(tmp_path / "run.000002.npz")
    assert saved.info["sample_frame"] == 2 and saved.info["batch_size"] == 2
    video = main("video", "--trace", str(tmp_path / "run.000002.npz"), "--out", str(tmp_path / "f2.gif"))
    assert video.returncode == 0 and (tmp_path / "f2.gif").stat().st_size > 0, video.stderr
    from core.calibration import save_calibration

    save_calibration(original.cameras, tmp_path / "other.toml", "toml")
    other = main("infer", "--data", str(folder), "--calibration", str(tmp_path / "other.toml"), "--frames", "0", "0",
                 "--iterations", "1", "--device", "cpu", "--out", str(tmp_path / "other.npz"))
    assert other.returncode == 0, other.stderr
    recorded = RefinementTrace.load(tmp_path / "other.000000.npz").info["sample_calibration"]
    assert recorded == str(tmp_path / "other.toml")
    (tmp_path / "other.toml").unlink()  # the trace's frame cannot be seen through it any more: said, not guessed
    gone = main("video", "--trace", str(tmp_path / "other.000000.npz"), "--out", str(tmp_path / "o.gif"))
    assert gone.returncode != 0 and "other.toml" in gone.stderr
    outside = main("infer", "--data", str(folder), "--frames", "2", "3", "--out", str(tmp_path / "x.npz"))
    assert outside.returncode == 2 and "outside this sequence's 0..2" in outside.stderr


@pytest.mark.parametrize("mode", ["calibrated", "uncalibrated"])
def test_frames_refined_in_one_batch_equal_one_by_one(tmp_path, original, body, mode):
    from core.inference import refine_batch

    folder = camera_folder(tmp_path, original, "images")
    np.save(folder / "keypoints.npy", np.stack([frame_keypoints(original, f) for f in range(FRAMES)]))
    sequence = open_sequence(folder)
    samples = [sequence[f] for f in range(FRAMES)]
    model = load_model(None, body)
    batched = refine_batch(samples, model, mode, 2, device="cpu")
    for sample, trace in zip(samples, batched):
        alone = refine(sample, model, mode, 2, device="cpu")
        assert trace.info["sample_frame"] == sample.frame and trace.info["batch_size"] == FRAMES
        np.testing.assert_allclose(trace.vertices, alone.vertices, atol=1e-4)
        np.testing.assert_allclose(trace.joints2d, alone.joints2d, atol=1e-3)
    assert not np.allclose(batched[0].joints2d, batched[2].joints2d)  # each frame its own estimate
    with pytest.raises(ValueError, match="same number of views"):
        refine_batch([samples[0], two_views(samples[1])], model, mode, 1, device="cpu")


def two_views(sample):
    from dataclasses import replace

    return replace(sample, cameras=sample.cameras[:2], frames=sample.frames[:2], keypoints=sample.keypoints[:2])

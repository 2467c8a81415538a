import json
import shutil

import numpy as np
import pytest

from core.dataset_io import read_sample
from core.errors import InputError
from core.resources import SAMPLE_SCENE


@pytest.fixture
def sample_dir(tmp_path):
    target = tmp_path / "sample"
    shutil.copytree(SAMPLE_SCENE, target)
    return target


def test_bundled_sample_loads(sample_dir):
    sample = read_sample(sample_dir)
    assert sample.num_views == 4 and sample.joint_set == "h36m17"
    assert all(f is not None and f.dtype == np.uint8 and f.shape[2] == 3 for f in sample.frames)
    assert sample.ground_truth.has_smpl and sample.ground_truth.occluded.any()  # partly occluded, as shipped
    assert (sample.keypoints[..., 2] == 0).any() and (sample.keypoints[..., 2] > 0.6).any()


def test_sample_without_ground_truth_or_images(sample_dir):
    (sample_dir / "ground_truth.json").unlink()
    shutil.rmtree(sample_dir / "images" / "cam02")
    sample = read_sample(sample_dir)
    assert sample.ground_truth is None and sample.frames[1] is None and sample.frames[0] is not None


def test_corrupt_image_is_named(sample_dir):
    image = sample_dir / "images" / "cam03" / "000000.jpg"
    image.write_bytes(image.read_bytes()[:200])
    with pytest.raises(InputError, match="cannot decode image") as info:
        read_sample(sample_dir)
    assert str(image) in str(info.value)


def test_image_size_must_match_calibration(sample_dir):
    import cv2

    image = sample_dir / "images" / "cam01" / "000000.jpg"
    cv2.imwrite(str(image), np.zeros((100, 120, 3), np.uint8))
    with pytest.raises(InputError, match="120x100 but the calibration says 512x512"):
        read_sample(sample_dir)


def test_missing_view_in_keypoints(sample_dir):
    path = sample_dir / "keypoints.json"
    data = json.loads(path.read_text())
    del data["views"]["cam04"]
    path.write_text(json.dumps(data))
    with pytest.raises(InputError, match="no keypoints for view.*cam04") as info:
        read_sample(sample_dir)
    assert str(path) in str(info.value)


def test_nan_keypoints_are_rejected(sample_dir):
    path = sample_dir / "keypoints.json"
    data = json.loads(path.read_text())
    data["views"]["cam02"][3][0] = float("nan")
    path.write_text(json.dumps(data))
    with pytest.raises(InputError, match="NaN") as info:
        read_sample(sample_dir)
    assert str(path) in str(info.value)


def test_view_without_calibration(sample_dir):
    meta = json.loads((sample_dir / "sample.json").read_text())
    meta["views"].append("cam05")
    (sample_dir / "sample.json").write_text(json.dumps(meta))
    with pytest.raises(InputError, match="4 cameras but the data has 5 views"):
        read_sample(sample_dir)


def test_no_evidence_and_no_calibration(sample_dir):
    (sample_dir / "keypoints.json").unlink()
    with pytest.raises(InputError, match="no 2D evidence"):
        read_sample(sample_dir)
    for name in ("intri.yml", "sample.json"):
        (sample_dir / name).unlink()
    with pytest.raises(InputError, match="no calibration file"):
        read_sample(sample_dir)


def test_bad_ground_truth(sample_dir):
    path = sample_dir / "ground_truth.json"
    data = json.loads(path.read_text())
    data["smpl"]["body_pose"] = data["smpl"]["body_pose"][:10]
    path.write_text(json.dumps(data))
    with pytest.raises(InputError, match="body_pose must be 69"):
        read_sample(sample_dir)

"""The ONNX detector plug-in: tiny models exported by the test itself (no download) find a bright dot where it is,
through the crop, the normalisation, both output kinds and the way back to image pixels; a sequence without 2D
evidence gets its keypoints from the detector and runs through HeatFormer; bad configurations are refused."""
import json
from dataclasses import replace

import cv2
import numpy as np
import pytest
import torch

from core.detector import DetectorConfig, PoseDetector, box_from_keypoints
from core.errors import InputError
from core.inference import refine
from core.model.checkpoint import load_model
from core.sequence import open_sequence

from conftest import camera_folder

pytest.importorskip("onnx", reason="the test exports its ONNX models with torch.onnx, which needs the onnx package")
JOINTS = 17


class DotHeatmaps(torch.nn.Module):
    """Every joint's heatmap is the image brightness, pooled 4x: all joints sit on the brightest spot."""

    def forward(self, x):
        return torch.nn.functional.avg_pool2d(x.mean(1, keepdim=True), 4).repeat(1, JOINTS, 1, 1)


class DotSimcc(torch.nn.Module):
    """SimCC outputs: brightness profiles along x and y, at twice the input resolution."""

    def forward(self, x):
        brightness = x.mean(1)
        along_x = brightness.amax(1).unsqueeze(1).repeat(1, JOINTS, 1)  # (1, J, W)
        along_y = brightness.amax(2).unsqueeze(1).repeat(1, JOINTS, 1)  # (1, J, H)
        upsample = torch.nn.functional.interpolate
        return upsample(along_x, scale_factor=2.0, mode="nearest"), upsample(along_y, scale_factor=2.0, mode="nearest")


def export(module, path, outputs):
    torch.onnx.export(module, torch.zeros(1, 3, 256, 192), str(path), dynamo=False, input_names=["image"],
                      output_names=outputs)
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("onnx")
    return {"heatmap": export(DotHeatmaps(), folder / "heatmap.onnx", ["heatmaps"]),
            "simcc": export(DotSimcc(), folder / "simcc.onnx", ["simcc_x", "simcc_y"])}


def blob(x: int, y: int, sigma: float = 6.0) -> np.ndarray:
    """(480, 640) float in [0, 1]: a Gaussian spot whose one brightest pixel is (x, y), so no plateau hides it."""
    spot = np.zeros((480, 640), np.float32)
    spot[y, x] = 1.0
    spot = cv2.GaussianBlur(spot, (0, 0), sigma)
    return spot / spot.max()


def dot_image(x: int, y: int) -> np.ndarray:
    return np.repeat((blob(x, y) * 255).round().astype(np.uint8)[..., None], 3, axis=2)


@pytest.mark.parametrize("output, full_frame_px", [("heatmap", 20), ("simcc", 4)])
def test_the_dot_is_found_where_it_is(models, output, full_frame_px):
    detector = PoseDetector(DetectorConfig(models[output], output=output))
    image = dot_image(400, 150)
    found = detector.detect(image)
    assert found.shape == (JOINTS, 3)
    np.testing.assert_allclose(found[:, :2], np.tile([400, 150], (JOINTS, 1)), atol=full_frame_px)
    boxed = detector.detect(image, np.array([350.0, 100, 460, 230]))
    np.testing.assert_allclose(boxed[:, :2], np.tile([400, 150], (JOINTS, 1)), atol=4)
    assert (boxed[:, 2] == 1).all()
    elsewhere = detector.detect(image, np.array([20.0, 300, 120, 420]))  # the box decides where it looks
    assert (np.abs(elsewhere[:, :2] - [400, 150]).max(1) > 100).all() and (elsewhere[:, 2] == 0).all()


def test_bgr_models_get_bgr(models):
    blue_dot = np.zeros((480, 640, 3), np.uint8)
    blue_dot[:, :, 0] = 255  # an all-red image ...
    blue_dot[:, :, 2] = (blob(200, 300) * 255).round().astype(np.uint8)  # ... with a blue spot, in RGB
    # the model takes channel 0 only: in RGB the red everywhere is brightest, in BGR only the blue dot lights up
    export(Channel0(), models["heatmap"].with_name("c0.onnx"), ["heatmaps"])
    rgb = PoseDetector(DetectorConfig(models["heatmap"].with_name("c0.onnx"))).detect(blue_dot)
    bgr = PoseDetector(DetectorConfig(models["heatmap"].with_name("c0.onnx"), channels="bgr")).detect(blue_dot)
    np.testing.assert_allclose(bgr[:, :2], np.tile([200, 300], (JOINTS, 1)), atol=20)
    assert np.abs(rgb[:, :2] - [200, 300]).max() > 20


class Channel0(torch.nn.Module):
    def forward(self, x):
        return torch.nn.functional.avg_pool2d(x[:, :1], 4).repeat(1, JOINTS, 1, 1)


def test_box_from_keypoints_needs_two_confident_joints():
    keypoints = np.array([[10, 20, 0.9], [30, 5, 0.5], [500, 500, 0.1]], np.float32)
    assert box_from_keypoints(keypoints, 0.3).tolist() == [10, 5, 30, 20]
    assert box_from_keypoints(keypoints, 0.6) is None


def test_a_sequence_without_evidence_uses_the_detector(tmp_path, models, body, monkeypatch):
    from core.dataset_io import read_sample
    from core.resources import SAMPLE_SCENE

    sample = read_sample(SAMPLE_SCENE)
    folder = camera_folder(tmp_path, sample, "images")
    assert open_sequence(folder)[0].joint_set == "coco17"  # no keypoints: the built-in detector's
    blank = camera_folder(tmp_path / "blank", replace(sample, frames=[np.full_like(f, 90) for f in sample.frames]),
                          "images")
    with pytest.raises(InputError, match="built-in detector found nobody"):
        open_sequence(blank)[0]
    config_path = tmp_path / "rtm.json"
    config_path.write_text(json.dumps({"model": str(models["simcc"]), "output": "simcc", "joint_set": "coco17"}))
    with pytest.raises(InputError, match="lie at one point"):  # the test model puts every joint on one dot:
        open_sequence(folder, DetectorConfig.load(config_path))[0]  # degenerate evidence is refused
    boxes = []
    detect = PoseDetector.detect

    def spread(found):  # the joints a little apart, each where the model found the dot plus its own offset
        return found + np.stack([np.arange(JOINTS) * 4.0, np.arange(JOINTS) * 6.0, np.zeros(JOINTS)], 1)

    monkeypatch.setattr(PoseDetector, "detect", lambda self, image, box=None: boxes.append(box) or
                        spread(detect(self, image, box)))
    sequence = open_sequence(folder, DetectorConfig.load(config_path))
    first = sequence[0]
    assert first.joint_set == "coco17" and first.keypoints.shape == (4, 17, 3) and np.isfinite(first.keypoints).all()
    assert boxes == [None] * 4  # the first frame is searched whole
    sequence[1]
    assert all(box is not None for box in boxes[4:])  # the next one around the previous detections
    trace = refine(first, load_model(None, body), "calibrated", 1, device="cpu")
    assert np.isfinite(trace.vertices).all()


@pytest.mark.parametrize("content, problem", [
    ("{", "cannot read"), ('{"input_size": [192, 256]}', "at least \"model\""),
    ('{"model": "m.onnx", "colour": 1}', "unknown key"), ('{"model": "m.onnx", "output": "dense"}', "output must"),
    ('{"model": "m.onnx", "std": [0, 1, 1]}', "std must be 3 numbers"),
    ('{"model": "m.onnx", "joint_set": "mpii"}', "joint_set"), ('{"model": "m.onnx", "input_size": "big"}', "input_size"),
    ('{"model": "m.onnx", "mean": [NaN, 1, 1]}', "mean must be"), ('{"model": "m.onnx", "box_padding": 1e999}', "box_padding"),
    ('{"model": "m.onnx", "tracking_confidence": "high"}', "tracking_confidence"),
])
def test_bad_configurations_are_refused(tmp_path, content, problem):
    path = tmp_path / "detector.json"
    path.write_text(content)
    with pytest.raises(InputError, match=problem):
        DetectorConfig.load(path)


def test_bad_models_are_refused(tmp_path, models):
    with pytest.raises(InputError, match="no such ONNX model"):
        PoseDetector(DetectorConfig(tmp_path / "missing.onnx"))
    (tmp_path / "junk.onnx").write_bytes(b"\x08\x01garbage")
    with pytest.raises(InputError, match="junk.onnx: cannot load the ONNX model"):
        PoseDetector(DetectorConfig(tmp_path / "junk.onnx"))
    with pytest.raises(InputError, match="simcc model needs 2 output"):
        PoseDetector(DetectorConfig(models["heatmap"], output="simcc"))
    with pytest.raises(InputError, match="heatmap.onnx: the model takes 192x256 images; the configuration's "
                                         "input_size is 256x256"):
        PoseDetector(DetectorConfig(models["heatmap"], input_size=(256, 256)))
    wrong_joints = PoseDetector(DetectorConfig(models["heatmap"], joint_set="body25"))
    with pytest.raises(InputError, match="gives 17 joints; body25 has 25"):
        wrong_joints.detect(dot_image(100, 100))

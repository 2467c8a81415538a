"""The official preset reproduces the official HeatFormer: a reduced-size official network, seeded, was run on
fixed inputs by tests/fixtures/make_official_parity.py (on a machine with the official code); its checkpoint is
loaded here through core/model/checkpoint.py and every iteration's output is compared with the official one."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from core.crops import image_to_crop
from core.dataset_io import read_sample
from core.errors import InputError
from core.heatmaps import render_coarse_heatmaps
from core.inference import official_keypoints, refine
from core.model.checkpoint import load_model
from core.model.config import preset
from core.model.geometry import ViewGeometry
from core.model.network import ROOT
from core.resources import DEFAULT_CHECKPOINT, SAMPLE_SCENE
# how the fixture summarised the official heatmaps, made AdaFuse's weights and its crops
from fixtures.make_official_parity import blocks, generated_weights, heatmap_moments, normalised

FIXTURE = Path(__file__).parent / "fixtures" / "official_parity.pt"
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def fixture():
    return torch.load(FIXTURE, map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def run(fixture, body, tmp_path_factory):
    """Our network, loaded from the official-layout checkpoint, on the fixture's inputs."""
    path = tmp_path_factory.mktemp("official") / "model_best_iter3.pth.tar"
    torch.save(fixture["checkpoint"], path)
    config = preset("official", **fixture["config"])
    model = load_model(path, body, official=config)
    given = fixture["inputs"]
    batch, views = given["K"].shape[:2]
    geometry = ViewGeometry("calibrated", given["boxes"].float(), config.heatmap_size, given["K"].float(),
                            torch.zeros(batch, views, 8), given["root_cam"].float())
    crop = image_to_crop(given["joints2d"].float(), geometry.boxes, config.heatmap_size)
    heatmaps = model.render_heatmaps(crop, given["visible"].float())
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    images = ((given["images_uint8"].double() / 255.0 - mean.double()) / std.double()).float().permute(0, 1, 4, 2, 3)
    with torch.no_grad():
        states = model(images, heatmaps, geometry, fixture["config"]["iterations"])
    return model, heatmaps, states


def report(name: str, ours: torch.Tensor, theirs: torch.Tensor) -> float:
    difference = (ours.double() - theirs.double()).abs().max().item()
    print(f"{name}: max difference {difference:.2e}")
    return difference


def test_the_loader_fills_every_parameter_and_accounts_for_every_official_key(fixture, run):
    model = run[0]
    mapping = model.mapping_report
    assert not mapping.not_filled and not mapping.shape_mismatch
    assert set(mapping.mapped) | set(mapping.unused) == set(fixture["checkpoint"]["model"])
    # the fixture holds no AdaFuse and no SMPL model data: what is left unused, the official forward leaves unused
    assert set(mapping.unused) == {"GCEstimator.decshape.weight", "GCEstimator.decshape.bias",
                                   "GCEstimator.decoder.to_token_embedding.weight"}
    starts = fixture["checkpoint"]["model"]["smpl.init_pose"]
    assert torch.equal(model.init_pose.detach(), starts[1:])  # SMPL's mean pose, to which the heads add
    assert torch.equal(model.init_betas.detach(), fixture["checkpoint"]["model"]["smpl.init_shape"][0])


def test_input_heatmaps_match_the_official_rendering(fixture, run):
    ours = heatmap_moments(run[1])
    assert report("input heatmaps (moments)", ours, fixture["outputs"]["heatmap_moments"][0]) < TOLERANCE


def test_every_iteration_matches_the_official_network(fixture, run):
    states, expected = run[2], fixture["outputs"]
    assert len(states) == len(expected["pose_mat"]) + 1
    initial = states[0].joints + states[0].root[..., None, :]
    assert report("iteration 0 joints", initial, expected["initial_joints"]) < TOLERANCE
    for k, state in enumerate(states):
        moments = heatmap_moments(state.heatmaps)
        assert report(f"iteration {k} rendered heatmaps (moments)", moments, expected["heatmap_moments"][k + 1]) \
            < TOLERANCE * 10  # centroids in pixels: ten times the tolerance of values near 1
    for k, state in enumerate(states[1:]):
        rotations = torch.cat([state.global_orient[:, :, None], state.body_pose], dim=2)
        assert report(f"iteration {k + 1} rotations", rotations, expected["pose_mat"][k]) < TOLERANCE
        assert report(f"iteration {k + 1} betas", state.betas, expected["betas"][k]) < TOLERANCE
        joints = state.joints + state.root[..., None, :]
        assert report(f"iteration {k + 1} joints", joints, expected["regress_joints"][k]) < TOLERANCE
        assert torch.equal(state.joints[..., ROOT, :], torch.zeros_like(state.joints[..., ROOT, :]))


def test_official_heatmaps_peak_off_the_joint():
    """The official maps' rounding: the joint goes to the coarse cell of (x / stride + 0.5), whose centre, back
    at full size, lies between half a pixel before the joint and two pixels after it (stride 8/3)."""
    stride = 256 / 96
    after = 48.5 * stride + 0.01 - 32  # just past a rounding boundary: the next cell, 2.2 px on
    joints = torch.tensor([[[96.0, 128.0], [after, 128.0], [10.0, -40.0]]])
    maps = render_coarse_heatmaps(joints, (192, 256), 8.0, 96, visibility=torch.ones(1, 3), drop_outside=True)
    peak_x = maps[0, :2, 128].argmax(-1).float()
    assert peak_x[0] == 97 and peak_x[1] - after > 1.5
    assert maps[0, 2].abs().max() == 0  # outside the square: dropped, as for the official estimate's maps


def test_one_view_of_one_sample_runs(body):
    """The official orientation head squeezes its batch away and fails for one view of one sample; ours runs."""
    config = preset("official", heat_dim=16, heat_depth=1, image_dim=16, vit_depth=1, vit_heads=2,
                    decoder_depth=1, orient_dim=16, orient_depth=1)
    model = load_model(None, body, config)
    geometry = ViewGeometry("calibrated", torch.tensor([[[0.0, 0.0, 192.0, 256.0]]]), config.heatmap_size,
                            torch.tensor([[[[500.0, 0, 96], [0, 500, 128], [0, 0, 1]]]]), torch.zeros(1, 1, 8),
                            torch.tensor([[[0.0, 0.0, 4.0]]]))
    heatmaps = model.render_heatmaps(torch.full((1, 1, 17, 2), 96.0), torch.ones(1, 1, 17))
    with torch.no_grad():
        states = model(torch.zeros(1, 1, 3, 256, 192), heatmaps, geometry, 1)
    assert states[-1].betas.shape == (1, 1, 10) and torch.isfinite(states[-1].joints).all()


def test_official_dropouts_act_in_training_only(body):
    """The official preset's cross-attention dropout (0.5) and ViT stochastic depth (0.55) change a training
    pass and leave inference deterministic."""
    config = preset("official", heat_dim=16, heat_depth=1, image_dim=16, vit_depth=2, vit_heads=2,
                    decoder_depth=1, orient_dim=16, orient_depth=1)
    assert (config.decoder_cross_dropout, config.vit_drop_path) == (0.5, 0.55)
    model = load_model(None, body, config)
    torch.manual_seed(0)
    images = torch.randn(2, 3, 256, 192)
    context = torch.randn(1, 5, config.token_dim)
    tokens = torch.randn(1, 4, config.token_dim)
    with torch.no_grad():
        inference = [model.image_encoder(images) for _ in range(2)]
        decoded = [model.decoder[0](tokens, context) for _ in range(2)]
        model.train()
        training = model.image_encoder(images), model.decoder[0](tokens, context)
    assert torch.equal(*inference) and torch.equal(*decoded)
    assert not torch.allclose(training[0], inference[0]) and not torch.allclose(training[1], decoded[0])


@pytest.fixture(scope="module")
def with_fuser(fixture, tmp_path_factory) -> Path:
    """The fixture's official checkpoint with its AdaFuse weights (made, not stored: see the fixture script)."""
    fuser = {f"fuser.{k}": v for k, v in generated_weights(fixture["adafuse"]["shapes"]).items()}
    path = tmp_path_factory.mktemp("fuser") / "with_fuser.pth.tar"
    torch.save({"model": {**fixture["checkpoint"]["model"], **fuser}}, path)
    return path


def test_adafuse_matches_the_official_2d_estimator(fixture, body, with_fuser):
    """The official checkpoint's `fuser` (AdaFuse: pose ResNet, SCORE fusion along epipolar lines, windowed
    soft-argmax) loaded through the checkpoint loader gives the official 2D joints, fused and unfused."""
    given = fixture["adafuse"]
    model = load_model(with_fuser, body, official=preset("official", **fixture["config"]))
    assert model.adafuse is not None and not model.mapping_report.not_filled
    unused = {k for k in model.mapping_report.unused if k.startswith("fuser.")}
    assert unused and all(not k.startswith("fuser.resnet.") for k in unused)  # the view-weight net and loss only
    inputs = given["inputs"]
    crops = normalised(blocks(inputs["crop_blocks_uint8"].numpy()))
    as_float = {k: inputs[k].float() for k in ("to_heatmap", "K", "R", "t")}
    with torch.no_grad():
        alone, _ = model.adafuse(crops, as_float["to_heatmap"])
        fused, confidence = model.adafuse(crops, as_float["to_heatmap"], as_float["K"], as_float["R"], as_float["t"])
    assert report("AdaFuse, each view alone (px)", alone, given["outputs"]["j2d_NoFuse"]) < TOLERANCE * 10
    assert report("AdaFuse, fused across views (px)", fused, given["outputs"]["j2d_ScoreFuse"]) < TOLERANCE * 10
    assert not torch.allclose(fused, alone) and ((confidence >= 0) & (confidence <= 1)).all()


def test_official_2d_evidence_feeds_the_network(fixture, body, with_fuser, tmp_path):
    """With `official_2d` the sample's evidence only places AdaFuse's crops: the trace's input keypoints are
    AdaFuse's, fused across the calibrated views and used as they are (not reprojected from the triangulation),
    and each view's alone in uncalibrated mode. A checkpoint without AdaFuse, or no checkpoint, is refused."""
    sample = read_sample(SAMPLE_SCENE)
    config = preset("official", **fixture["config"])
    model = load_model(with_fuser, body, official=config, official_2d=True)
    for mode in ("calibrated", "uncalibrated"):
        trace = refine(sample, model, mode, 1, device="cpu")
        expected = official_keypoints(sample, model, mode, torch.device("cpu"))
        assert torch.allclose(torch.from_numpy(trace.input_keypoints), torch.from_numpy(expected), atol=1e-4)
        assert not torch.allclose(torch.from_numpy(expected[..., :2]), torch.from_numpy(sample.keypoints[..., :2]),
                                  atol=5.0)
    plain = tmp_path / "plain.pth.tar"
    torch.save(fixture["checkpoint"], plain)
    with pytest.raises(InputError, match="no official 2D network"):
        load_model(plain, body, official=config, official_2d=True)
    with pytest.raises(InputError, match="official checkpoint"):
        load_model(None, body, official_2d=True)


def test_the_command_line_refuses_official_2d_evidence_without_it(tmp_path):
    done = subprocess.run([sys.executable, str(Path(__file__).parents[1] / "main.py"), "infer", "--data",
                           str(SAMPLE_SCENE), "--official-2d", "--out", str(tmp_path / "t.npz")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "no official 2D network" in done.stderr and DEFAULT_CHECKPOINT.name in done.stderr
    assert not (tmp_path / "t.npz").exists()

import json
import subprocess
import sys
from dataclasses import fields, is_dataclass, replace
from pathlib import Path

import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_limits

from core.model.checkpoint import load_model
from core.model.config import COMPACT
from core.model.network import HeatFormer
from core.training import (DESCRIPTION, SyntheticBatches, TrainingConfig, compute_losses, make_batch,
                           perturbed_start, train)


def small_config(steps):
    return TrainingConfig(steps=steps, batch_size=2, views=(2, 3), iterations=2, image_size=(128, 128),
                          log_every=1, save_every=100)


def loss_log(checkpoint: Path) -> list[dict]:
    """The entries train() logged beside ``checkpoint``."""
    return [json.loads(line) for line in checkpoint.with_suffix(".log.jsonl").read_text().splitlines()]


def test_training_steps_save_a_loadable_checkpoint_and_resume(body, tmp_path):
    out = tmp_path / "model.pt"
    train(out, small_config(2), body, device="cpu", log=lambda _: None)
    model = load_model(out, body)
    assert model.trained and model.description == DESCRIPTION
    lines = loss_log(tmp_path / "model.pt")
    assert [entry["step"] for entry in lines] == [1, 2]
    assert all(np.isfinite(entry["total"]) and entry["samples_per_s"] > 0 for entry in lines)  # throughput too
    train(out, small_config(3), body, device="cpu", resume=True, log=lambda _: None)
    lines = loss_log(tmp_path / "model.pt")
    assert [entry["step"] for entry in lines] == [1, 2, 3]  # resumed at step 2, not restarted
    start_only = tmp_path / "start_only.pt"  # the evidence's losses on the start alone: no heatmap term, logged as 0
    train(start_only, replace(small_config(1), evidence_losses="start"), body, device="cpu", log=lambda _: None)
    assert loss_log(start_only)[0]["heatmap"] == 0 and loss_log(start_only)[0]["joints2d"] > 0


def batch_arrays(value, name="batch") -> dict[str, torch.Tensor]:
    """Every tensor and array in a drawn batch (through tuples and dataclasses), by its path."""
    if isinstance(value, torch.Tensor):
        return {name: value}
    if isinstance(value, np.ndarray):
        return {name: torch.from_numpy(value)}
    if is_dataclass(value):
        return {k: t for f in fields(value) for k, t in batch_arrays(getattr(value, f.name), f"{name}.{f.name}").items()}
    if isinstance(value, (tuple, list)):
        return {k: t for i, item in enumerate(value) for k, t in batch_arrays(item, f"{name}[{i}]").items()}
    return {}


def test_batches_depend_on_the_seed_and_step_only_whatever_the_threads_and_workers(body):
    """Batch k is bit for bit the same when drawn on 1, 2 or 4 torch and BLAS threads, in this process or in
    two DataLoader workers. At this batch size a full-mesh skinning sum is split over threads: before the batch
    maker ran on one thread, 4 threads changed the targets' vertices in the last bits."""
    model = HeatFormer(COMPACT, body)
    config = replace(small_config(3), batch_size=8, views=(3, 4))
    dataset = SyntheticBatches(model, config, torch.arange(0, body.num_vertices, 16))
    threads = torch.get_num_threads()
    drawn = {}
    try:
        for count in (1, 2, 4):
            torch.set_num_threads(count)
            with threadpool_limits(limits=count):
                drawn[f"{count} threads"] = [batch_arrays(dataset[k]) for k in range(config.steps)]
    finally:
        torch.set_num_threads(threads)
    loader = torch.utils.data.DataLoader(dataset, batch_size=None, sampler=range(config.steps), num_workers=2)
    drawn["2 workers"] = [batch_arrays(batch) for batch in loader]
    reference = drawn.pop("1 threads")
    assert all(len(batch) > 10 for batch in reference)
    for how, batches in drawn.items():
        for k, (ours, theirs) in enumerate(zip(batches, reference)):
            assert ours.keys() == theirs.keys()
            for name, tensor in ours.items():
                assert torch.equal(tensor, theirs[name]), f"{how}, batch {k}: {name} differs"


def test_worker_processes_draw_the_same_batches(body, tmp_path):
    """Batch k depends on the seed and k only: training with batches drawn by two worker processes ends at the
    same weights as training with batches drawn between steps."""
    weights = []
    for workers in (0, 2):
        out = tmp_path / f"workers{workers}.pt"
        train(out, small_config(3), body, device="cpu", log=lambda _: None, workers=workers)
        weights.append(load_model(out, body).state_dict())
        lines = loss_log(out)
        assert [entry["step"] for entry in lines] == [1, 2, 3]
    train(tmp_path / "start.pt", small_config(0), body, device="cpu", log=lambda _: None)
    start = load_model(tmp_path / "start.pt", body).state_dict()
    assert any(not torch.equal(tensor, start[name]) for name, tensor in weights[0].items())  # they did train
    for name, tensor in weights[0].items():
        torch.testing.assert_close(weights[1][name], tensor, msg=name)


def test_the_truth_scores_zero_and_an_untrained_model_does_not(body):
    """Targets and predictions live in the same frames: predicting the ground-truth parameters gives (almost)
    zero 3D, pose, shape and vertex losses, while random weights do not."""
    from core.rotations import matrix_to_rot6d

    torch.manual_seed(0)
    model = HeatFormer(COMPACT, body)
    index = torch.arange(0, body.num_vertices, 16)
    config = small_config(1)
    with torch.no_grad():
        prepared, targets = make_batch(model, np.random.default_rng(1), config, "calibrated", index,
                                       torch.device("cpu"))
        b, v = targets.orient.shape[:2]
        truth = model.state(prepared.geometry, matrix_to_rot6d(targets.orient),
                            matrix_to_rot6d(targets.pose)[:, None].expand(b, v, 23, 6),
                            targets.betas[:, None].expand(b, v, -1), torch.zeros(b, v, 3))
        perfect = compute_losses(model, [truth, truth], prepared, targets, index, config.weights)
        states = model(prepared.images, prepared.heatmaps, prepared.geometry, 1)
        untrained = compute_losses(model, states, prepared, targets, index, config.weights)
    for name in ("joints3d", "pose", "betas", "vertices", "orient"):
        assert perfect[name] < 1e-4, name
        assert untrained[name] > 10 * perfect[name] + 1e-4, name
    with torch.no_grad():  # the evidence's losses on the start alone: the 2D joints of iteration 0, no heatmaps
        start_only = compute_losses(model, states, prepared, targets, index, config.weights, "start")
        first = compute_losses(model, states[:1], prepared, targets, index, config.weights)
    assert float(start_only["heatmap"].detach()) == 0 and untrained["heatmap"] > 0  # logged as every term is
    torch.testing.assert_close(start_only["joints2d"], first["joints2d"])
    assert untrained["joints2d"] > start_only["joints2d"] > 0
    torch.testing.assert_close(start_only["joints3d"], untrained["joints3d"])


def test_batches_come_from_the_chosen_rigs(body):
    model = HeatFormer(COMPACT, body)
    config = replace(small_config(1), rigs=("behave", "mpi_inf_3dhp"), views=(2, 8))
    rng = np.random.default_rng(3)
    seen = set()
    for _ in range(4):
        prepared, _ = make_batch(model, rng, config, "calibrated", torch.arange(0, body.num_vertices, 64),
                                 torch.device("cpu"))
        assert 2 <= prepared.keypoints.shape[1] <= 8 and np.isfinite(prepared.keypoints).all()
        seen.add(prepared.geometry.K[0, 0, 0, 0].item() / 128 < 0.6)  # BEHAVE's wide field of view, or not
    assert seen == {True, False}


def test_rigs_are_drawn_at_the_chosen_frame_widths():
    """With `image_widths` each batch's rig has one of them (its aspect kept); without, the run's image size."""
    from core.training import draw_rig

    config = TrainingConfig(rigs=("ring", "video"), image_widths=(320, 1280))
    rng = np.random.default_rng(0)
    drawn = [draw_rig(rng, config).image_size for _ in range(24)]
    assert {width for width, _ in drawn} == {320, 1280}
    assert {round(height / width, 2) for width, height in drawn} == {1.0, 0.56}  # square ring, 16:9 video
    assert {draw_rig(rng, TrainingConfig()).image_size[0] for _ in range(5)} == {256}


def test_a_perturbed_start_turns_the_joints_of_about_half_the_samples(body):
    """`start_noise_deg`: the closed-form start of some samples turned joint by joint by rotations of about the
    spread asked for, their betas moved; the rest as they were, and an unknown start stays unknown."""
    from core.model.config import preset

    model = HeatFormer(preset("compact", orientation_init="triangulated", pose_init="triangulated"), body)
    config = replace(small_config(1), batch_size=8, views=(3, 3))
    prepared, _ = make_batch(model, np.random.default_rng(5), config, "calibrated",
                             torch.arange(0, body.num_vertices, 64), torch.device("cpu"))
    geometry = prepared.geometry
    geometry.pose_init[0] = float("nan")
    shaken = perturbed_start(geometry, np.random.default_rng(1), 10.0)
    assert torch.isnan(shaken.pose_init[0]).all()
    relative = geometry.pose_init[1:].transpose(-1, -2) @ shaken.pose_init[1:]  # (B-1, 23, 3, 3) the turns
    angle = torch.rad2deg(torch.arccos(((relative.diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2).clamp(-1, 1)))
    turned = angle.mean(1) > 1.0
    assert 0 < turned.sum() < len(turned)
    assert torch.allclose(relative[~turned], torch.eye(3).expand_as(relative[~turned]), atol=1e-5)
    # three axes of 10 degrees each: a turn of about 10 * sqrt(3) * 0.92 = 16 degrees on average
    assert 10.0 < angle[turned].mean() < 22.0, angle[turned].mean()
    moved = (shaken.betas_init[1:] - geometry.betas_init[1:]).abs().sum(-1) > 0
    assert torch.equal(moved, turned)
    assert torch.allclose(shaken.pose_init[1:] @ shaken.pose_init[1:].transpose(-1, -2),
                          torch.eye(3).expand_as(relative), atol=1e-5)  # still rotations


def test_fine_tuning_starts_from_the_given_weights(body, tmp_path):
    from core.resources import DEFAULT_CHECKPOINT

    shipped = load_model(DEFAULT_CHECKPOINT, body)
    out = tmp_path / "tuned.pt"
    train(out, replace(small_config(1), lr=0.0), body, shipped.config, device="cpu", log=lambda _: None,
          init=DEFAULT_CHECKPOINT)
    tuned = dict(load_model(out, body).named_parameters())
    for name, value in shipped.named_parameters():  # a zero learning rate: exactly the weights it started from
        assert torch.equal(value, tuned[name]), name  # (batch-norm statistics do move in training mode)


def test_evidence_losses_reach_all_iterations_or_the_start_only():
    """A training config names which iterations the evidence losses reach; anything else is refused, by name."""
    assert TrainingConfig(evidence_losses="start").evidence_losses == "start"
    with pytest.raises(ValueError, match="evidence_losses"):
        TrainingConfig(evidence_losses="first")


def test_an_uncalibrated_fit_needs_a_view_lifter_to_place_the_views(body, tmp_path):
    """`uncalibrated_fit_steps` fits the views a view lifter places: a network without one is refused, by name."""
    from core.model.config import preset

    config = preset("compact", orientation_init="triangulated", pose_init="triangulated", uncalibrated_fit_steps=2)
    with pytest.raises(ValueError, match="uncalibrated_fit_steps.*view lifter"):
        train(tmp_path / "model.pt", small_config(1), body, config, device="cpu", log=lambda _: None)


def test_fresh_heads_leave_a_close_start_as_it_is(body, tmp_path):
    """`fresh_heads` fine-tunes a decoder with new pose and shape heads, every other weight kept: each pass then
    leaves a triangulated start nearly where it began (run 22's heads, trained from the mean pose, had moved it
    by 4 cm)."""
    from core.dataset_io import read_sample
    from core.inference import prepare
    from core.resources import DEFAULT_CHECKPOINT, SAMPLE_SCENE

    shipped = load_model(DEFAULT_CHECKPOINT, body)
    start = replace(shipped.config, orientation_init="triangulated", pose_init="triangulated")
    heads = ("pose_head.weight", "pose_head.bias", "shape_head.weight", "shape_head.bias")
    for fresh in (False, True):
        out = tmp_path / f"fresh{fresh}.pt"
        train(out, replace(small_config(1), lr=0.0, fresh_heads=fresh), body, start, device="cpu",
              log=lambda _: None, init=DEFAULT_CHECKPOINT)
        model = load_model(out, body)
        tuned, kept = model.state_dict(), shipped.state_dict()
        for name, value in kept.items():
            assert torch.equal(tuned[name], value) != (fresh and name in heads), name
        if fresh:
            assert tuned["pose_head.weight"].std() < 2e-3 and not tuned["pose_head.bias"].any()
            prepared = prepare(read_sample(SAMPLE_SCENE), model, "calibrated", torch.device("cpu"))
            with torch.no_grad():
                states = model(prepared.images, prepared.heatmaps, prepared.geometry, 3)
            moved = max(float((s.joints - states[0].joints).norm(dim=-1).mean()) for s in states[1:])
            assert moved < 0.015, moved  # metres; measured 0.008


def test_fine_tuning_to_another_offset_unit_starts_as_the_same_network(body, tmp_path):
    """`triangulated_offset_unit`: a checkpoint fine-tuned to read the triangulated offsets in another unit has its
    embedding's first layer rescaled (and the unit recorded): before any step, the same estimate."""
    from core.dataset_io import read_sample
    from core.inference import prepare
    from core.resources import DEFAULT_CHECKPOINT, SAMPLE_SCENE

    shipped = load_model(DEFAULT_CHECKPOINT, body)
    assert shipped.config.triangulated_offsets
    unit = shipped.config.triangulated_offset_unit / 2
    out = tmp_path / "half_unit.pt"
    trained_as = replace(small_config(1), lr=0.0, iterations=shipped.config.iterations)  # its step gate reads them
    train(out, trained_as, body, replace(shipped.config, triangulated_offset_unit=unit), device="cpu",
          log=lambda _: None, init=DEFAULT_CHECKPOINT)
    tuned = load_model(out, body)
    assert tuned.config.triangulated_offset_unit == unit
    before = shipped.triangulated_embed[0].weight.unflatten(1, (17, 4))
    after = tuned.triangulated_embed[0].weight.unflatten(1, (17, 4))
    assert torch.allclose(after[..., :3], before[..., :3] * 0.5) and torch.equal(after[..., 3], before[..., 3])
    sample = read_sample(SAMPLE_SCENE)
    estimates = []
    for model in (shipped, tuned):
        prepared = prepare(sample, model, "calibrated", torch.device("cpu"))
        with torch.no_grad():
            estimates.append(model(prepared.images, prepared.heatmaps, prepared.geometry, 3))
    for a, b in zip(*estimates):
        assert torch.allclose(a.joints, b.joints, atol=1e-5)
    assert (estimates[0][3].joints - estimates[0][0].joints).abs().max() > 1e-3  # the passes do move it


def test_a_new_embedding_learns_at_its_own_rate(body, tmp_path):
    """`new_lr_scale` multiplies the learning rate of the parameters the starting checkpoint lacks, and only
    theirs: one AdamW step moves each parameter by about its rate."""
    from core.model.config import preset

    base = tmp_path / "base.pt"
    train(base, small_config(1), body, COMPACT, device="cpu", log=lambda _: None)
    grown = preset("compact", iteration_embedding=True)
    moved = {}
    for scale in (1.0, 100.0):
        out = tmp_path / f"scale{scale}.pt"
        train(out, replace(small_config(1), lr=1e-4, new_lr_scale=scale), body, grown, device="cpu",
              log=lambda _: None, init=base)
        tuned, start = load_model(out, body), load_model(base, body)
        moved[scale] = (float(tuned.iteration_embed.detach().abs().max()),
                        float((tuned.query_embed.weight - start.query_embed.weight).detach().abs().max()))
    assert moved[100.0][0] > 30 * moved[1.0][0], moved
    assert moved[100.0][1] < 3e-4 and moved[1.0][1] < 3e-4, moved  # the others' rate is the same


def test_fine_tuning_may_grow_or_drop_the_orientation_head_and_iterate_more_but_no_other_change(body, tmp_path):
    """`init` into a network with `refine_orientation` adds its zero head: at first the same function as the
    network without it (every iteration keeps the head's orientation); a learning rate moves it, and the
    iterations then change the orientation. The iteration count and where the orientation starts may change too,
    and the head may be dropped again; any other difference of configuration is refused."""
    from core.dataset_io import read_sample
    from core.errors import InputError
    from core.inference import prepare, refine
    from core.model.config import preset
    from core.resources import SAMPLE_SCENE

    sample = read_sample(SAMPLE_SCENE)
    base = tmp_path / "base.pt"  # a checkpoint without the head
    train(base, small_config(1), body, COMPACT, device="cpu", log=lambda _: None)
    grown = preset("compact", refine_orientation=True)
    out = tmp_path / "grown.pt"
    train(out, replace(small_config(1), lr=0.0), body, grown, device="cpu", log=lambda _: None, init=base)
    same = load_model(out, body)
    assert same.config.refine_orientation and not same.orient_head.weight.any()
    plain = HeatFormer(load_model(base, body).config, body)  # the same weights without the head (batch norm
    plain.load_state_dict({k: v for k, v in same.state_dict().items() if not k.startswith("orient_head.")})  # moved)
    prepared = prepare(sample, same, "calibrated", torch.device("cpu"))
    with torch.no_grad():
        before, after = (m.eval()(prepared.images, prepared.heatmaps, prepared.geometry, 3) for m in (plain, same))
    for old, new in zip(before, after):
        torch.testing.assert_close(new.joints, old.joints)
        torch.testing.assert_close(new.global_orient, after[0].global_orient)  # as the orientation head gave it

    train(out, replace(small_config(3), lr=1e-3), body, grown, device="cpu", log=lambda _: None, init=base)
    moved = refine(sample, load_model(out, body), "calibrated", 3, device="cpu")
    assert not np.allclose(moved.global_orient[1:], moved.global_orient[:1], atol=1e-4)

    longer = replace(small_config(1), iterations=4, lr=0.0)  # iterations too may change in fine-tuning,
    torso = replace(grown, orientation_init="triangulated", pose_init="triangulated")  # and where it starts
    train(out, longer, body, torso, device="cpu", log=lambda _: None, init=base)
    assert load_model(out, body).config.iterations == 4
    assert load_model(out, body).config.orientation_init == "triangulated"
    assert load_model(out, body).config.pose_init == "triangulated"

    messages = []  # turning the switch off drops the head, and says so
    train(tmp_path / "shrunk.pt", small_config(1), body, COMPACT, device="cpu", log=messages.append, init=out)
    assert "dropped, its switch is off: orient_head" in messages
    assert not hasattr(load_model(tmp_path / "shrunk.pt", body), "orient_head")
    with pytest.raises(InputError, match="configuration differs"):
        train(tmp_path / "other.pt", small_config(1), body, preset("compact", decoder_depth=1), device="cpu",
              log=lambda _: None, init=base)


def test_spatial_queries_fine_tune_into_pooled_ones_with_the_same_weights(body, tmp_path):
    """The paper's pooled-query ablation is a switch of the same weights: `init` from a spatial checkpoint keeps
    every parameter, records the switch, and the network then computes another function (one token per view)."""
    from core.dataset_io import read_sample
    from core.inference import prepare
    from core.model.config import preset
    from core.resources import SAMPLE_SCENE

    base = tmp_path / "spatial.pt"
    train(base, small_config(1), body, COMPACT, device="cpu", log=lambda _: None)
    out = tmp_path / "pooled.pt"
    train(out, replace(small_config(1), lr=0.0), body, preset("compact", query="pooled"), device="cpu",
          log=lambda _: None, init=base)
    spatial, pooled = load_model(base, body), load_model(out, body)
    assert pooled.config.query == "pooled" and spatial.config.query == "spatial"
    weights = dict(pooled.named_parameters())
    for name, value in spatial.named_parameters():
        assert torch.equal(value, weights[name]), name
    prepared = prepare(read_sample(SAMPLE_SCENE), pooled, "calibrated", torch.device("cpu"))
    with torch.no_grad():
        a, b = (m.eval()(prepared.images, prepared.heatmaps, prepared.geometry, 2)[-1] for m in (spatial, pooled))
    assert not torch.allclose(a.body_pose, b.body_pose, atol=1e-4)


def test_a_network_that_reads_no_frames_fine_tunes_from_one_that_does_and_draws_none(body, tmp_path):
    from core.model.config import preset

    base = tmp_path / "base.pt"
    train(base, small_config(1), body, COMPACT, device="cpu", log=lambda _: None)
    messages = []
    out = tmp_path / "blind.pt"
    train(out, replace(small_config(1), appearance=True), body, preset("compact", image_features="none"),
          device="cpu", log=messages.append, init=base)
    blind = load_model(out, body)
    assert blind.config.image_features == "none" and blind.image_encoder is None
    assert blind.description.endswith("not the frames")
    assert "dropped, its switch is off: image_encoder" in messages
    prepared, _ = make_batch(blind, np.random.default_rng(3), small_config(1), "calibrated",
                             torch.arange(0, body.num_vertices, 16), torch.device("cpu"))
    assert (prepared.images == prepared.images[..., :1, :1]).all()  # blank frames: nothing was drawn


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_training_on_cuda_with_batches_from_a_worker(body, tmp_path):
    out = tmp_path / "cuda.pt"
    train(out, small_config(2), body, device="cuda", log=lambda _: None, workers=1)
    lines = loss_log(out)
    assert [entry["step"] for entry in lines] == [1, 2] and all(np.isfinite(e["total"]) for e in lines)
    assert load_model(out, body).trained


def test_train_command_takes_loss_weights_and_names_a_wrong_one(tmp_path):
    root = Path(__file__).resolve().parent.parent
    command = [sys.executable, str(root / "main.py"), "train", "--out", str(tmp_path / "w.pt"), "--steps", "1",
               "--batch-size", "1", "--views", "2", "2", "--iterations", "1", "--device", "cpu"]
    result = subprocess.run(command + ["--weight", "orient=1.5", "--weight", "betas=0"], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    weights = torch.load(tmp_path / "w.pt", weights_only=False)["training"]["weights"]
    assert weights["orient"] == 1.5 and weights["betas"] == 0 and weights["joints3d"] == 1.0
    for bad, message in (("elbow=1", "no loss named 'elbow'"), ("orient=x", "'x' is not a number"),
                         ("pose=-1", "finite and not negative")):
        result = subprocess.run(command + ["--weight", bad], capture_output=True, text=True, timeout=300)
        assert result.returncode != 0 and message in result.stderr
    result = subprocess.run(command + ["--image-features", "none", "--appearance"], capture_output=True, text=True,
                            timeout=300)  # frames drawn for a network that reads none: refused, with the reason
    assert result.returncode != 0 and "does not read" in result.stderr
    result = subprocess.run(command + ["--offset-joints", "above_knees"], capture_output=True, text=True,
                            timeout=300)  # a choice among offsets the decoder is not given: refused
    assert result.returncode != 0 and "--joint-offsets" in result.stderr
    result = subprocess.run(command + ["--torso-alignment", "posed"], capture_output=True, text=True,
                            timeout=300)  # the estimate's torso turned onto a triangulation the network does not read
    assert result.returncode != 0 and "--orientation-init triangulated" in result.stderr

import json
import os
from dataclasses import replace

import numpy as np
import pytest
import torch

from core.model.checkpoint import load_model
from core.model.config import preset
from core.model.joint_prior import JointPrior
from core.prior_training import PriorPairs, train_start_prior
from core.training import TrainingConfig, train


def test_an_untrained_prior_returns_the_joints_as_triangulated_and_fills_in_the_unknown():
    prior = JointPrior(17, 32)
    joints = torch.randn(3, 17, 3) * 0.3
    joints = joints - joints[:, :1]
    assert torch.allclose(prior(joints), joints)
    joints[1, 5] = float("nan")
    out = prior(joints)
    assert torch.isfinite(out).all() and torch.allclose(out[0], joints[0])


def test_a_joint_prior_needs_the_closed_form_start(body, tmp_path):
    from core.errors import InputError
    from core.model.checkpoint import save_checkpoint
    from core.model.network import HeatFormer

    with pytest.raises(ValueError, match="joint_prior"):
        preset("compact", joint_prior=64).validate()
    preset("compact", orientation_init="triangulated", pose_init="triangulated", joint_prior=64).validate()
    mean_start = tmp_path / "mean.pt"
    save_checkpoint(HeatFormer(preset("compact"), body), mean_start, "untrained")
    with pytest.raises(InputError, match="mean pose"):  # named by its file, before any sample is drawn
        train_start_prior(tmp_path / "prior.pt", mean_start, body, TrainingConfig(), samples=16, width=8)


def test_prior_pairs_are_the_triangulated_and_true_joints_in_the_body_frame(body):
    """Pairs of a batch come from its own generator: the same pairs again; the triangulated joints lie near the
    true ones (jitter, misses and swaps apart), both relative to the root and upright in the torso's frame."""
    from core.model.network import HeatFormer

    model = HeatFormer(preset("compact", orientation_init="triangulated", pose_init="triangulated"), body)
    config = TrainingConfig(batch_size=6, rigs=("ring",), seed=4)
    pairs = PriorPairs(body, model.rest_joints(), config, 2)
    x, y = pairs[1]
    again, _ = pairs[1]
    assert x.shape == y.shape and x.shape[1:] == (17, 3) and len(x) >= 4
    assert np.array_equal(x, again, equal_nan=True)
    assert np.allclose(y[:, 0], 0) and np.nanmedian(np.linalg.norm(x - y, axis=-1)) < 0.08
    head_top = model.rest_joints()[10] - model.rest_joints()[0]
    assert head_top[1] > 0.4 and np.median(y[:, 10, 1]) > 0.4  # the body frame's up is the rest pose's up


def test_a_trained_prior_moves_the_start_towards_the_truth_and_is_saved_with_the_network(body, tmp_path):
    """Trained on a few hundred synthetic samples for a few hundred steps, the prior's joints are nearer the
    truth than the triangulated ones on its held-out pairs; the checkpoint keeps every other weight (a prior it had
    is replaced), records the prior's width, and calibrated mode's start is read off the new prior's joints."""
    from core.dataset_io import read_sample
    from core.inference import prepare
    from core.resources import DEFAULT_CHECKPOINT, SAMPLE_SCENE

    out = tmp_path / "prior.pt"
    config = TrainingConfig(steps=300, batch_size=16, lr=1e-3, seed=7, rigs=("ring",), log_every=100)
    train_start_prior(out, DEFAULT_CHECKPOINT, body, config, samples=480, width=64, log=lambda _: None)
    last = [json.loads(line) for line in out.with_suffix(".log.jsonl").read_text().splitlines()][-1]
    assert last["held_out_m"] < last["triangulated_held_out_m"], last
    shipped, tuned = load_model(DEFAULT_CHECKPOINT, body), load_model(out, body)
    assert tuned.config == replace(shipped.config, joint_prior=64)
    for name, value in shipped.state_dict().items():  # the shipped prior, if any, is replaced
        assert name.startswith("joint_prior.") or torch.equal(tuned.state_dict()[name], value), name
    sample = read_sample(SAMPLE_SCENE)
    starts = [prepare(sample, model, "calibrated", torch.device("cpu")).geometry.pose_init for model in (shipped, tuned)]
    assert not torch.allclose(starts[0], starts[1], atol=1e-4)
    # the decoder fine-tuned from it: the prior comes along and is not trained with it
    decoder = tmp_path / "decoder.pt"
    train(decoder, TrainingConfig(steps=2, batch_size=2, views=(2, 3), iterations=2, image_size=(128, 128)), body,
          tuned.config, device="cpu", log=lambda _: None, init=out)
    again = load_model(decoder, body)
    assert again.config.joint_prior == 64
    moved = [name for name, value in tuned.state_dict().items() if not torch.equal(again.state_dict()[name], value)]
    assert moved and not any(name.startswith("joint_prior.") for name in moved)


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts this process's open files in /proc")
def test_drawn_pairs_hold_no_file_per_batch(body):
    """A worker hands its batches over in shared memory, one open file each until freed: kept as drawn, 200,000
    samples' batches ran out of file descriptors (run 46). The drawn batches are copies: the open files do not grow
    with them."""
    from core.prior_training import draw_pairs

    pairs = PriorPairs(body, load_model(None, body).rest_joints(), TrainingConfig(batch_size=1, rigs=("ring",)), 100)
    before = len(os.listdir("/proc/self/fd"))
    during = []  # the log is called after the 100th batch, with every batch still held
    inputs, truths = draw_pairs(pairs, 1, lambda _: during.append(len(os.listdir("/proc/self/fd"))), lambda: False,
                                "pairs")
    assert len(inputs) == len(truths) == 100 and not inputs.is_shared()
    assert during and during[0] < before + 30, (before, during)

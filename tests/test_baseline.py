"""The SMPLify-style baseline: it fits the evidence, never reads ground truth, and its errors are measured like
HeatFormer's."""
import dataclasses

import numpy as np
import pytest

from core.baseline import FitSettings, fit_smplify
from core.evaluation import fit_errors
from core.synthetic import generate_sample


@pytest.fixture(scope="module")
def sample(body):
    return generate_sample(body, seed=4242, occluders=0)


@pytest.fixture(scope="module")
def fit(sample, body):
    return fit_smplify(sample, body)


def test_fit_explains_the_evidence_and_recovers_the_body(fit, sample, body):
    start = fit_smplify(sample, body, FitSettings(stage_steps=(0, 0)))  # the rest pose on the triangulated torso
    assert fit.reprojection_px < 0.5 * start.reprojection_px
    errors, before = fit_errors(fit, sample, body), fit_errors(start, sample, body)
    assert errors["mpjpe_mm"] < 60 and errors["mpjpe_mm"] < 0.5 * before["mpjpe_mm"]
    assert errors["pa_mpjpe_mm"] < 60 and "mpvpe_mm" in errors
    assert fit.vertices.shape == (body.num_vertices, 3) and fit.seconds > 0


def test_fit_reads_no_ground_truth(fit, sample, body):
    poisoned = dataclasses.replace(sample, ground_truth=dataclasses.replace(
        sample.ground_truth, joints3d=np.full_like(sample.ground_truth.joints3d, np.nan)))
    again = fit_smplify(poisoned, body)
    np.testing.assert_allclose(again.joints3d, fit.joints3d, atol=1e-5)

"""Traces are reopened from anywhere: every way a trace file can be wrong is refused with the file named, and
names that came from data never steer an export out of the chosen folder."""
import json

import numpy as np
import pytest

from core.dataset_io import read_sample
from core.errors import InputError
from core.export import export_meshes
from core.files import safe_filename
from core.inference import refine
from core.model.checkpoint import load_model
from core.resources import SAMPLE_SCENE
from core.trace import RefinementTrace


@pytest.fixture(scope="module")
def saved(body, tmp_path_factory) -> dict[str, np.ndarray]:
    """The arrays of a valid trace file, as np.load gives them."""
    path = tmp_path_factory.mktemp("trace") / "valid.npz"
    refine(read_sample(SAMPLE_SCENE), load_model(None, body), "calibrated", 1, device="cpu").save(path)
    with np.load(path) as archive:
        return {k: archive[k] for k in archive.files}


def header_with(saved, **changes) -> np.ndarray:
    header = json.loads(str(saved["header"]))
    header.update(changes)
    return np.array(json.dumps({k: v for k, v in header.items() if v is not ...}))


def mutations(saved) -> dict[str, dict]:
    vertices = saved["vertices"].copy()
    vertices[0, 0, 0, 0] = np.nan
    faces_negative, faces_beyond = saved["faces"].copy(), saved["faces"].copy()
    faces_negative[0, 0], faces_beyond[0, 0] = -1, saved["vertices"].shape[2]
    views = json.loads(str(saved["header"]))["view_names"]
    return {
        "header not JSON": {"header": np.array("{not json")},
        "header a list": {"header": np.array("[1, 2]")},
        "version a string": {"header": header_with(saved, version="1")},
        "no mode": {"header": header_with(saved, mode=...)},
        "mode a path": {"header": header_with(saved, mode="../../escaped")},
        "no view names": {"header": header_with(saved, view_names=...)},
        "too few view names": {"header": header_with(saved, view_names=views[:-1])},
        "too many view names": {"header": header_with(saved, view_names=views + ["extra"])},
        "repeated view names": {"header": header_with(saved, view_names=[views[0]] * len(views))},
        "timings not numbers": {"header": header_with(saved, timings={"network": "fast"})},
        "info a list": {"header": header_with(saved, info=[1])},
        "NaN vertices": {"vertices": vertices},
        "negative face index": {"faces": faces_negative},
        "face index past the mesh": {"faces": faces_beyond},
        "float faces": {"faces": saved["faces"].astype(np.float32)},
        "iterations disagree": {"betas": saved["betas"][:1]},
        "vertex counts disagree": {"fused_vertices": saved["fused_vertices"][:, :-1]},
        "wrong rank": {"joints2d": saved["joints2d"][0]},
        "metric of other length": {"metric.mpjpe_mm": np.zeros(7)},
        "no iteration": {k: saved[k][:0] for k in ("global_orient", "body_pose", "betas", "vertices", "joints3d",
                                                   "display_rotation", "joints2d", "heatmaps", "fused_vertices",
                                                   "fused_joints3d", "vertices2d")},
    }


CASES = ["header not JSON", "header a list", "version a string", "no mode", "mode a path", "no view names",
         "too few view names", "too many view names", "repeated view names", "timings not numbers", "info a list",
         "NaN vertices", "negative face index", "face index past the mesh", "float faces", "iterations disagree",
         "vertex counts disagree", "wrong rank", "metric of other length", "no iteration"]


def test_every_case_is_a_mutation(saved):
    assert list(mutations(saved)) == CASES


@pytest.mark.parametrize("case", CASES)
def test_a_bad_trace_is_refused_with_the_file_named(saved, tmp_path, case):
    path = tmp_path / "bad.npz"
    np.savez(path, **{**saved, **mutations(saved)[case]})
    with pytest.raises(InputError, match=r"bad\.npz"):
        RefinementTrace.load(path)


def test_the_valid_trace_loads(saved, tmp_path):
    path = tmp_path / "good.npz"
    np.savez(path, **saved)
    assert RefinementTrace.load(path).iterations == 1


def test_names_from_data_stay_in_the_chosen_folder(saved, tmp_path):
    path = tmp_path / "odd.npz"
    views = json.loads(str(saved["header"]))["view_names"]
    np.savez(path, **{**saved, "header": header_with(saved, view_names=["../../escaped"] + views[1:])})
    out = tmp_path / "out"
    written = export_meshes(RefinementTrace.load(path), 1, out)
    assert all(p.parent == out for p in written) and not list(tmp_path.glob("escaped*"))
    assert safe_filename("../../a b/c") == "_.._a_b_c" and safe_filename("...") == "unnamed"

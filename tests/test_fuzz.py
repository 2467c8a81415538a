"""Fuzzing every reader: valid files of each format, mutated (values replaced by NaN, infinities, huge, negative
or wrongly typed ones, keys dropped or renamed, text truncated or cut), must be either read into valid data or
refused with an `InputError` that names the file: never another exception, never a hang, never NaN in what comes
back. Seeded (derandomized), so that CI sees the same cases every run; CASES says how many each format gets.
"""
from __future__ import annotations

import copy
import json
import shutil
import signal
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.body_model import BodyModel
from core.calibration import load_calibration, save_calibration
from core.dataset_io import read_sample
from core.detector import DetectorConfig
from core.errors import InputError
from core.keypoint_formats import read_coco_keypoints, read_openpose
from core.model.checkpoint import load_model
from core.resources import FREE_BODY_MODEL, SAMPLE_SCENE

ROOT = Path(__file__).resolve().parent.parent
SECONDS_PER_CASE = 30
CASES = {"native": 60, "h36m": 30, "toml": 40, "easymocap": 40, "sample": 60, "openpose": 20, "coco": 20,
         "detector": 20, "checkpoint": 20, "body": 15, "database": 25}


def fuzz(cases: int):
    return settings(max_examples=cases, derandomize=True, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                           HealthCheck.data_too_large])


@contextmanager
def time_limit(seconds: int):
    def expired(*_):
        raise TimeoutError(f"a reader took more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


RUN = {"cases": 0, "refused": 0}  # counted, so that a test can check it ran the cases it claims


def read_or_refuse(read, path: Path, check=lambda result: None):
    """The contract: valid data (``check`` passes) or an InputError naming ``path``'s file or folder."""
    RUN["cases"] += 1
    with time_limit(SECONDS_PER_CASE):
        try:
            result = read()
        except InputError as exc:
            assert path.name in str(exc) or path.parent.name in str(exc), f"the message names no file: {exc}"
            RUN["refused"] += 1
            return
    check(result)


# ----- mutations
ODD_VALUES = st.one_of(
    st.sampled_from([float("nan"), float("inf"), -float("inf"), 1e300, -1e300, 1e30, -1.0, 0, 5, "1", "x", "", None,
                     True, [], {}, [1, 2], [[1, 2], [3]], {"a": 1}]),
    st.integers(-10 ** 12, 10 ** 12), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=4))


def paths_in(value, prefix=()):
    """Every (path of keys/indices) into a JSON value, the root included."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from paths_in(item, prefix + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value[:6]):
            yield from paths_in(item, prefix + (index,))


@st.composite
def mutated_json(draw, original):
    data = copy.deepcopy(original)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(list(paths_in(data))))
        if not path:
            data = draw(st.sampled_from([[], [data], "text", 3, None, {"x": data}]))
            continue
        parent = data
        for key in path[:-1]:
            parent = parent[key]
        key = path[-1]
        how = draw(st.sampled_from(["replace", "replace", "replace", "delete", "rename", "nest", "grow"]))
        if how == "replace":
            parent[key] = draw(ODD_VALUES)
        elif how == "delete":
            del parent[key]
        elif how == "rename" and isinstance(parent, dict):
            parent[key + "_"] = parent.pop(key)
        elif how == "nest":
            parent[key] = [parent[key]]
        elif how == "grow" and isinstance(parent[key], list):
            parent[key] = parent[key] + parent[key][:1]
    return data


@st.composite
def mutated_text(draw, original: str):
    text = original
    for _ in range(draw(st.integers(1, 2))):
        how = draw(st.sampled_from(["truncate", "cut", "number", "number", "line", "junk"]))
        at = draw(st.integers(0, max(len(text) - 1, 0)))
        if how == "truncate":
            text = text[:at]
        elif how == "cut":
            text = text[:at] + text[at + draw(st.integers(1, 80)):]
        elif how == "number":
            digits = [i for i, c in enumerate(text) if c.isdigit()]
            if digits:
                i = draw(st.sampled_from(digits))
                end = i
                while end < len(text) and (text[end].isdigit() or text[end] in ".e-+"):
                    end += 1
                text = text[:i] + draw(st.sampled_from(["nan", "inf", "-1", "1e300", "0", "\"x\"", "-1e300"])) + text[end:]
        elif how == "line":
            lines = text.splitlines()
            if lines:
                del lines[draw(st.integers(0, len(lines) - 1))]
            text = "\n".join(lines)
        else:
            text = text[:at] + draw(st.sampled_from(["[", "{", "\x00", "::", "\"", "]]", "\n- ", "=", "#"])) + text[at:]
    return text


# ----- checks of what comes back
def valid_cameras(cameras):
    assert cameras and all(np.isfinite(np.concatenate([c.K.ravel(), c.R.ravel(), c.t, c.dist])).all()
                           for c in cameras)


def valid_keypoints(keypoints):
    assert keypoints is None or (np.isfinite(keypoints).all() and (keypoints[..., 2] >= 0).all()
                                 and (keypoints[..., 2] <= 1).all())


def valid_sample(sample):
    valid_cameras(sample.cameras)
    valid_keypoints(sample.keypoints)
    gt = sample.ground_truth
    if gt is not None:
        for value in (gt.global_orient, gt.body_pose, gt.betas, gt.transl):
            assert value is None or np.isfinite(value).all()
        if gt.joints3d is not None:  # a joint a database lacks is NaN, whole (see GroundTruth.known_joints)
            assert not np.isinf(gt.joints3d).any() and np.isnan(gt.joints3d).all(1).sum() == \
                np.isnan(gt.joints3d).any(1).sum()


# ----- the formats
@pytest.fixture(scope="module")
def sample_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("fuzz") / "sample"
    shutil.copytree(SAMPLE_SCENE, folder)
    return folder


@pytest.fixture(scope="module")
def calibrations(sample_folder, tmp_path_factory) -> dict[str, Path]:
    """The sample's cameras written in every calibration format."""
    cameras = load_calibration(sample_folder / "intri.yml")
    out = tmp_path_factory.mktemp("calibrations")
    files = {"native": out / "calibration.json", "h36m": out / "cameras.json", "toml": out / "Calib.toml",
             "easymocap": out / "easymocap"}
    for fmt, path in files.items():
        save_calibration(cameras, path, fmt)
    return files


@pytest.mark.parametrize("fmt", ["native", "h36m"])
def test_json_calibrations(calibrations, tmp_path_factory, fmt):
    original = json.loads(calibrations[fmt].read_text())
    folder = tmp_path_factory.mktemp(fmt)

    @fuzz(CASES[fmt])
    @given(mutated_json(original))
    def case(data):
        path = folder / calibrations[fmt].name
        path.write_text(json.dumps(data))
        read_or_refuse(lambda: load_calibration(path, fmt), path, valid_cameras)

    case()


def test_toml_calibrations(calibrations, tmp_path_factory):
    original = calibrations["toml"].read_text()
    folder = tmp_path_factory.mktemp("toml")

    @fuzz(CASES["toml"])
    @given(mutated_text(original))
    def case(text):
        path = folder / "Calib.toml"
        path.write_text(text)
        read_or_refuse(lambda: load_calibration(path), path, valid_cameras)

    case()


def test_easymocap_calibrations(calibrations, tmp_path_factory):
    source = calibrations["easymocap"]
    originals = {name: (source / name).read_text() for name in ("intri.yml", "extri.yml")}
    folder = tmp_path_factory.mktemp("easymocap")

    @fuzz(CASES["easymocap"])
    @given(st.sampled_from(sorted(originals)), st.data())
    def case(name, data):
        for other, text in originals.items():
            (folder / other).write_text(text)
        (folder / name).write_text(data.draw(mutated_text(originals[name])))
        read_or_refuse(lambda: load_calibration(folder / name), folder / name, valid_cameras)

    case()


def test_sample_folders(sample_folder, tmp_path_factory):
    """sample.json, keypoints.json and ground_truth.json of a sample folder, one mutated at a time."""
    names = ("sample.json", "keypoints.json", "ground_truth.json")
    originals = {name: json.loads((sample_folder / name).read_text()) for name in names}

    @fuzz(CASES["sample"])
    @given(st.sampled_from(names), st.data())
    def case(name, data):
        for other in names:
            (sample_folder / other).write_text(json.dumps(originals[other]))
        (sample_folder / name).write_text(json.dumps(data.draw(mutated_json(originals[name]))))
        read_or_refuse(lambda: read_sample(sample_folder), sample_folder / name, valid_sample)

    try:
        case()
    finally:
        for name in names:
            (sample_folder / name).write_text(json.dumps(originals[name]))


@pytest.mark.parametrize("fmt", ["openpose", "coco"])
def test_openpose_and_coco_keypoint_files(tmp_path, fmt):
    rng = np.random.default_rng(0)
    points = np.concatenate([rng.uniform(0, 500, (25, 2)), rng.uniform(0, 1, (25, 1))], 1)
    original, name, read = {
        "openpose": ({"version": 1.3, "people": [{"person_id": [-1], "pose_keypoints_2d": points.ravel().tolist()}]},
                     "000000_keypoints.json", read_openpose),
        "coco": ([{"image_id": 0, "category_id": 1, "keypoints": points[:17].ravel().tolist(), "score": 0.9}],
                 "cam01.json", read_coco_keypoints)}[fmt]

    @fuzz(CASES[fmt])
    @given(mutated_json(original))
    def case(data):
        path = tmp_path / name
        path.write_text(json.dumps(data))
        read_or_refuse(lambda: read(path), path, valid_keypoints)

    case()


def test_detector_configurations(tmp_path):
    (tmp_path / "pose.onnx").write_bytes(b"")
    original = {"model": "pose.onnx", "input_size": [192, 256], "mean": [123.675, 116.28, 103.53],
                "std": [58.395, 57.12, 57.375], "channels": "rgb", "output": "simcc", "simcc_split_ratio": 2.0,
                "joint_set": "coco17", "box_padding": 1.25, "tracking_confidence": 0.3}

    def valid(config):
        numbers = [*config.input_size, *config.mean, *config.std, config.simcc_split_ratio, config.box_padding,
                   config.tracking_confidence]
        assert all(isinstance(x, (int, float)) and np.isfinite(x) for x in numbers)

    @fuzz(CASES["detector"])
    @given(mutated_json(original))
    def case(data):
        path = tmp_path / "detector.json"
        path.write_text(json.dumps(data))
        read_or_refuse(lambda: DetectorConfig.load(path), path, valid)

    case()


def test_checkpoints(body, tmp_path):
    from core.model.checkpoint import save_checkpoint

    source = tmp_path / "good.pt"
    save_checkpoint(load_model(None, body), source, "fuzz")
    original = source.read_bytes()
    data = torch.load(source, weights_only=True)
    config = json.loads(data["config"])

    def valid(model):
        assert all(torch.isfinite(p).all() for p in model.parameters())

    @fuzz(CASES["checkpoint"])
    @given(st.sampled_from(["bytes", "config", "state"]), st.data())
    def case(how, draw):
        path = tmp_path / "model.pt"
        if how == "bytes":
            cut = draw.draw(st.integers(0, len(original) - 1))
            path.write_bytes(original[:cut])
        else:
            mutated = dict(data)
            if how == "config":
                mutated["config"] = json.dumps(draw.draw(mutated_json(config)))
            else:
                key = draw.draw(st.sampled_from(sorted(data["state_dict"])))
                value = data["state_dict"][key]
                mutated["state_dict"] = {**data["state_dict"], key: draw.draw(st.sampled_from([
                    torch.full_like(value, float("nan")), value.reshape(-1)[:1], torch.zeros(3, 3), "x"]))}
            torch.save(mutated, path)
        read_or_refuse(lambda: load_model(path, body), path, valid)

    case()


def test_body_models(tmp_path):
    with np.load(FREE_BODY_MODEL) as archive:
        original = {k: archive[k] for k in archive.files}

    def valid(body):
        assert torch.isfinite(body.rest().vertices).all()

    @fuzz(CASES["body"])
    @given(st.sampled_from(sorted(k for k in original if original[k].dtype != object)), st.data())
    def case(key, draw):
        value = original[key]
        replacement = draw.draw(st.sampled_from([
            np.full(value.shape, np.nan) if value.dtype.kind == "f" else np.full(value.shape, -7),
            value.reshape(-1), value.reshape(-1)[:1], np.zeros((2, 2)), np.array("x")]))
        path = tmp_path / "SMPL_NEUTRAL.npz"
        np.savez(path, **{**original, key: replacement})
        read_or_refuse(lambda: BodyModel(path), path, valid)

    case()


def test_official_databases(tmp_path):
    """An official Human3.6M database (joblib dict), its camera and its 3D joint files, one mutated at a time."""
    import joblib
    from test_heatformer_db import write_h36m

    from core.sequence import open_sequence

    db = write_h36m(tmp_path, read_sample(SAMPLE_SCENE))
    extra = db.parent / "extra_data"
    original = joblib.load(db)
    texts = {p.name: json.loads(p.read_text()) for p in extra.glob("*.json")}

    def every_frame():  # a sequence reads its frames when asked: reading them is part of reading the database
        sequence = open_sequence(db)
        return [sequence[frame] for frame in range(len(sequence))]

    def valid(samples):
        for sample in samples:
            valid_sample(sample)

    @fuzz(CASES["database"])
    @given(st.sampled_from(["img_name", "joints2D", *sorted(texts)]), st.data())
    def case(what, data):
        joblib.dump(original, db)
        for name, content in texts.items():
            (extra / name).write_text(json.dumps(content))
        if what in original:
            value = original[what]
            mutated = data.draw(st.sampled_from([
                np.full(value.shape, np.nan) if value.dtype.kind == "f" else value[::-1].copy(), value[:1],
                value.reshape(-1), np.array([]), np.array(["x"] * len(value)), 7, None]))
            joblib.dump({**original, what: mutated}, db)
            target = db
        else:
            target = extra / what
            target.write_text(json.dumps(data.draw(mutated_json(texts[what]))))
        read_or_refuse(every_frame, target, valid)

    case()


def test_the_command_line_refuses_mutated_samples_with_one_line(sample_folder, tmp_path):
    """A sample of bad folders through `infer`: exit code 2 and one line on stderr naming the file."""
    broken = {"keypoints.json": '{"joint_set": "h36m17", "views": {"cam01": [[1, 2]]}}',
              "intri.yml": "%YAML 1.2\n---\nnames: [cam01\n", "sample.json": '{"version": "1"}',
              "ground_truth.json": '{"smpl": {"betas": ["x"]}}'}
    for name, text in broken.items():
        folder = tmp_path / name.replace(".", "_")
        shutil.copytree(sample_folder, folder)
        (folder / name).write_text(text)
        done = subprocess.run([sys.executable, str(ROOT / "main.py"), "infer", "--data", str(folder), "--out",
                               str(tmp_path / "t.npz")], capture_output=True, text=True, timeout=300)
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        assert done.returncode == 2 and len(lines) == 1 and name in lines[0], (name, done.stderr)


def test_the_suite_ran_its_cases():
    """Runs last in this file: every fuzz test above ran all its cases (hypothesis may stop early when it
    runs out of distinct inputs), and some were refused and some read."""
    if RUN["cases"] == 0:
        pytest.skip("run with the fuzz tests above")
    assert RUN["cases"] >= sum(CASES.values()) >= 300
    assert 0 < RUN["refused"] < RUN["cases"]


@pytest.mark.parametrize("arguments", [
    ["infer", "--iterations", "0"], ["infer", "--iterations", "-1"], ["infer", "--iterations", "100"],
    ["infer", "--device", "bogus"], ["eval", "--iterations", "nan"], ["video", "--fps", "0"],
    ["video", "--fps", "-1"], ["video", "--fps", "nan"], ["train", "--steps", "0"], ["train", "--lr", "inf"],
    ["synth", "--count", "-3"], ["--frame", "-1"]] + ([["infer", "--device", "cuda"]] if not torch.cuda.is_available()
                                                    else []))
def test_bad_command_line_values_are_refused_by_name(arguments, capsys):
    import main

    with pytest.raises(SystemExit) as done:
        main.main(arguments)  # refused before the missing --data or --out is noticed
    assert done.value.code == 2 and arguments[-2] in capsys.readouterr().err


def test_an_output_path_under_a_file_is_refused_in_one_line(tmp_path, capsys):
    import main

    blocker = tmp_path / "file.txt"
    blocker.write_text("in the way")
    assert main.main(["synth", "--out", str(blocker / "sub")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "file.txt" in error

import json
import logging

import numpy as np
import pytest

from core.calibration import check_views_match, detect_format, load_calibration, save_calibration
from core.errors import InputError

FORMAT_PATHS = {"native": "calib.json", "easymocap": "easymocap", "toml": "Calib.toml", "h36m": "cameras.json",
                "qualisys": "Calib.qca.txt", "aitviewer": "cameras.npz"}


def write(rig, tmp_path, fmt):
    path = tmp_path / FORMAT_PATHS[fmt]
    save_calibration(rig, path, fmt)
    return path / "intri.yml" if fmt == "easymocap" else path


@pytest.mark.parametrize("fmt", list(FORMAT_PATHS))
def test_round_trip(rig, tmp_path, fmt):
    path = write(rig, tmp_path, fmt)
    assert detect_format(path) == fmt
    loaded = load_calibration(path)
    assert [c.name for c in loaded] == [c.name for c in rig]
    for ours, theirs in zip(loaded, rig):
        np.testing.assert_allclose(ours.R, theirs.R, atol=1e-9)
        np.testing.assert_allclose(ours.t, theirs.t, atol=1e-9)
        np.testing.assert_allclose(ours.K[[0, 1, 0, 1], [0, 1, 2, 2]], theirs.K[[0, 1, 0, 1], [0, 1, 2, 2]])
        assert (ours.width, ours.height) == (theirs.width, theirs.height)


def test_every_format_projects_the_same(rig, tmp_path):
    points = np.random.default_rng(1).uniform([-1, -1, 0], [1, 1, 2], (30, 3))
    expected = [cam.project(points)[0] for cam in rig]
    for fmt in FORMAT_PATHS:
        for cam, uv in zip(load_calibration(write(rig, tmp_path, fmt)), expected):
            np.testing.assert_allclose(cam.project(points)[0], uv, atol=1e-6,
                                       err_msg=f"{fmt} projects differently")


def test_aitviewer_camera_files_as_its_multiview_system_reads_them(rig, tmp_path):
    """aitviewer's own file has integer ids and no image size: the names are the ids, the size is guessed from the
    principal point until images say otherwise; a trace .npz is no calibration; wrong shapes are named."""
    from core.calibration import is_calibration_file

    path = tmp_path / "cameras.npz"
    np.savez(path, ids=np.arange(1, len(rig) + 1), intrinsics=np.stack([c.K for c in rig]),
             extrinsics=np.stack([np.hstack([c.R, c.t[:, None] * 1000]) for c in rig]),  # millimetres
             dist_coeffs=np.stack([c.dist[:5] for c in rig]))
    cameras = load_calibration(path)
    assert [c.name for c in cameras] == [str(i) for i in range(1, len(rig) + 1)]
    assert all(c.size_guessed and c.width == round(2 * theirs.K[0, 2]) for c, theirs in zip(cameras, rig))
    np.testing.assert_allclose(cameras[1].t, rig[1].t, atol=1e-9)
    written = tmp_path / "ours.npz"
    save_calibration(rig, written, "aitviewer")
    with np.load(written) as data:  # what MultiViewSystem indexes
        assert data["extrinsics"].shape == (len(rig), 3, 4) and data["dist_coeffs"].shape == (len(rig), 5)
        assert list(data["ids"]) == [c.name for c in rig]

    trace = tmp_path / "trace.npz"
    np.savez(trace, vertices=np.zeros(3))
    assert not is_calibration_file(trace) and is_calibration_file(written)
    broken = tmp_path / "broken.npz"
    np.savez(broken, ids=np.arange(3), intrinsics=np.zeros((3, 3, 3)), extrinsics=np.zeros((2, 3, 4)))
    with pytest.raises(InputError, match=r"extrinsics has shape \(2, 3, 4\); 3 camera ids need \(3, 3, 4\)") as info:
        load_calibration(broken)
    assert str(broken) in str(info.value)


def test_h36m_stores_millimetres(rig, tmp_path):
    path = write(rig, tmp_path, "h36m")
    data = json.loads(path.read_text())
    np.testing.assert_allclose(data[rig[0].name]["t"], rig[0].t * 1000)


def test_toml_units_are_detected_and_can_be_overridden(rig, tmp_path):
    path = write(rig, tmp_path, "toml")
    text = path.read_text()
    mm = tmp_path / "mm.toml"
    lines = []
    for line in text.splitlines():
        if line.startswith("translation"):
            values = json.loads(line.split("=", 1)[1])
            line = f"translation = {json.dumps([v * 1000 for v in values])}"
        lines.append(line)
    mm.write_text("\n".join(lines))
    np.testing.assert_allclose(load_calibration(mm)[0].t, rig[0].t, atol=1e-9)
    np.testing.assert_allclose(load_calibration(mm, units="mm")[0].t, rig[0].t, atol=1e-9)
    assert np.allclose(load_calibration(mm, units="m")[0].t, rig[0].t * 1000)


def test_pose2sim_metadata_tables_are_skipped(rig, tmp_path):
    path = write(rig, tmp_path, "toml")
    path.write_text(path.read_text() + '\n[capture_volume]\nsize = 3\n[charuco]\nsquares = 5\n')
    assert len(load_calibration(path)) == len(rig)


def test_easymocap_without_image_size_guesses_from_principal_point(rig, tmp_path):
    path = write(rig, tmp_path, "easymocap")
    text = path.read_text()
    path.write_text("\n".join(line for line in text.splitlines() if not line.startswith(("H_", "W_"))))
    cam = load_calibration(path)[0]
    assert (cam.width, cam.height) == (round(2 * rig[0].K[0, 2]), round(2 * rig[0].K[1, 2])) and cam.size_guessed


def test_a_guessed_image_size_gives_way_to_the_images(tmp_path, caplog):
    """EasyMocap without H_/W_: the sample's 512x512 images replace the size guessed from the principal point
    (about 513x507 here); a size the file gives is never overridden, and a wrong one is refused."""
    import shutil

    from core.dataset_io import read_sample
    from core.errors import InputError
    from core.resources import SAMPLE_SCENE

    folder = tmp_path / "sample"
    shutil.copytree(SAMPLE_SCENE, folder)
    intri = folder / "intri.yml"
    text = intri.read_text()
    intri.write_text("\n".join(line for line in text.splitlines() if not line.startswith(("H_", "W_"))))
    sample = read_sample(folder)
    assert all(c.image_size == (512, 512) and not c.size_guessed for c in sample.cameras)
    intri.write_text(text.replace("W_cam01: 512", "W_cam01: 640"))
    with pytest.raises(InputError, match="cam01: image is 512x512 but the calibration says 640x512"):
        read_sample(folder)
    intri.write_text(text.replace("W_cam01: 512", "W_cam01: 520"))  # a codec's padding (1088 for 1080): taken
    with caplog.at_level(logging.WARNING, logger="core.sample"):
        camera = read_sample(folder).cameras[0]
        read_sample(folder)  # said once, not for every frame of a sequence
    assert camera.image_size == (512, 512) and camera.K[0, 2] == load_calibration(intri)[0].K[0, 2]
    assert camera.calibrated_size == (520, 512) and read_sample(folder).cameras[1].calibrated_size is None
    assert sum("less what a video codec pads" in r.getMessage() for r in caplog.records) == 1


@pytest.mark.parametrize("breakage,message", [
    (lambda d: d["cameras"][0].pop("K"), "lacks key 'K'"),
    (lambda d: d["cameras"][1].__setitem__("R", [[1, 0, 0], [0, 1, 0], [0, 0, 2]]), "not a rotation"),
    (lambda d: d["cameras"][0].__setitem__("t", [0, "NaN", 0]), "could not convert|NaN"),
    (lambda d: d["cameras"][2].__setitem__("t", [float("nan"), 0, 0]), "NaN"),
    (lambda d: d["cameras"][1].__setitem__("name", d["cameras"][0]["name"]), "repeat"),
    (lambda d: d.__setitem__("cameras", []), "no cameras"),
])
def test_bad_native_calibration_names_file_and_problem(rig, tmp_path, breakage, message):
    path = write(rig, tmp_path, "native")
    data = json.loads(path.read_text())
    breakage(data)
    path.write_text(json.dumps(data))
    with pytest.raises(InputError, match=message) as info:
        load_calibration(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("fmt,content", [
    ("native", "{not json"),
    ("toml", "[cam_01\nmatrix = "),
    ("toml", "[cam_01]\nname = 'a'\n"),
    ("h36m", '{"1": {"R": [[1,0,0],[0,1,0],[0,0,1]], "t": [0,0,0]}}'),
])
def test_corrupt_files_give_clear_errors(tmp_path, fmt, content):
    path = tmp_path / ("c.toml" if fmt == "toml" else "c.json")
    path.write_text(content)
    with pytest.raises(InputError) as info:
        load_calibration(path, fmt=fmt)
    assert str(path) in str(info.value)


def test_easymocap_needs_both_files(rig, tmp_path):
    path = write(rig, tmp_path, "easymocap")
    (path.parent / "extri.yml").unlink()
    with pytest.raises(InputError, match="extri.yml"):
        load_calibration(path)


def test_view_count_and_names_must_match_the_data(rig, tmp_path):
    with pytest.raises(InputError, match="4 cameras but the data has 3 views"):
        check_views_match(rig, ["cam0", "cam1", "cam2"], "calib.json")
    with pytest.raises(InputError, match="no calibration for view"):
        check_views_match(rig, ["cam0", "cam1", "cam2", "camX"], "calib.json")


def test_qualisys_conventions(tmp_path):
    """A Qualisys camera written by hand as its files hold one: sub-pixels (64 a pixel), the principal point
    counted from the sensor corner with the video window elsewhere, the centre in world millimetres and a camera
    frame turned 180 degrees about x from OpenCV's. The reader finds the camera that projects a world point where
    the same numbers, worked out directly, put it."""
    from core.cameras import look_at

    R, t = look_at(np.array([3.0, -2.0, 1.8]), np.array([0.0, 0.0, 1.0]))  # OpenCV world -> camera
    centre = -R.T @ t
    qualisys_rotation = np.diag([1.0, -1.0, -1.0]) @ R
    entries = " ".join(f'r{i + 1}{j + 1}="{float(qualisys_rotation[i, j])!r}"' for i in range(3) for j in range(3))
    (tmp_path / "Calib.qca.txt").write_text(f"""<?xml version='1.0'?>
<calibration><cameras><camera serial="cam07">
  <fov_video left="16" top="8" right="1103" bottom="1927"/>
  <intrinsic focalLengthU="{1500 * 64}" focalLengthV="{1502 * 64}" centerPointU="{(540 + 16) * 64}"
    centerPointV="{(960 + 8) * 64}" radialDistortion1="0" radialDistortion2="0" radialDistortion3="0"
    tangentalDistortion1="0" tangentalDistortion2="0"/>
  <transform x="{float(centre[0]) * 1000!r}" y="{float(centre[1]) * 1000!r}" z="{float(centre[2]) * 1000!r}" {entries}/>
</camera></cameras></calibration>""")
    camera = load_calibration(tmp_path / "Calib.qca.txt")[0]
    assert camera.name == "cam07" and camera.image_size == (1088, 1920)
    point = np.array([0.2, 0.1, 1.2])
    in_camera = R @ point + t
    expected = [1500 * in_camera[0] / in_camera[2] + 540, 1502 * in_camera[1] / in_camera[2] + 960]
    np.testing.assert_allclose(camera.project(point)[0], expected, atol=1e-6)
    np.testing.assert_allclose(camera.center, centre, atol=1e-9)

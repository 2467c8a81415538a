import json

import numpy as np
import pytest
import trimesh

from core.dataset_io import read_sample
from core.export import export_meshes, export_parameters
from core.inference import refine
from core.model.checkpoint import load_model
from core.resources import SAMPLE_SCENE


@pytest.fixture(scope="module")
def trace(body):
    return refine(read_sample(SAMPLE_SCENE), load_model(None, body), "calibrated", 2, device="cpu")


@pytest.mark.parametrize("fmt", ["obj", "ply", "glb"])
def test_meshes_reload_with_their_vertices(trace, tmp_path, fmt):
    paths = export_meshes(trace, 1, tmp_path, views=[0, 2], fmt=fmt)
    assert [p.name for p in paths] == [f"calibrated_iter1_cam01.{fmt}", f"calibrated_iter1_cam03.{fmt}",
                                       f"calibrated_iter1_averaged.{fmt}"]
    expected = [trace.vertices[1, 0], trace.vertices[1, 2], trace.fused_vertices[1]]
    for path, vertices in zip(paths, expected):
        mesh = trimesh.load(path, force="mesh", process=False)
        assert len(mesh.vertices) == len(vertices) and len(mesh.faces) == len(trace.faces)
        np.testing.assert_allclose(np.asarray(mesh.vertices), vertices, atol=1e-5)
    assert not list(tmp_path.glob(".*"))  # no temporary files left behind


def test_parameters_reload(trace, tmp_path):
    export_parameters(trace, 2, tmp_path / "params.npz")
    with np.load(tmp_path / "params.npz") as data:
        np.testing.assert_allclose(data["body_pose"], trace.body_pose[2])
        assert data["betas"].shape == (4, 10) and list(data["view_names"]) == trace.view_names
    export_parameters(trace, 0, tmp_path / "params.json")
    data = json.loads((tmp_path / "params.json").read_text())
    assert data["iteration"] == 0 and np.allclose(data["global_orient"], trace.global_orient[0])
    with pytest.raises(ValueError, match="npz or .json"):
        export_parameters(trace, 0, tmp_path / "params.txt")
    with pytest.raises(ValueError, match="outside"):
        export_meshes(trace, 9, tmp_path)


def test_export_command(trace, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    trace.save(tmp_path / "t.npz")
    main = Path(__file__).resolve().parent.parent / "main.py"
    result = subprocess.run([sys.executable, str(main), "export", "--trace", str(tmp_path / "t.npz"), "--views",
                             "cam02", "--format", "glb", "--out", str(tmp_path / "out")], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["calibrated_iter2_averaged.glb", "calibrated_iter2_cam02.glb", "calibrated_iter2_smpl.json",
                     "calibrated_iter2_smpl.npz"]
    bad = subprocess.run([sys.executable, str(main), "export", "--trace", str(tmp_path / "t.npz"), "--views",
                          "cam09", "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "cam09" in bad.stderr


def test_video_command_draws_every_iteration(trace, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    import cv2

    from core.video import count_frames

    trace.save(tmp_path / "t.npz")
    main = Path(__file__).resolve().parent.parent / "main.py"
    for name in ("refinement.mp4", "refinement.gif"):
        result = subprocess.run([sys.executable, str(main), "video", "--trace", str(tmp_path / "t.npz"), "--view",
                                 "cam02", "--out", str(tmp_path / name)], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        assert count_frames(tmp_path / name) == trace.iterations + 1
    capture = cv2.VideoCapture(str(tmp_path / "refinement.mp4"))
    first, last = capture.read()[1], [capture.read()[1] for _ in range(trace.iterations)][-1]
    assert first.shape[:2] == (512, 512) and np.abs(first.astype(int) - last).max() > 50  # the estimate moved
    bad = subprocess.run([sys.executable, str(main), "video", "--trace", str(tmp_path / "t.npz"), "--view", "cam09",
                          "--out", str(tmp_path / "x.avi")], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "cam09" in bad.stderr


def test_video_writer_refuses_what_it_cannot_write(tmp_path):
    from core.video import write_video

    frame = np.zeros((10, 10, 3), np.uint8)
    with pytest.raises(ValueError, match="mp4 or .gif"):
        write_video([frame], tmp_path / "x.avi")
    with pytest.raises(ValueError, match="differ in size"):
        write_video([frame, np.zeros((12, 10, 3), np.uint8)], tmp_path / "x.gif")
    assert not list(tmp_path.iterdir())

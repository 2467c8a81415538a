import cv2
import numpy as np
import pytest
import torch

from core.dataset_io import read_sample, write_sample
from core.joints import H36M17
from core.cameras import project_points
from core.render import background, splat_silhouette
from core.synthetic import RIG_PRESETS, EvidenceFaults, RigConfig, generate_sample, rig_preset, segment_hits_box


@pytest.fixture(scope="module")
def sample(body):
    return generate_sample(body, seed=5, rig=RigConfig(views=3, image_size=(320, 240)))


def test_same_seed_same_sample(body, sample):
    again = generate_sample(body, seed=5, rig=RigConfig(views=3, image_size=(320, 240)))
    np.testing.assert_array_equal(again.keypoints, sample.keypoints)
    np.testing.assert_array_equal(again.frames[0], sample.frames[0])
    other = generate_sample(body, seed=6, rig=RigConfig(views=3, image_size=(320, 240)))
    assert not np.allclose(other.keypoints, sample.keypoints)


def test_ground_truth_is_consistent_with_the_body_model(body, sample):
    gt = sample.ground_truth
    out = body(torch.tensor(gt.global_orient[None], dtype=torch.float32),
               torch.tensor(gt.body_pose[None], dtype=torch.float32),
               torch.tensor(gt.betas[None], dtype=torch.float32), torch.tensor(gt.transl[None], dtype=torch.float32))
    np.testing.assert_allclose(out.joints_h36m[0].numpy(), gt.joints3d, atol=1e-4)
    assert abs(out.vertices[0, :, 2].min().item()) < 1e-4  # standing on the floor (world z up)
    head = gt.joints3d[H36M17.index("head_top"), 2]
    assert head > 1.0  # upright


def test_keypoints_follow_projections_except_where_faulty(sample):
    gt = sample.ground_truth
    for v, cam in enumerate(sample.cameras):
        truth, depth = cam.project(gt.joints3d)
        assert (depth > 0).all()
        kp = sample.keypoints[v]
        confident = kp[:, 2] >= 0.65
        error = np.linalg.norm(kp[confident, :2] - truth[confident], axis=1)
        assert np.median(error) < 6.0  # jitter of a few pixels (a swapped limb may add a few outliers)


def test_a_detection_lands_only_inside_the_frame():
    """A detector reports no position outside its image: a joint outside the frame, or one that jitter or a
    left/right swap would put outside it, is a miss (confidence 0), and every reported position is in the frame."""
    from core.cameras import Camera
    from core.synthetic import faulty_keypoints

    camera = Camera("cam", np.array([[100.0, 0, 50], [0, 100.0, 50], [0, 0, 1]]), np.eye(3), np.zeros(3), 100, 100)
    uv = np.tile(np.array([[50.0, 50.0]]), (1, 17, 1))
    uv[0, 0] = (-5.0, 50.0)  # outside
    uv[0, 1] = (99.5, 50.0)  # inside, within jitter of the right edge
    faults = EvidenceFaults(jitter_px=3.0, miss_probability=0.0, swap_probability=0.0)
    reported = []
    for seed in range(40):
        keypoints = faulty_keypoints(np.random.default_rng(seed), uv, np.zeros((1, 17), bool), [camera], faults)
        found = keypoints[0, :, 2] > 0
        assert not found[0]
        assert ((keypoints[0, found, :2] >= 0) & (keypoints[0, found, :2] < 100)).all()
        reported.append(found[1])
    assert 0 < np.mean(reported) < 1  # the joint at the edge is sometimes jittered out of the frame, not always


def test_occluder_hides_joints_and_evidence_reflects_it(body):
    faults = EvidenceFaults(occluded_miss_probability=1.0, miss_probability=0.0, swap_probability=0.0)
    hidden_total = 0
    for seed in range(6):
        sample = generate_sample(body, seed=seed, rig=RigConfig(views=4, image_size=(256, 256)), faults=faults)
        occluded = sample.ground_truth.occluded
        hidden_total += occluded.sum()
        assert (sample.keypoints[occluded][:, 2] == 0).all()
    assert hidden_total > 0


def test_no_occluder_means_no_occlusion(body):
    sample = generate_sample(body, seed=1, rig=RigConfig(views=2, image_size=(128, 128)), occluders=0)
    assert not sample.ground_truth.occluded.any()


def test_segment_box_intersection():
    start = np.array([0.0, 0.0, 0.0])
    ends = np.array([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.9, 0.0, 0.0]])
    hits = segment_hits_box(start, ends, np.array([1.0, -0.5, -0.5]), np.array([1.5, 0.5, 0.5]))
    assert hits.tolist() == [True, False, False]


def test_frames_show_the_person(sample):
    for v, frame in enumerate(sample.frames):
        truth, _ = sample.cameras[v].project(sample.ground_truth.joints3d)
        x, y = np.round(truth[H36M17.index("pelvis")]).astype(int)
        background_only = background(sample.cameras[v])
        assert np.abs(frame[y, x].astype(int) - background_only[y, x].astype(int)).sum() > 30


def test_written_sample_reads_back(sample, tmp_path):
    write_sample(sample, tmp_path / "s", calibration_format="toml")
    loaded = read_sample(tmp_path / "s")
    assert loaded.view_names == sample.view_names
    np.testing.assert_allclose(loaded.keypoints, sample.keypoints, atol=1e-3)
    np.testing.assert_allclose(loaded.ground_truth.joints3d, sample.ground_truth.joints3d)
    np.testing.assert_array_equal(loaded.ground_truth.occluded, sample.ground_truth.occluded)
    for a, b in zip(loaded.frames, sample.frames):
        assert a.shape == b.shape and np.abs(a.astype(int) - b.astype(int)).mean() < 3  # JPEG


def test_synth_command_writes_a_readable_sample(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    out = tmp_path / "synthetic"
    result = subprocess.run([sys.executable, str(root / "main.py"), "synth", "--out", str(out), "--views", "3",
                             "--seed", "4", "--occluders", "2", "--image-size", "200", "160",
                             "--calibration-format", "easymocap"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    sample = read_sample(out)
    assert sample.num_views == 3 and sample.frames[0].shape == (160, 200, 3)
    assert (out / "intri.yml").exists() and (out / "extri.yml").exists()
    bad = subprocess.run([sys.executable, str(root / "main.py"), "synth", "--out", str(out), "--views", "9"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "between 2 and 8" in bad.stderr


@pytest.mark.parametrize("zoom", [1.0, 3.0])
def test_splatted_silhouette_matches_the_filled_mesh(body, sample, zoom):
    """The cheap silhouette of the 2D panels covers what filling every triangle covers, at any image scale."""
    gt = sample.ground_truth
    out = body(*(torch.tensor(x[None], dtype=torch.float32) for x in
                 (gt.global_orient, gt.body_pose, gt.betas, gt.transl)))
    camera = sample.cameras[0]
    uv = project_points(out.vertices[0].numpy(), camera)[0] * zoom
    width, height = int(camera.width * zoom), int(camera.height * zoom)
    filled = np.zeros((height, width), np.uint8)
    for triangle in np.round(uv[body.faces] * 16).astype(np.int32):
        cv2.fillConvexPoly(filled, triangle, 1, shift=4)
    mask, (x0, y0, w, h) = splat_silhouette(uv)
    ys, xs = np.mgrid[0:height, 0:width] + 0.5
    cols = np.floor((xs - x0) / w * mask.shape[1]).astype(int)
    rows = np.floor((ys - y0) / h * mask.shape[0]).astype(int)
    inside = (cols >= 0) & (cols < mask.shape[1]) & (rows >= 0) & (rows < mask.shape[0])
    splatted = np.zeros_like(inside)
    splatted[inside] = mask[rows[inside], cols[inside]]
    filled = filled.astype(bool)
    assert filled.sum() > 500
    assert (splatted & filled).sum() / (splatted | filled).sum() > 0.85


@pytest.mark.parametrize("name", sorted(RIG_PRESETS))
def test_dataset_like_rigs_see_the_person(body, name):
    """Each preset gives its view count, image size and field of view, and every camera sees the person."""
    preset = RIG_PRESETS[name]
    sample = generate_sample(body, seed=21, rig=preset, occluders=0)
    assert sample.num_views == preset.views
    for camera in sample.cameras:
        assert (camera.width, camera.height) == preset.image_size
        assert preset.focal_factor[0] <= camera.K[0, 0] / camera.width <= preset.focal_factor[1]
    pelvis = sample.ground_truth.joints3d[H36M17.index("pelvis")]
    for camera in sample.cameras:
        uv, depth = project_points(pelvis[None], camera)
        assert depth[0] > 0 and 0 <= uv[0, 0] < camera.width and 0 <= uv[0, 1] < camera.height, camera.name
    assert rig_preset("behave", views=2, width=256).image_size == (256, 192)
    with pytest.raises(ValueError, match="unknown rig"):
        rig_preset("panoptic")


def test_video_rigs_cut_the_person_at_the_frame_edge_sometimes(body):
    """The 16:9 and 9:16 rigs are what real video looks like: in some views joints fall outside the frame (the
    square rigs almost never do), and the command line knows every preset."""
    import main

    assert set(main.RIG_NAMES) == set(RIG_PRESETS)
    for name in ("video", "portrait"):
        outside = []
        for seed in range(12):
            sample = generate_sample(body, seed=seed, rig=RIG_PRESETS[name], occluders=0)
            for camera in sample.cameras:
                uv, _ = project_points(sample.ground_truth.joints3d, camera)
                outside.append(not ((uv >= 0) & (uv < [camera.width, camera.height])).all())
        assert 0.05 < np.mean(outside) < 0.8, (name, np.mean(outside))


def test_coarse_body_frames_change_only_the_frames(body):
    """Frames of the body clustered on a 3 cm grid: a fraction of the faces, the same evidence and truth, and
    pixels close to the full mesh's."""
    from core.render import clustered

    kept_vertices, faces, face_index = clustered(body.smpl.v_template.double().numpy(), body.faces, 0.03)
    assert len(faces) < len(body.faces) / 4 and faces.max() < len(kept_vertices)
    assert (np.diff(face_index) > 0).all()  # faces of the full mesh, in order
    rig = rig_preset("ring", views=2, width=128)
    full = generate_sample(body, seed=5, rig=rig, occluders=0)
    coarse = generate_sample(body, seed=5, rig=rig, occluders=0, render_cell=0.03)
    np.testing.assert_array_equal(full.keypoints, coarse.keypoints)
    np.testing.assert_array_equal(full.ground_truth.joints3d, coarse.ground_truth.joints3d)
    difference = np.abs(full.frames[0].astype(int) - coarse.frames[0].astype(int)).max(-1)
    assert 0 < (difference > 40).mean() < 0.01  # different, but in under 1 % of the pixels


def test_a_volume_rig_looks_past_the_person_and_rolls(body):
    """Real rigs aim at the capture volume and are not level: in the `volume` rig the person is seen off the
    optical axis and the cameras roll, where the `ring` rig looks straight at a level person."""

    def off_axis_and_roll(name):
        off, roll = [], []
        for seed in range(10):
            sample = generate_sample(body, seed=seed, rig=RIG_PRESETS[name], occluders=0)
            pelvis = sample.ground_truth.joints3d[H36M17.index("pelvis")]
            for camera in sample.cameras:
                towards = camera.R @ pelvis + camera.t
                off.append(np.degrees(np.arccos(towards[2] / np.linalg.norm(towards))))
                roll.append(abs(np.degrees(np.arcsin(camera.R[0, 2]))))  # the image x axis out of level
        return np.mean(np.array(off) > 8), np.max(roll)  # the share of views seeing the pelvis 8 degrees off

    ring_off, ring_roll = off_axis_and_roll("ring")
    volume_off, volume_roll = off_axis_and_roll("volume")
    assert ring_off < 0.1 and ring_roll < 1e-6
    assert volume_off > 0.2 and volume_roll > 10, (volume_off, volume_roll)


def test_appearance_dresses_the_person_and_changes_only_the_frames(body):
    """With `appearance`, the seed's truth and evidence stay; the frames are new, the same for the same seed, and
    the left and right limbs wear the same clothes (the plain frames tell them apart by colour)."""
    from core.appearance import clothing_colors
    from core.synthetic import face_joints

    rig = rig_preset("portrait", width=144)
    plain = generate_sample(body, seed=5, rig=rig)
    dressed = generate_sample(body, seed=5, rig=rig, appearance=True)
    np.testing.assert_array_equal(dressed.keypoints, plain.keypoints)
    np.testing.assert_array_equal(dressed.ground_truth.joints3d, plain.ground_truth.joints3d)
    assert all(np.abs(a.astype(int) - b).mean() > 10 for a, b in zip(dressed.frames, plain.frames))
    again = generate_sample(body, seed=5, rig=rig, appearance=True)
    assert all(np.array_equal(a, b) for a, b in zip(again.frames, dressed.frames))
    other = generate_sample(body, seed=6, rig=rig, appearance=True)
    assert np.abs(other.frames[0].astype(int) - dressed.frames[0]).mean() > 10

    joints = face_joints(body, body.faces)
    colours = clothing_colors(joints, np.random.default_rng(0))
    for left, right in ((16, 17), (18, 19), (1, 2), (4, 5), (7, 8), (20, 21)):  # SMPL-24 left/right pairs
        np.testing.assert_array_equal(colours[joints == left][0], colours[joints == right][0])
    assert len(np.unique(colours, axis=0)) >= 3  # skin, shirt, trousers at least


def test_definition_offsets_move_the_evidence_alike_in_every_view(body):
    """A joint defined unlike the body model's is off by one 3D offset that every view sees: the evidence's
    triangulation moves away from the truth by about the spread, which triangulating white jitter would not do."""
    from core.fusion import triangulate

    rig = rig_preset("ring", width=256)
    clean = EvidenceFaults(jitter_px=0.0, miss_probability=0.0, swap_probability=0.0)
    offset = EvidenceFaults(jitter_px=0.0, miss_probability=0.0, swap_probability=0.0, definition_offset_m=0.03)
    moved = []
    for seed in range(6):
        exact, shifted = (generate_sample(body, seed=seed, rig=rig, occluders=0, faults=f) for f in (clean, offset))
        truth = exact.ground_truth.joints3d
        assert np.nanmax(np.abs(triangulate(exact.keypoints, exact.cameras).joints3d - truth)) < 1e-3
        moved.append(np.linalg.norm(triangulate(shifted.keypoints, shifted.cameras).joints3d - truth, axis=1))
    hips = [H36M17.index("left_hip"), H36M17.index("right_hip")]
    assert 0.02 < np.median(np.array(moved)[:, hips]) < 0.08
    assert np.median(np.array(moved)[:, H36M17.index("pelvis")]) < np.median(np.array(moved)[:, hips])


def test_a_bend_at_the_hips_leans_the_trunk_and_leaves_the_legs_standing(body):
    """Bent forward, the trunk leans by the pitch while the thighs turn back by as much: the shins keep their
    direction (within a tenth of the lean: the H36M joints are regressed from skinned vertices, some weighted to
    the pelvis; uncompensated they would turn with it) and the person stays on the floor; a zero spread draws
    exactly the upright sample."""
    rig = RigConfig(views=3, image_size=(320, 240))
    pelvis, thorax = H36M17.index("pelvis"), H36M17.index("thorax")
    shins = [(H36M17.index(f"{side}_knee"), H36M17.index(f"{side}_ankle")) for side in ("left", "right")]

    def angle(u, w):
        return np.degrees(np.arccos(np.clip(u @ w / np.linalg.norm(u) / np.linalg.norm(w), -1, 1)))

    upright = generate_sample(body, seed=3, rig=rig)
    np.testing.assert_array_equal(generate_sample(body, seed=3, rig=rig, bend_deg=0.0).keypoints, upright.keypoints)
    leans = []
    for seed in range(3, 9):
        straight, bent = (generate_sample(body, seed=seed, rig=rig, bend_deg=d).ground_truth for d in (0.0, 30.0))
        trunk = [j[thorax] - j[pelvis] for j in (straight.joints3d, bent.joints3d)]
        leans.append(angle(*trunk))
        assert bent.joints3d[thorax, 2] < straight.joints3d[thorax, 2] + 1e-3  # forward, not back
        for knee, ankle in shins:
            assert angle(*(j[ankle] - j[knee] for j in (straight.joints3d, bent.joints3d))) < 0.15 * leans[-1] + 0.5
        np.testing.assert_allclose(bent.betas, straight.betas)
        assert abs(bent.joints3d[:, 2].min() - straight.joints3d[:, 2].min()) < 0.05  # the feet stay down
    assert np.median(leans) > 10.0

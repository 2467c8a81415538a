"""`refine`: run HeatFormer on one multiview sample and return a `RefinementTrace` of every iteration.

Ground truth is never read here: `evaluate` adds metrics to a finished trace, as a separate step.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from core.cameras import stack_cameras
from core.crops import crop_affines, crop_boxes, crop_images, image_to_crop
from core.errors import InputError
from core.fusion import procrustes_rotation, torso_orientation, triangulate
from core.heatmaps import decode_heatmaps, heatmap_to_image
from core.inverse_kinematics import (BodyFromJoints, body_from_joints, fit_body_and_views, fit_body_to_views,
                                     refine_body_to_joints)
from core.joints import H36M17, JOINT_SETS, convert_keypoints
from core.metrics import MM, pa_mpjpe
from core.model.adafuse import CROP, HEATMAP_SIDE
from core.model.geometry import MODES, ViewGeometry
from core.model.network import ROOT, HeatFormer
from core.rotations import angle_between_deg, axis_angle_to_matrix, matrix_to_axis_angle
from core.sample import MultiviewSample
from core.self_calibration import self_calibrate
from core.trace import RefinementTrace

Progress = Callable[[int, str], None]  # percent, message; may raise to cancel


@dataclass
class PreparedInput:
    images: torch.Tensor  # (1, V, 3, Hi, Wi)
    heatmaps: torch.Tensor  # (1, V, J, H, W)
    geometry: ViewGeometry
    keypoints: np.ndarray  # (V, J, 3) what the heatmaps show
    boxes: np.ndarray  # (V, 4)
    root_world: np.ndarray | None  # calibrated mode only
    view_consistency_px: list[float] | None = None  # calibrated: per view, median reprojection error of the
    # triangulated joints against that view's detections — a check of the calibration


def evidence_keypoints(sample: MultiviewSample) -> np.ndarray:
    """(V, 17, 3) H36M keypoints in image pixels from whatever 2D evidence the sample has."""
    if sample.keypoints is not None:
        keypoints = sample.keypoints
    else:
        heatmaps = torch.from_numpy(sample.heatmaps)
        positions, confidence = decode_heatmaps(heatmaps)
        h, w = heatmaps.shape[-2:]
        keypoints = np.zeros(heatmaps.shape[:2] + (3,), dtype=np.float32)
        for v, cam in enumerate(sample.cameras):
            keypoints[v, :, :2] = heatmap_to_image(positions[v], cam.image_size, (w, h)).numpy()
        keypoints[..., 2] = confidence.clamp(0, 1).numpy()
    if sample.joint_set != H36M17.name:
        keypoints = convert_keypoints(keypoints, JOINT_SETS[sample.joint_set], H36M17)
    return np.asarray(keypoints, dtype=np.float32)


@torch.no_grad()
def official_keypoints(sample: MultiviewSample, model: HeatFormer, mode: str, device: torch.device) -> np.ndarray:
    """(V, 17, 3) H36M keypoints made from the frames by the official checkpoint's AdaFuse, fused across the
    calibrated views (its SCORE fusion) in calibrated mode, each view alone otherwise. The square crop it reads
    is placed around the sample's own 2D evidence, or the whole frame where a view has none (the official code
    takes its boxes from its datasets)."""
    where = sample.source or sample.name
    if any(frame is None for frame in sample.frames):
        raise InputError(where, "the official 2D network needs every view's image")
    boxes = crop_boxes(evidence_keypoints(sample), [c.image_size for c in sample.cameras], 1.0,
                       model.config.crop_scale)
    crops = crop_images(sample.frames, boxes, (CROP, CROP)).to(device)[None]
    to_heatmap = torch.as_tensor(crop_affines(boxes, (HEATMAP_SIDE, HEATMAP_SIDE)), dtype=torch.float32)[None]
    cameras = None
    if mode == "calibrated":
        stacked = stack_cameras(sample.cameras, device=device)
        cameras = (stacked["K"][None], torch.as_tensor(np.stack([c.R for c in sample.cameras]), dtype=torch.float32,
                                                       device=device)[None],
                   torch.as_tensor(np.stack([c.t for c in sample.cameras]), dtype=torch.float32, device=device)[None])
    positions, confidence = model.adafuse(crops, to_heatmap.to(device), *(cameras or ()))
    return torch.cat([positions[0], confidence[0, ..., None]], -1).cpu().numpy().astype(np.float32)


def triangulate_sample(sample: MultiviewSample, keypoints: np.ndarray, too_few_views: str):
    """`triangulate` the sample's keypoints in its calibrated views; a sample it cannot fuse (fewer than two
    views: ``too_few_views`` says who needs them) is bad input, named by its folder."""
    if sample.num_views < 2:
        raise InputError(sample.source or sample.name, too_few_views)
    try:
        return triangulate(keypoints, sample.cameras)
    except ValueError as exc:
        raise InputError(sample.source or sample.name, str(exc)) from exc


def prepare(sample: MultiviewSample, model: HeatFormer, mode: str, device: torch.device) -> PreparedInput:
    """Fuse (calibrated), crop and render the input heatmaps: everything the network reads."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; expected one of {MODES}")
    config = model.config
    keypoints = official_keypoints(sample, model, mode, device) if model.official_2d else evidence_keypoints(sample)
    detected = keypoints  # each view's own, before fusion: what the start's fit to the views reads
    root_world = consistency = placed = None
    if mode == "calibrated":
        fused = triangulate_sample(sample, keypoints, "calibrated mode needs at least two views")
        root_world = fused.root
        if not model.official_2d:  # AdaFuse's joints are fused already, and the official network reads them so
            keypoints = fused.keypoints
        errors = fused.reprojection_error
        with warnings.catch_warnings():  # a view with no finite error has no median: NaN, without a warning
            warnings.simplefilter("ignore", RuntimeWarning)
            consistency = np.where(np.isfinite(errors).any(1), np.nanmedian(errors, axis=1), np.nan).tolist()
    width, height = config.heatmap_size
    boxes = crop_boxes(keypoints, [c.image_size for c in sample.cameras], width / height, config.crop_scale)
    cams = stack_cameras(sample.cameras, device=device)
    boxes_t = torch.as_tensor(boxes, dtype=torch.float32, device=device)
    points = image_to_crop(torch.as_tensor(keypoints[..., :2], device=device), boxes_t, config.heatmap_size)
    heatmaps = model.render_heatmaps(points, torch.as_tensor(keypoints[..., 2], device=device))
    root_cam = orient_cam = joints_cam = pose_init = betas_init = None
    start = None  # (V, 3, 3) world -> camera rotations, (J, 3) root-relative joints in world axes
    if root_world is not None:
        root_cam = torch.as_tensor(np.stack([c.R @ root_world + c.t for c in sample.cameras]), dtype=torch.float32,
                                   device=device)[None]
        start = np.stack([c.R for c in sample.cameras]), fused.joints3d - root_world
    elif model.view_lifter is not None:
        placed = self_calibrate(model.view_lifter, keypoints, sample.cameras, ROOT)
        start = None if placed is None else (placed.rotations, placed.joints3d)
    if start is not None:
        rotations, relative = start
        if config.orientation_init == "triangulated":
            world, pose, betas = triangulated_start(model, relative)
            if root_world is not None and config.start_view_fit_steps and np.isfinite(pose).all():
                fit = fit_body_to_views(model.body, BodyFromJoints(world, pose, betas), root_world, detected,
                                        sample.cameras, config.start_view_fit_steps)
                world, pose, betas = fit.global_orient, fit.body_pose, fit.betas
            elif placed is not None and config.uncalibrated_fit_steps and np.isfinite(pose).all():
                views = np.isfinite(rotations).all((1, 2))
                fit, turns = fit_body_and_views(model.body, BodyFromJoints(world, pose, betas), detected[views],
                                                [c for c, v in zip(sample.cameras, views) if v], rotations[views],
                                                placed.translations[views], config.uncalibrated_fit_steps)
                world, pose, betas = fit.global_orient, fit.body_pose, fit.betas
                rotations = rotations.copy()
                rotations[views] = turns
            orient_cam = torch.as_tensor(rotations @ world, dtype=torch.float32, device=device)[None]
            if config.pose_init == "triangulated":
                pose_init = torch.as_tensor(pose, dtype=torch.float32, device=device)[None]
                betas_init = torch.as_tensor(betas, dtype=torch.float32, device=device)[None]
        if config.reads_triangulated_joints:
            joints_cam = torch.as_tensor(np.einsum("jk,vlk->vjl", relative, rotations), dtype=torch.float32,
                                         device=device)[None]
    geometry = ViewGeometry(mode, boxes_t[None], config.heatmap_size, cams["K"][None], cams["dist"][None], root_cam,
                            orient_cam, joints_cam, pose_init, betas_init)
    if config.reads_images:
        images = crop_images(sample.frames, boxes, config.image_size).to(device)[None]
    else:  # nothing reads them: cropping the frames would be wasted time (about a millisecond a sample)
        images = torch.zeros(1, sample.num_views, 3, config.image_size[1], config.image_size[0], device=device)
    return PreparedInput(images, heatmaps[None], geometry, keypoints, boxes, root_world, consistency)


def triangulated_start(model: HeatFormer, joints: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Iteration 0 read off the triangulated (uncalibrated: lifted) joints (17, 3) relative to the root, world axes:
    the body -> world rotation (3, 3), body pose (23, 3, 3) and betas. The rotation puts the rest torso on the
    triangulated one; with the network's `pose_init` "triangulated", the pose and shape come from inverse kinematics
    (and `start_fit_steps` Gauss-Newton steps) and the rotation from the posed torso. All NaN where too few torso
    joints were triangulated (the network falls back on its orientation head and mean)."""
    rest = model.rest_joints()
    unknown = (np.full((3, 3), np.nan), np.full((23, 3, 3), np.nan), np.full(model.body.num_betas, np.nan))
    world = torso_orientation(rest, joints)
    if world is None:
        return unknown
    if model.config.pose_init != "triangulated":
        return world, *unknown[1:]
    goal = prior_joints(model, joints, world)
    fit = refine_body_to_joints(model.body, body_from_joints(model.body, rest, goal, world), goal,
                                model.config.start_fit_steps)
    return fit.global_orient, fit.body_pose, fit.betas


def prior_joints(model: HeatFormer, joints: np.ndarray, world: np.ndarray) -> np.ndarray:
    """(17, 3) root-relative triangulated ``joints`` (world axes, NaN where unknown) as the network's joint prior
    moves them, read in the body's frame (``world``: the triangulated torso's body -> world rotation); as they are
    without a prior."""
    if model.joint_prior is None:
        return joints
    parameter = next(model.joint_prior.parameters())
    with torch.no_grad():
        body_frame = torch.as_tensor(joints @ world, dtype=parameter.dtype, device=parameter.device)[None]
        moved = model.joint_prior(body_frame)[0].double().cpu().numpy()
    return moved @ world.T


def _rotation_mean(rotations: np.ndarray, axis: int) -> np.ndarray:
    """Chordal mean of rotation matrices along ``axis`` (projected back onto SO(3))."""
    u, _, vt = np.linalg.svd(rotations.mean(axis))
    d = np.sign(np.linalg.det(u @ vt))
    u[..., :, -1] *= d[..., None]
    return u @ vt


def stack_prepared(items: list[PreparedInput], mode: str) -> PreparedInput:
    """One batch from several prepared samples with the same number of views (keypoints and boxes stacked)."""
    g = [p.geometry for p in items]
    geometry = ViewGeometry(mode, torch.cat([x.boxes for x in g]), g[0].heatmap_size, torch.cat([x.K for x in g]),
                            torch.cat([x.dist for x in g]),
                            None if mode == "uncalibrated" else torch.cat([x.root_cam for x in g]),
                            *(None if getattr(g[0], name) is None else torch.cat([getattr(x, name) for x in g])
                              for name in ("orient_cam", "joints_cam", "pose_init", "betas_init")))
    return PreparedInput(torch.cat([p.images for p in items]), torch.cat([p.heatmaps for p in items]), geometry,
                         np.stack([p.keypoints for p in items]), np.stack([p.boxes for p in items]), None)


def refine(sample: MultiviewSample, model: HeatFormer, mode: str = "calibrated", iterations: int | None = None,
           progress: Progress | None = None, device: str | torch.device | None = None) -> RefinementTrace:
    """Run the network on ``sample`` in ``mode`` for ``iterations`` (1..8; default: the trained count)."""
    return refine_batch([sample], model, mode, iterations, progress, device)[0]


def refine_batch(samples: list[MultiviewSample], model: HeatFormer, mode: str = "calibrated",
                 iterations: int | None = None, progress: Progress | None = None,
                 device: str | torch.device | None = None) -> list[RefinementTrace]:
    """`refine` for several samples with the same number of views (frames of a sequence) in one network batch;
    each trace's network time is its share of the batch's."""
    iterations = model.config.iterations if iterations is None else iterations
    if not 1 <= iterations <= 8:
        raise ValueError("iterations must be between 1 and 8")
    if len({s.num_views for s in samples}) != 1:
        raise ValueError("a batch needs samples with the same number of views")
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    report = progress or (lambda percent, message: None)
    model = model.to(device).eval()  # outside inference mode: parameters moved in it could not train again
    body = model.body.to(device)
    with torch.inference_mode():  # the network 8 % faster than under no_grad on the CPU (no version counters)
        return _refine_batch(samples, model, body, mode, iterations, report, device)


def _refine_batch(samples: list[MultiviewSample], model: HeatFormer, body, mode: str, iterations: int,
                  report: Progress, device: torch.device) -> list[RefinementTrace]:
    """`refine_batch`'s work, in inference mode, the model already on ``device``."""
    count = len(samples)

    start = time.perf_counter()
    report(5, f"{mode}: fusing and cropping the 2D evidence")
    prepared = [prepare(sample, model, mode, device) for sample in samples]
    prepare_seconds = (time.perf_counter() - start) / count

    report(30, f"{mode}: running {iterations} iterations" + (f" on {count} samples" if count > 1 else ""))
    start = time.perf_counter()
    batch = prepared[0] if count == 1 else stack_prepared(prepared, mode)
    states = model(batch.images, batch.heatmaps, batch.geometry, iterations)
    if device.type == "cuda":
        torch.cuda.synchronize()
    network_seconds = (time.perf_counter() - start) / count
    stages = {f"network: {name}": seconds / count for name, seconds in model.stage_seconds.items()}

    traces = []
    for b, (sample, own) in enumerate(zip(samples, prepared)):
        report(70 + 30 * b // count, f"{mode}: posing meshes")
        start = time.perf_counter()
        trace = _trace_from_states(sample, model, mode, own, [s.select(b) for s in states])
        trace.timings = {"prepare": prepare_seconds, "network": network_seconds, **stages,
                         "meshes": time.perf_counter() - start}
        trace.info.update(device=str(device), checkpoint=model.identity, trained=model.trained,
                          checkpoint_description=model.description, body_model=body.identity, sample=sample.name,
                          sample_source=sample.source, sample_frame=sample.frame,
                          sample_calibration=sample.calibration, config=model.config.to_json(),
                          batch_size=count)
        traces.append(trace)
    report(100, f"{mode}: done")
    return traces


def _trace_from_states(sample, model, mode, prepared: PreparedInput, states) -> RefinementTrace:
    body = model.body
    cameras = sample.cameras
    n_iter, views = len(states), sample.num_views
    R = np.stack([c.R for c in cameras])  # (V, 3, 3) world -> camera
    global_orient = torch.stack([s.global_orient[0] for s in states])  # (I, V, 3, 3)
    body_pose = torch.stack([s.body_pose[0] for s in states])  # (I, V, 23, 3, 3)
    betas = torch.stack([s.betas[0] for s in states])  # (I, V, 10)
    out = body.posed(global_orient.flatten(0, 1)[:, None], body_pose.flatten(0, 1), betas.flatten(0, 1))
    root = out.joints_h36m[:, ROOT: ROOT + 1]
    relative = (out.vertices - root).unflatten(0, (n_iter, views))  # root-relative, camera axes
    verts_cam = relative.cpu().numpy()
    joints_cam = (out.joints_h36m - root).unflatten(0, (n_iter, views)).cpu().numpy()

    if mode == "calibrated":
        # camera axes -> world axes, root at the fused root
        to_world = np.transpose(R, (0, 2, 1))[None]  # (1, V, 3, 3)
        offset = prepared.root_world[None, None, None]
        placement = "each view's estimate placed at the triangulated root, in world coordinates"
    else:
        # No extrinsics were used: align every view's estimate rigidly to the first view's, then show the result
        # through camera 1's pose.
        to_world = np.zeros((n_iter, views, 3, 3))
        for k in range(n_iter):
            for v in range(views):
                to_world[k, v] = R[0].T @ procrustes_rotation(joints_cam[k, v], joints_cam[k, 0]).T
        depth = _weak_perspective_root(states[0].cam[0, 0].cpu().numpy(), prepared, cameras[0])
        offset = (R[0].T @ (depth - cameras[0].t))[None, None, None]
        placement = ("uncalibrated: estimates aligned rigidly to view 1's and shown through camera 1's pose "
                     "(no extrinsics were used to estimate them)")
    to_world = np.broadcast_to(to_world, (n_iter, views, 3, 3))
    # points @ to_world^T in float32: einsum over float64 rotations took a tenth of refine()
    to_world_t, offset32 = np.swapaxes(to_world, -1, -2).astype(np.float32), offset.astype(np.float32)
    vertices = verts_cam @ to_world_t + offset32
    joints3d = joints_cam @ to_world_t + offset32

    # Averaged estimate (the paper's Table 16): pose and shape averaged over views, orientation averaged in world.
    world_orient = np.einsum("kvab,kvbc->kvac", to_world, global_orient.cpu().numpy())
    mean_orient = torch.as_tensor(_rotation_mean(world_orient, 1), dtype=torch.float32)
    mean_pose = torch.as_tensor(_rotation_mean(body_pose.cpu().numpy(), 1), dtype=torch.float32)
    fused = body.posed(mean_orient[:, None].to(betas.device), mean_pose.to(betas.device), betas.mean(1))
    fused_root = fused.joints_h36m[:, ROOT: ROOT + 1]
    offset_world = offset.reshape(1, 1, 3)
    fused_vertices = (fused.vertices - fused_root).cpu().numpy() + offset_world
    fused_joints = (fused.joints_h36m - fused_root).cpu().numpy() + offset_world

    geometry = prepared.geometry
    joints2d = torch.stack([geometry.heatmap_to_image(s.heatmap_joints)[0] for s in states]).cpu().numpy()
    # The mesh lands in each image through the same projection as the joints, every iteration at once (a batch
    # against the geometry's batch of one).
    cams = torch.cat([s.cam for s in states])  # (I, V, 3)
    vertices2d = geometry.relative_to_image(relative, cams).cpu().numpy()
    return RefinementTrace(
        mode=mode, view_names=sample.view_names,
        global_orient=matrix_to_axis_angle(global_orient).cpu().numpy(),
        body_pose=matrix_to_axis_angle(body_pose).flatten(2).cpu().numpy(),
        betas=betas.cpu().numpy(),
        vertices=vertices, joints3d=joints3d,
        display_rotation=to_world.astype(np.float32),
        joints2d=joints2d.astype(np.float32), vertices2d=vertices2d.astype(np.float32),
        heatmaps=torch.stack([s.heatmaps[0] for s in states]).half().cpu().numpy(),  # torch converts faster
        input_heatmaps=prepared.heatmaps[0].half().cpu().numpy(),
        input_keypoints=prepared.keypoints, crop_boxes=prepared.boxes.astype(np.float32),
        fused_vertices=fused_vertices.astype(np.float32), fused_joints3d=fused_joints.astype(np.float32),
        faces=body.faces.astype(np.int32),
        info={"placement": placement, "view_consistency_px": prepared.view_consistency_px},
    )


def _weak_perspective_root(cam: np.ndarray, prepared: PreparedInput, camera) -> np.ndarray:
    """Camera-frame root position implied by a weak-perspective camera (s, tx, ty) of view 0 and its crop."""
    x0, y0, bw, bh = prepared.boxes[0]
    focal = camera.K[0, 0]
    depth = 2 * focal / (max(cam[0], 1e-3) * bh)
    centre = np.array([x0 + bw / 2 + cam[1] * bh / 2, y0 + bh / 2 + cam[2] * bh / 2])
    ray = np.linalg.solve(camera.K, np.array([centre[0], centre[1], 1.0]))
    return ray * depth


def _truth_in_cameras(trace: RefinementTrace, sample: MultiviewSample):
    """With 3D ground truth of H36M-17: (the truth's known joints, world -> camera rotations, the world -> camera
    root-relative map, the display-world -> camera root-relative map); else None."""
    gt = sample.ground_truth
    if not (gt is not None and gt.joints3d is not None and gt.joint_set == H36M17.name
            and np.isfinite(gt.joints3d[ROOT]).all()):
        return None
    R = np.stack([c.R for c in sample.cameras])  # world -> camera

    def in_cameras(points_world, truth_root):  # truth (N, 3) world -> (V, N, 3) root-relative, camera axes
        return np.einsum("vab,nb->vna", R, points_world - truth_root)

    def predicted(points_world, root_world, rotation):  # display world -> camera axes, root-relative
        return np.einsum("...ba,...nb->...na", rotation, points_world - root_world[..., None, :])

    return gt.known_joints, R, in_cameras, predicted


def heatmap_errors(rendered: np.ndarray, input_heatmaps: np.ndarray) -> np.ndarray:
    """(..., V, J) the mean squared difference of rendered and input heatmaps (peak 1) per view and joint."""
    return ((rendered.astype(np.float32) - input_heatmaps) ** 2).mean((-2, -1))


def joint_errors(trace: RefinementTrace, sample: MultiviewSample) -> dict[str, np.ndarray]:
    """Per iteration, view and joint (I, V, J): the reprojection error against the 2D evidence (px, NaN where the
    evidence has no joint), the heatmap error (mean squared difference of the rendered and input heatmaps, peak
    1) and, with 3D ground truth, the joint's error in that camera's frame (mm, NaN where the truth has none)."""
    evidence = trace.input_keypoints
    errors = np.linalg.norm(trace.joints2d - evidence[None, ..., :2], axis=-1)
    out = {"reprojection_px": np.where((evidence[..., 2] > 0)[None], errors, np.nan),
           "heatmap_mse": heatmap_errors(trace.heatmaps, trace.input_heatmaps[None])}
    truth = _truth_in_cameras(trace, sample)
    if truth is not None:
        known, _, in_cameras, predicted = truth
        gt = sample.ground_truth
        truth_joints = in_cameras(np.where(known[:, None], gt.joints3d, 0), gt.joints3d[ROOT])
        pred_joints = predicted(trace.joints3d, trace.joints3d[..., ROOT, :], trace.display_rotation)
        out["mpjpe_mm"] = np.where(known, np.linalg.norm(pred_joints - truth_joints[None], axis=-1) * MM, np.nan)
    return out


def evaluate(trace: RefinementTrace, sample: MultiviewSample, body=None) -> None:
    """Add per-iteration metrics to ``trace``: reprojection and heatmap errors always; with ground truth, MPJPE
    and PA-MPJPE (and MPVPE when ``body`` can pose the ground-truth parameters) of each view's estimate in that
    camera's frame (as the paper evaluates), and of the averaged estimate in the first camera's frame."""
    metrics = {}
    per_joint = joint_errors(trace, sample)
    seen = np.isfinite(per_joint["reprojection_px"][0])
    metrics["reprojection_px"] = np.nansum(per_joint["reprojection_px"], (1, 2)) / max(seen.sum(), 1)
    metrics["heatmap_mse"] = per_joint["heatmap_mse"].mean((1, 2))  # of the joints' errors: what the inspector shows
    truth_frames = _truth_in_cameras(trace, sample)
    if truth_frames is not None:
        gt = sample.ground_truth
        known, R, in_cameras, predicted = truth_frames  # errors over the joints the ground truth has
        truth_root, truth = gt.joints3d[ROOT], gt.joints3d[known]
        truth_joints = in_cameras(truth, truth_root)
        pred_root, pred = trace.joints3d[..., ROOT, :], trace.joints3d[..., known, :]
        metrics["mpjpe_mm"] = per_joint["mpjpe_mm"][..., known].mean(-1).mean(1)
        metrics["pa_mpjpe_mm"] = pa_mpjpe(pred, np.broadcast_to(truth, pred.shape)).mean(1)
        first = trace.display_rotation[:, 0]
        fused_root, fused = trace.fused_joints3d[:, ROOT], trace.fused_joints3d[:, known]
        fused_joints = predicted(fused, fused_root, first)
        metrics["fused_mpjpe_mm"] = np.linalg.norm(fused_joints - truth_joints[0][None], axis=-1).mean(-1) * MM
        metrics["fused_pa_mpjpe_mm"] = pa_mpjpe(fused, np.broadcast_to(truth, fused.shape))
        if gt.has_smpl:  # each view's global orientation against the truth's, both in that camera's frame
            truth_orient = R @ axis_angle_to_matrix(torch.as_tensor(gt.global_orient, dtype=torch.float64)).numpy()
            pred_orient = axis_angle_to_matrix(torch.as_tensor(trace.global_orient, dtype=torch.float64)).numpy()
            metrics["orient_error_deg"] = angle_between_deg(pred_orient, truth_orient).mean(1)
        truth_vertices = ground_truth_vertices(gt, body) if body is not None and gt.smpl_fits(body.identity) \
            else None
        if truth_vertices is not None and truth_vertices.shape[0] == trace.vertices.shape[2]:
            truth_verts = in_cameras(truth_vertices, truth_root)
            pred_verts = predicted(trace.vertices, pred_root, trace.display_rotation)
            metrics["mpvpe_mm"] = (np.linalg.norm(pred_verts - truth_verts[None], axis=-1).mean(-1) * MM).mean(1)
            fused_verts = predicted(trace.fused_vertices, fused_root, first)
            metrics["fused_mpvpe_mm"] = np.linalg.norm(fused_verts - truth_verts[0][None], axis=-1).mean(-1) * MM
    trace.metrics = {k: np.asarray(v, dtype=np.float64) for k, v in metrics.items()}


def ground_truth_vertices(gt, body) -> np.ndarray:
    """The ground truth's SMPL parameters posed by ``body`` (world, metres)."""
    with torch.no_grad():
        out = body(*(torch.tensor(np.asarray(x)[None], dtype=torch.float32, device=body.device)
                     for x in (gt.global_orient, gt.body_pose, gt.betas)),
                   torch.tensor(np.asarray(gt.transl if gt.transl is not None else np.zeros(3))[None],
                                dtype=torch.float32, device=body.device))
    return out.vertices[0].cpu().numpy()

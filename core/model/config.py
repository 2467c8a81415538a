"""`HeatFormerConfig`: every size of the network in one place, with the two presets.

`compact` is ours: small enough to run 4 views x 3 iterations in tens of milliseconds on a 2-core CPU.
`official` has the dimensions of the official code (kyotovision-public/HeatFormer), so its checkpoints load.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from typing import Literal


@dataclass(frozen=True)
class HeatFormerConfig:
    num_joints: int = 17
    # Heatmaps as the HeatEncoder reads them (width, height), cut into square patches of `patch_size`.
    heatmap_size: tuple[int, int] = (48, 64)
    patch_size: int = 8
    sigma: float = 1.5  # Gaussian spread of rendered heatmaps, in heatmap pixels
    # Each rendered Gaussian is cut to the square within this many sigmas of its centre, as the official code
    # renders them (None: never cut). Checkpoints saved before the cut were trained without it and load with it:
    # for the one shipped then, val100's errors moved by 0.1 mm at most. The cut leaves most heatmap patches
    # zero, which the HeatEncoder skips.
    heatmap_window: float | None = 3.0
    # "direct": Gaussians rendered at the heatmap size around the exact joint position (ours: differentiable, no
    # rounding). "coarse": as the official code renders them, on a `coarse_grid` square grid at the nearest cell,
    # resized up (core.heatmaps.render_coarse_heatmaps); its checkpoints were trained on those maps.
    heatmap_render: Literal["direct", "coarse"] = "direct"
    coarse_grid: int = 96
    crop_scale: float = 1.3  # the crop box around the 2D evidence, relative to its extent

    heat_dim: int = 64
    heat_depth: int = 1
    heat_heads: int = 4
    heat_head_dim: int = 16
    heat_mlp: int = 128

    image_encoder: Literal["cnn", "vit"] = "cnn"
    image_size: tuple[int, int] = (96, 128)  # crop fed to the image encoder (width, height)
    image_dim: int = 48
    vit_depth: int = 0
    vit_heads: int = 0
    vit_mlp_ratio: float = 4.0
    vit_drop_path: float = 0.0  # stochastic depth of the last ViT block in training (earlier ones: linearly less)

    decoder_depth: int = 2
    decoder_heads: int = 4
    decoder_head_dim: int = 32
    decoder_mlp: int = 256
    decoder_cross_dropout: float = 0.0  # dropout of the decoder's cross-attention weights and output, in training
    query: Literal["spatial", "pooled"] = "spatial"  # paper's Fig. 9: all patch tokens vs one pooled per view
    # The paper keeps the global orientation of the orientation head for every iteration. Ours can also let the
    # decoder add a residual to it at each iteration: with our small head, orientation is the largest error.
    refine_orientation: bool = False
    # Where iteration 0's global orientation comes from in calibrated mode. "head": the orientation head, from the
    # crop's image and heatmaps, as the paper. "triangulated": the rest torso turned onto the triangulated one
    # (core.fusion.torso_orientation), the same in every view; on real frames the head's per-view orientations
    # disagreed by up to 170 degrees. Uncalibrated mode, and a sample whose torso was not triangulated, use the head.
    orientation_init: Literal["head", "triangulated"] = "head"
    # With "triangulated": which torso is turned onto the triangulated one. "rest": the rest pose's, once
    # (iteration 0's orientation is kept). "posed": from iteration 1 on, the current estimate's torso (pelvis,
    # hips, spine, thorax, shoulders) after every pose update, so the orientation follows the pose rather than the
    # pose bending to make up for an orientation that is off: the rest torso is 12 degrees from the truth on the
    # `ring` set, where the true pose's torso comes within 3.4 (docs/training-design.md). Trained from the shipped
    # weights (run 24) it learnt worse than "rest": a torso pose that is off turns the whole body with it.
    torso_alignment: Literal["rest", "posed"] = "rest"
    # Not in the paper: where iteration 0's body pose and shape come from in calibrated mode. "mean": the learnt
    # mean pose and shape, as the paper. "triangulated": closed-form inverse kinematics on the triangulated joints
    # (core.inverse_kinematics: each bone turned onto the triangulated one, the shape by least squares, the
    # orientation from the posed torso, which then replaces the rest torso's), a few centimetres from the truth,
    # so that the decoder learns corrections rather than the whole pose. Needs `orientation_init` "triangulated";
    # uncalibrated mode, and a sample whose torso was not triangulated, start from the mean.
    pose_init: Literal["mean", "triangulated"] = "mean"
    # What reads the frames (the paper's ablation "w/o image features" is "orientation"). "all": the orientation
    # head and the decoder, as the paper. "orientation": the orientation head only. "none": nothing; the image
    # encoder is not built and the image tokens are zeros (shapes as with them, so a checkpoint trained with
    # images fine-tunes to this). Without frames, a network cannot meet a domain gap in them, and training
    # need not draw them.
    image_features: Literal["all", "orientation", "none"] = "all"
    # Not in the paper: at every iteration the decoder's queries of a view also carry, embedded, each joint's
    # offset from the estimate to the evidence, both read off the heatmaps (the evidence's peak by
    # core.heatmaps.decode_heatmaps, the estimate's joints where they were rendered). The heatmap comparison has
    # to learn that offset from 8x8 patches; given outright, the update is a smaller function to learn.
    # The embedding's last layer starts at zero: a checkpoint fine-tuned with it starts as the same network.
    joint_offsets: bool = False
    # Which joints' offsets the decoder reads: "all", or "above_knees" (knees and ankles read as unseen, so the
    # legs are refined from the heatmap comparison alone). With all of them, real footage's ankles ran away after
    # iteration 2 (README "Ablations"); the upper body's alone bought nothing in training (run 23).
    offset_joints: Literal["all", "above_knees"] = "all"
    # Not in the paper: in calibrated mode the decoder's queries of a view also carry, embedded, each joint's 3D
    # offset from the estimate to the triangulated evidence (both relative to the root, in the view's camera
    # orientation, metres) and whether it was triangulated. Where the heatmap offsets say in which direction a
    # joint is off in one image, these say it for the body, the same in every view. Uncalibrated mode reads them
    # as unseen. The embedding's last layer starts at zero, as the heatmap offsets'.
    triangulated_offsets: bool = False
    # Metres per unit of those offsets as the embedding reads them (clamped to 10 units and to 1 m). In metres (1.0,
    # runs 26-31) a centimetre off reached the first layer as 0.01, against weights of about 0.07: trained
    # 6000 steps, the embedding had not grown enough to tell the decoder where its estimate stood, and the decoder
    # made the same correction at every pass. Fine-tuning to another unit rescales the first layer's weights, so
    # the network starts as the same function.
    triangulated_offset_unit: float = 1.0
    # Not in the paper: calibrated mode's closed-form start (`pose_init` "triangulated") is read off the
    # triangulated joints as a learnt prior on bodies moves them (core.model.joint_prior), not off the joints as
    # triangulated; 0: no prior, else the width of its three hidden layers.
    joint_prior: int = 0
    # Not in the paper: uncalibrated mode's start is read off the views' joints lifted to 3D by a learnt lifter and
    # put together by placing the views around the body (core.model.view_lifter, core.self_calibration), as
    # calibrated mode's is off the triangulated joints; 0: no lifter (the mean body facing each camera), else the
    # width of its four hidden layers.
    view_lifter: int = 0
    # Not in the paper: damped Gauss-Newton steps that move the closed-form start (`pose_init` "triangulated") onto
    # the joints it was read off, every rotation and the shape at once (core.inverse_kinematics
    # `refine_body_to_joints`). The closed-form body turns one bone at a time and ends 12-13 mm from the joint
    # prior's joints; one step (about a millisecond) takes it within 4 mm. 0: the closed-form body as it is.
    start_fit_steps: int = 0
    # Not in the paper: in calibrated mode, damped Gauss-Newton steps that then move the start towards every view's
    # own 2D evidence (the classical fit's robust reprojection error; core.inverse_kinematics `fit_body_to_views`).
    # Triangulation drops a joint that one view alone sees and keeps some of a view's gross error; the fit reads
    # them as the classical fit does, from a start already near. One step (about 2 ms) took the start 2.6-6 mm
    # nearer the truth on 9:16, 16:9 and 3-view video frames (docs/training-design.md). 0: no such fit.
    start_view_fit_steps: int = 0
    # Not in the paper: in uncalibrated mode, damped Gauss-Newton steps that move the start read off the placed
    # views' lifts (`view_lifter`) and those views' rotations and positions together towards every view's 2D
    # evidence (a small bundle adjustment; core.inverse_kinematics `fit_body_and_views`), the shape held near the
    # lifter's size. The views are placed one at a time from lifts; the evidence of all of them pins the body and
    # the views better together (docs/training-design.md). 0: no such fit; without a view lifter, nothing to fit.
    uncalibrated_fit_steps: int = 0
    # Not in the paper: the decoder's queries also carry a learnt embedding of the iteration's index (zero at first:
    # a checkpoint fine-tuned with it starts as the same network). The same decoder otherwise cannot tell its first
    # pass from its third, and from a start close to the truth (`pose_init`) it made the same correction at every
    # pass, overshooting after the first (docs/training-design.md). Iterations past those trained reuse the last's.
    # Runs 28-30 trained it for up to 2200 steps: it did not stop the overshoot in that time.
    iteration_embedding: bool = False
    # Not in the paper: the decoder's queries also carry a learnt embedding of the mode (zero at first). One decoder
    # serves both modes; uncalibrated starts from the mean pose and needs large steps at every pass, calibrated
    # (with `pose_init`) a small one, and without knowing which it is the decoder made the same step in both.
    # Runs 29-30 trained it for a few hundred steps only, without a measurable change.
    mode_embedding: bool = False
    # Not in the paper: the decoder's queries of a view also carry, embedded, how many image pixels one heatmap
    # pixel of its crop spans (log2 of the crop's height over the heatmap's). The heatmaps are drawn at the crop's
    # size whatever the frame's, so without it the decoder cannot tell a 256-pixel frame's coarse evidence from a
    # 1920-pixel frame's precise one, and learnt one step for both: too long for the first (run 50 on `ring` at
    # 256 pixels 35.3 -> 36.6 mm over the passes), right for the second (16.2 -> 14.3). Zero at first, as above.
    evidence_scale: bool = False
    # Not in the paper: each pass's pose and shape update of a view is scaled by a learnt gate, 2 sigmoid(g), of the
    # pass's index and the view's `evidence_scale` feature (g's last layer zero at first: a gate of 1, the same
    # network). Why: the step the decoder learnt is too long for coarse evidence at the later passes; a gate can
    # shorten it directly, where an embedding in the queries must learn to do so through the decoder.
    step_gate: bool = False

    orient_dim: int = 128  # the global-orientation/camera head
    orient_depth: int = 1
    orient_heads: int = 4
    orient_head_dim: int = 32
    orient_mlp: int = 128
    orient_context: Literal["image", "image+heat"] = "image+heat"

    iterations: int = 3  # what the network was trained with; inference may run 1..8

    @property
    def grid(self) -> tuple[int, int]:
        """(rows, columns) of the patch grid shared by heatmap and image features."""
        width, height = self.heatmap_size
        return height // self.patch_size, width // self.patch_size

    @property
    def reads_images(self) -> bool:
        return self.image_features != "none"

    @property
    def reads_triangulated_joints(self) -> bool:
        """Whether calibrated inputs must carry the triangulated joints in every camera (`ViewGeometry.joints_cam`)."""
        return self.torso_alignment == "posed" or self.triangulated_offsets

    @property
    def token_dim(self) -> int:
        return self.image_dim + self.heat_dim

    def validate(self) -> None:
        """Types and plausible ranges first (a checkpoint's config is user input: a huge size would exhaust
        memory before any other check), then the sizes' agreement."""
        for f in fields(self):
            value = getattr(self, f.name)
            bounds = LIMITS.get(f.name)
            if f.name in ("heatmap_size", "image_size"):
                if not (isinstance(value, tuple) and len(value) == 2 and all(_within(v, 1, 4096, int) for v in value)):
                    raise ValueError(f"{f.name} must be two sizes from 1 to 4096, not {value!r}")
            elif bounds is not None and not (value is None and f.name == "heatmap_window") \
                    and not _within(value, *bounds):
                low, high, kind = bounds
                raise ValueError(f"{f.name} must be a{'n integer' if kind is int else ' number'} from {low} to {high}, "
                                 f"not {value!r}")
            elif f.name in CHOICES and value not in CHOICES[f.name]:
                raise ValueError(f"{f.name} must be one of {', '.join(CHOICES[f.name])}, not {value!r}")
        width, height = self.heatmap_size
        if width % self.patch_size or height % self.patch_size:
            raise ValueError(f"heatmap size {self.heatmap_size} is not a multiple of patch {self.patch_size}")
        if self.image_encoder == "cnn":
            stride = (self.image_size[0] // self.grid[1], self.image_size[1] // self.grid[0])
            if stride[0] != stride[1] or stride[0] not in (4, 8, 16, 32):
                raise ValueError(f"image size {self.image_size} does not give the {self.grid} grid by a stride of "
                                 "4, 8, 16 or 32")
        if self.token_dim % 2:
            raise ValueError("image_dim + heat_dim must be even (sine positional encoding)")
        if self.pose_init == "triangulated" and self.orientation_init != "triangulated":
            raise ValueError("pose_init 'triangulated' needs orientation_init 'triangulated'")
        if self.joint_prior and self.pose_init != "triangulated":
            raise ValueError("joint_prior moves the joints that pose_init 'triangulated' reads the start off")
        for steps in ("start_fit_steps", "start_view_fit_steps", "uncalibrated_fit_steps"):
            if getattr(self, steps) and self.pose_init != "triangulated":
                raise ValueError(f"{steps} moves the closed-form start of pose_init 'triangulated'")
        if self.view_lifter and self.orientation_init != "triangulated":
            raise ValueError("view_lifter gives uncalibrated mode the start that orientation_init 'triangulated' "
                             "reads off the joints")
        if self.heatmap_render == "coarse" and (width > height or (height - width) % 2):
            raise ValueError(f"coarse heatmaps need a crop narrower than high by an even number, not "
                             f"{self.heatmap_size}")

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "HeatFormerConfig":
        data = json.loads(text)
        for key in ("heatmap_size", "image_size"):
            data[key] = tuple(data[key])
        return cls(**data)


def _within(value, low: float, high: float, kind: type = float) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else int):
        return False
    return low <= value <= high


# (low, high, type) of every numeric field: far beyond the official sizes, short of exhausting memory.
DIMENSION = (1, 4096, int)
LIMITS = {"num_joints": (17, 17, int), "patch_size": (1, 256, int), "sigma": (0.01, 100.0, float),
          "heatmap_window": (0.5, 10.0, float), "coarse_grid": (2, 1024, int), "crop_scale": (1.0, 5.0, float),
          "heat_dim": DIMENSION, "heat_depth": (1, 64, int), "heat_heads": (1, 64, int), "heat_head_dim": (1, 512, int),
          "heat_mlp": (1, 16384, int), "image_dim": DIMENSION, "vit_depth": (0, 64, int), "vit_heads": (0, 64, int),
          "vit_mlp_ratio": (0.0, 16.0, float), "vit_drop_path": (0.0, 0.99, float), "decoder_depth": (1, 64, int),
          "decoder_heads": (1, 64, int), "decoder_head_dim": (1, 512, int), "decoder_mlp": (1, 16384, int),
          "decoder_cross_dropout": (0.0, 0.99, float), "orient_dim": DIMENSION, "orient_depth": (1, 64, int),
          "orient_heads": (1, 64, int), "orient_head_dim": (1, 512, int), "orient_mlp": (1, 16384, int),
          "iterations": (1, 8, int), "triangulated_offset_unit": (0.001, 1.0, float),
          "joint_prior": (0, 4096, int), "view_lifter": (0, 4096, int), "start_fit_steps": (0, 10, int),
          "start_view_fit_steps": (0, 10, int), "uncalibrated_fit_steps": (0, 10, int)}
CHOICES = {"heatmap_render": ("direct", "coarse"), "image_encoder": ("cnn", "vit"), "query": ("spatial", "pooled"),
           "orient_context": ("image", "image+heat"), "refine_orientation": (False, True), "orientation_init": ("head", "triangulated"),
           "torso_alignment": ("rest", "posed"), "pose_init": ("mean", "triangulated"),
           "image_features": ("all", "orientation", "none"), "joint_offsets": (False, True),
           "offset_joints": ("all", "above_knees"), "triangulated_offsets": (False, True),
           "iteration_embedding": (False, True), "mode_embedding": (False, True),
           "evidence_scale": (False, True), "step_gate": (False, True)}

COMPACT = HeatFormerConfig()

OFFICIAL = HeatFormerConfig(
    heatmap_size=(192, 256), patch_size=16, sigma=3.0 * 256 / 96, heatmap_render="coarse", coarse_grid=96,
    heat_dim=1024, heat_depth=2, heat_heads=8, heat_head_dim=64, heat_mlp=2048,
    image_encoder="vit", image_size=(192, 256), image_dim=1280, vit_depth=32, vit_heads=16, vit_drop_path=0.55,
    decoder_depth=2, decoder_heads=8, decoder_head_dim=64, decoder_mlp=2048, decoder_cross_dropout=0.5,
    orient_dim=1024, orient_depth=6, orient_heads=8, orient_head_dim=64, orient_mlp=1024, orient_context="image",
)

PRESETS = {"compact": COMPACT, "official": OFFICIAL}


def preset(name: str, **overrides) -> HeatFormerConfig:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; expected one of {', '.join(PRESETS)}")
    return replace(PRESETS[name], **overrides)

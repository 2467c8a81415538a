"""Checkpoints: our own format, and the official HeatFormer's (`model_best_iter3.pth.tar`) mapped onto ours.

Our format is a dict: {"format": "heatformer-studio-checkpoint", "version", "config" (JSON), "state_dict",
"description" (what it was trained on, e.g. synthetic data), "body_model"}. Without a checkpoint the network
has random weights, and everything that shows its output says so.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch

from core.body_model import BodyModel
from core.errors import InputError
from core.files import atomic_path, check_version
from core.model.adafuse import AdaFuse
from core.model.config import COMPACT, OFFICIAL, HeatFormerConfig
from core.model.network import HeatFormer

FORMAT_TAG = "heatformer-studio-checkpoint"
VERSION = 1
UNTRAINED = "random weights (untrained)"
# Where the official code's trainer and scripts keep the network's weights in the file they save.
OFFICIAL_STATE_KEYS = ("model", "state_dict", "model_state_dict")
# The official orientation 6D is read as two stacked rows (its rot6d_to_rotmat_g), the body pose's and ours as
# two interleaved columns: our element i is their element ORIENT_6D_FROM_OFFICIAL[i].
ORIENT_6D_FROM_OFFICIAL = [0, 3, 1, 4, 2, 5]


@dataclass
class MappingReport:
    """What happened to every key of a foreign state dict."""

    mapped: dict[str, str] = field(default_factory=dict)  # theirs -> ours
    unused: dict[str, str] = field(default_factory=dict)  # theirs -> why
    shape_mismatch: dict[str, str] = field(default_factory=dict)  # theirs -> "their shape vs our shape"
    not_filled: list[str] = field(default_factory=list)  # ours that kept their initial values

    def summary(self) -> str:
        lines = [f"{len(self.mapped)} tensors mapped"]
        groups: dict[str, int] = {}
        for key, why in self.unused.items():
            groups[f"{key.split('.')[0]}.* ({why})"] = groups.get(f"{key.split('.')[0]}.* ({why})", 0) + 1
        lines += [f"unused: {name}: {count} tensors" for name, count in groups.items()]
        lines += [f"shape mismatch: {k}: {v}" for k, v in self.shape_mismatch.items()]
        lines += [f"kept initial value: {k}" for k in self.not_filled]
        return "\n".join(lines)


def _stack_rules(theirs: str, ours: str, sublayers: str, hmr2: bool = False) -> list[tuple[str, str]]:
    """Rules for one official transformer stack: `theirs`.<i>.<j> -> `ours`.<i>.<part>, where the j-th sublayer
    of each layer is the character ``sublayers[j]``: a (self-attention), c (cross-attention), m (MLP).
    ``hmr2``: the HMR2.0-style naming of the orientation decoder (fn.to_q, fn.to_out.0, fn.net.*)."""
    rules = []
    for j, kind in enumerate(sublayers):
        head = rf"^{re.escape(theirs)}\.(\d+)\.{j}\."
        if kind == "m":
            net = r"fn\.net" if hmr2 else r"f\.layer"
            rules += [(head + r"norm\.", rf"{ours}.\1.mlp_norm."), (head + net + r"\.0\.", rf"{ours}.\1.mlp.0."),
                      (head + net + r"\.3\.", rf"{ours}.\1.mlp.2.")]
            continue
        name = {"a": "attn", "c": "cross"}[kind]
        rules.append((head + r"norm\.", rf"{ours}.\1.{name}_norm."))
        if hmr2:
            rules += [(head + r"fn\.to_q\.", rf"{ours}.\1.{name}.to_q."),
                      (head + r"fn\.to_out\.0\.", rf"{ours}.\1.{name}.to_out.")]
        else:
            rules += [(head + r"f\.x_to_(q|k|v)\.", rf"{ours}.\1.{name}.to_\2."),
                      (head + r"f\.out_layer\.", rf"{ours}.\1.{name}.to_out.")]
    return rules


# (pattern on the official key, replacement giving ours); first match wins.
OFFICIAL_RULES = [
    (r"^fuse_encoder\.Encoder\.to_token_embedding\.", "heat_encoder.embed."),
    (r"^fuse_encoder\.Encoder\.pos_embedding$", "heat_encoder.position"),
    *_stack_rules("fuse_encoder.Encoder.Transformer.layers", "heat_encoder.blocks", "am"),
    (r"^Decoder\.to_token_embedding\.", "query_embed."),
    *_stack_rules("Decoder.transformer.layers", "decoder", "acm"),
    (r"^pos_embed\.adapt_pos3d\.(0|2)\.", r"position.adapter.\1."),
    (r"^decpose_smpl\.", "pose_head."),
    (r"^decshape_smpl\.", "shape_head."),
    (r"^img_backbone\.", "image_encoder."),
    *_stack_rules("GCEstimator.decoder.transformer.layers", "orientation.blocks", "acm", hmr2=True),
    (r"^GCEstimator\.deccam\.", "orientation.camera."),
    (r"^fuser\.resnet\.", "adafuse.resnet."),  # AdaFuse's 2D network (core.model.adafuse), when built
]
# Fused projections in the HMR2-style orientation decoder, split into our separate q/k/v.
OFFICIAL_SPLITS = [
    (r"^GCEstimator\.decoder\.transformer\.layers\.(\d+)\.0\.fn\.to_qkv\.weight$",
     [r"orientation.blocks.\1.attn.to_q.weight", r"orientation.blocks.\1.attn.to_k.weight",
      r"orientation.blocks.\1.attn.to_v.weight"]),
    (r"^GCEstimator\.decoder\.transformer\.layers\.(\d+)\.1\.fn\.to_kv\.weight$",
     [r"orientation.blocks.\1.cross.to_k.weight", r"orientation.blocks.\1.cross.to_v.weight"]),
]
# The official starting values, kept among SMPL's buffers: mean pose (24 x 6D), mean shape, initial camera.
OFFICIAL_STARTS = ("smpl.init_pose", "smpl.init_shape", "smpl.init_cam")
OFFICIAL_UNUSED = [
    (r"^fuser\.(?!resnet\.)", "AdaFuse's view-weight network and loss constants: unused by the SCORE fusion "
                              "that the official evaluation runs"),
    (r"^smpl\.", "SMPL model data: the body model comes from its own file"),
    (r"^GCEstimator\.decshape\.", "shape from the orientation head is not used, as in the official forward"),
    (r"^GCEstimator\.decoder\.to_token_embedding\.weight$", "multiplies an all-zero token"),
    (r"^discriminator\.", "adversarial pose prior: training only"),
]


def blocks_to_interleaved(axes: int, num_feats: int) -> torch.Tensor:
    """Column order that turns the official sine features (per axis, all sines then all cosines) into ours
    (per axis, sine and cosine interleaved): our column k is their column order[k]."""
    theirs = torch.cat([torch.arange(0, num_feats, 2), torch.arange(1, num_feats, 2)])  # ours at their column j
    per_axis = torch.argsort(theirs)
    return torch.cat([a * num_feats + per_axis for a in range(axes)])


def map_official_state_dict(official: dict[str, torch.Tensor], model: HeatFormer) -> tuple[dict, MappingReport]:
    """Translate official key names and layouts to ours; every official key ends up mapped, unused (with a
    reason) or in shape_mismatch, by name. Two layouts differ and are converted exactly: the orientation 6D
    (see ORIENT_6D_FROM_OFFICIAL) and the order of the positional encoding's sine features. The official
    starting values (SMPL's mean pose and shape and a camera, to which its heads add) become our init_*."""
    ours = model.state_dict()
    report = MappingReport()
    mapped: dict[str, torch.Tensor] = {}

    def put(their_key: str, our_key: str, value: torch.Tensor):
        if our_key not in ours:
            report.unused[their_key] = f"no parameter {our_key} in this configuration"
            return
        target = ours[our_key].shape
        if value.shape != target and value.numel() == ours[our_key].numel() and value.dim() == 4:
            value = value.reshape(target)  # 1x1 convolutions -> linear layers
        if value.shape != target:
            report.shape_mismatch[their_key] = f"{tuple(value.shape)} vs {our_key} {tuple(target)}"
            return
        mapped[our_key] = value
        report.mapped[their_key] = our_key

    for key, value in official.items():
        if key in OFFICIAL_STARTS:
            continue  # below
        if any(re.search(pattern, key) for pattern, _ in OFFICIAL_UNUSED):
            report.unused[key] = next(why for pattern, why in OFFICIAL_UNUSED if re.search(pattern, key))
            continue
        split = next(((p, targets) for p, targets in OFFICIAL_SPLITS if re.search(p, key)), None)
        if split:
            pattern, targets = split
            for part, target in zip(value.chunk(len(targets), dim=0), targets):
                put(key, re.sub(pattern, target, key), part)
            continue
        if key in ("GCEstimator.decoder.to_token_embedding.bias", "GCEstimator.decoder.pos_embedding"):
            continue  # combined below into the orientation query
        if re.match(r"^GCEstimator\.decpose\.(weight|bias)$", key):  # its first 6 outputs: global orientation
            put(key, key.replace("GCEstimator.decpose", "orientation.orient"), value[:6][ORIENT_6D_FROM_OFFICIAL])
            continue
        if key == "pos_embed.adapt_pos3d.0.weight" and value.dim() == 4:
            value = value.flatten(1)[:, blocks_to_interleaved(3, value.shape[1] // 3)]
        rule = next(((p, r) for p, r in OFFICIAL_RULES if re.search(p, key)), None)
        if rule is None:
            report.unused[key] = "no counterpart in this implementation"
            continue
        put(key, re.sub(rule[0], rule[1], key), value)

    bias, position = (official.get(k) for k in ("GCEstimator.decoder.to_token_embedding.bias",
                                                "GCEstimator.decoder.pos_embedding"))
    if bias is not None and position is not None:
        put("GCEstimator.decoder.pos_embedding", "orientation.query", (bias + position.reshape(-1)).reshape(1, 1, -1))
        report.mapped["GCEstimator.decoder.to_token_embedding.bias"] = "orientation.query"
    pose, shape, cam = (official.get(k) for k in OFFICIAL_STARTS)
    if pose is not None:  # (24, 6): the global orientation's 6D, read as the orientation head's, then the body's
        put("smpl.init_pose", "init_orient", pose.reshape(24, 6)[0][ORIENT_6D_FROM_OFFICIAL])
        put("smpl.init_pose", "init_pose", pose.reshape(24, 6)[1:])
        report.mapped["smpl.init_pose"] = "init_orient, init_pose"
    if shape is not None:
        put("smpl.init_shape", "init_betas", shape.reshape(-1))
    if cam is not None:
        put("smpl.init_cam", "init_cam", cam.reshape(-1))
    report.not_filled = sorted(k for k in ours if k not in mapped)
    return mapped, report


def file_identity(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return f"{path.name}@{digest.hexdigest()[:12]}"


def _read(path: Path) -> dict:
    if not path.exists():
        raise InputError(path, "checkpoint file does not exist")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        detail = (str(exc).splitlines() or ["empty or truncated file"])[0]
        raise InputError(path, f"cannot read checkpoint ({type(exc).__name__}: {detail})") from exc
    if not isinstance(data, dict):
        raise InputError(path, "not a checkpoint: expected a dict with a state_dict")
    return data


def adafuse_for(state: dict[str, torch.Tensor]) -> AdaFuse | None:
    """The official 2D estimator with as many ResNet blocks and outputs as the checkpoint's `fuser.resnet`."""
    blocks = [len({m.group(1) for k in state if (m := re.match(rf"^fuser\.resnet\.layer{n}\.(\d+)\.", k))})
              for n in range(1, 5)]
    head = state.get("fuser.resnet.final_layer.weight")
    if head is None or not all(blocks):
        return None
    return AdaFuse(tuple(blocks), head.shape[0]).eval()


def official_state_dict(data: dict, path: Path) -> dict[str, torch.Tensor]:
    """The network's weights in a file the official code wrote: {"model": ...} from its trainer, or the state
    dict itself; refused by name when it is neither."""
    for key in OFFICIAL_STATE_KEYS:
        if isinstance(data.get(key), dict):
            data = data[key]
            break
    if not any(isinstance(k, str) and k.startswith(("fuse_encoder.", "Decoder.", "decpose_smpl.")) for k in data):
        raise InputError(path, "neither a HeatFormer Studio checkpoint nor an official HeatFormer one (no "
                               f"fuse_encoder/Decoder keys at the top or under {', '.join(OFFICIAL_STATE_KEYS)})")
    return data


def load_model(path: str | Path | None, body: BodyModel, config: HeatFormerConfig = COMPACT,
               official: HeatFormerConfig = OFFICIAL, official_2d: bool = False) -> HeatFormer:
    """A HeatFormer ready for inference. ``path`` None gives random weights of ``config`` (``model.identity``
    says so); our checkpoints restore their own config; official ones are mapped onto ``official`` (the
    official sizes; the parity test passes a reduced copy). ``official_2d``: the 2D evidence is made from the
    images by the checkpoint's own AdaFuse, which only official checkpoints carry."""
    if path is None:
        if official_2d:
            raise InputError(None, "the official 2D network comes with an official checkpoint: none was given")
        model = HeatFormer(config, body)
        model.identity, model.trained, model.description = UNTRAINED, False, UNTRAINED
        return model.eval()
    path = Path(path)
    data = _read(path)
    if data.get("format") == FORMAT_TAG:
        check_version(path, data.get("version", 0), VERSION, "checkpoint")
        try:
            model = HeatFormer(HeatFormerConfig.from_json(data["config"]), body)
        except (KeyError, TypeError, ValueError, RecursionError) as exc:
            raise InputError(path, f"checkpoint config is unusable ({exc})") from exc
        state = data.get("state_dict", {})
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise InputError(path, "the checkpoint's state_dict is not a dict of tensors")
        try:
            result = model.load_state_dict(state, strict=False)
        except RuntimeError as exc:  # tensors of the wrong shape
            raise InputError(path, f"checkpoint does not fit the network: {str(exc).splitlines()[-1].strip()}") from exc
        problems = [f"missing {k}" for k in result.missing_keys] + [f"unexpected {k}" for k in result.unexpected_keys]
        if problems:
            raise InputError(path, "checkpoint does not fit the network: " + "; ".join(problems[:8]))
        model.description = str(data.get("description", ""))
    else:
        state = official_state_dict(data, path)
        model = HeatFormer(official, body)
        model.adafuse = adafuse_for(state)
        mapped, report = map_official_state_dict(state, model)
        if report.shape_mismatch:
            raise InputError(path, "official checkpoint does not fit: " + "; ".join(
                f"{k}: {v}" for k, v in list(report.shape_mismatch.items())[:8]))
        if report.not_filled:
            raise InputError(path, "official checkpoint lacks " + ", ".join(report.not_filled[:8]))
        model.load_state_dict(mapped, strict=False)
        model.mapping_report = report
        model.description = "official HeatFormer checkpoint"
    broken = [name for name, value in model.state_dict().items()
              if value.is_floating_point() and not torch.isfinite(value).all()]
    if broken:
        raise InputError(path, f"checkpoint weights contain NaN or infinity: {', '.join(broken[:4])}")
    if official_2d and model.adafuse is None:
        raise InputError(path, "this checkpoint has no official 2D network (AdaFuse's fuser.resnet.* weights): "
                               "the 2D evidence must come from the data")
    model.official_2d = official_2d
    model.identity, model.trained = file_identity(path), True
    return model.eval()


def save_checkpoint(model: HeatFormer, path: str | Path, description: str, extra: dict | None = None) -> None:
    """Write our format atomically. ``description`` says what the weights were trained on."""
    data = {"format": FORMAT_TAG, "version": VERSION, "config": model.config.to_json(),
            "state_dict": model.state_dict(), "description": description,
            "body_model": model.body.identity, **(extra or {})}
    with atomic_path(path) as tmp:
        torch.save(data, tmp)

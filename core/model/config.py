"""`HeatFormerConfig`: every size of the network in one place, with the two presets.

`compact` is ours: small enough to run 4 views x 3 iterations in tens of milliseconds on a 2-core CPU.
`official` has the dimensions of the official code (kyotovision-public/HeatFormer), so its checkpoints load.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
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
    def token_dim(self) -> int:
        return self.image_dim + self.heat_dim

    def validate(self) -> None:
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

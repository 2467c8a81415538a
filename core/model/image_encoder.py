"""Image features on the same patch grid as the heatmap features.

`ConvImageEncoder` (compact preset): a few strided convolutions, cheap on a CPU.
`ViTImageEncoder` (official preset): the ViT of HMR2.0 / the official code (patch 16, padding 2), with the
timm-style parameter names that the official checkpoints use (patch_embed.proj, blocks.i.attn.qkv, ...).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from core.model.config import HeatFormerConfig

IMAGE_MEAN = (0.485, 0.456, 0.406)  # ImageNet statistics, which both encoders expect
IMAGE_STD = (0.229, 0.224, 0.225)


class ConvImageEncoder(nn.Module):
    def __init__(self, config: HeatFormerConfig):
        super().__init__()
        stride = config.image_size[0] // config.grid[1]
        stages = int(math.log2(stride))
        widths = [3] + [min(config.image_dim, 16 * 2 ** i) for i in range(stages - 1)] + [config.image_dim]
        layers = []
        for i in range(stages):
            layers += [nn.Conv2d(widths[i], widths[i + 1], 3, stride=2, padding=1), nn.BatchNorm2d(widths[i + 1]),
                       nn.ReLU(inplace=True)]
        self.net = nn.Sequential(*layers[:-1])  # no ReLU on the output features

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) normalised images -> (B, C, H/s, W/s)."""
        return self.net(images)


class ViTAttention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv(x).unflatten(-1, (3, self.heads, -1)).permute(2, 0, 3, 1, 4)
        return self.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).flatten(2))


class ViTMlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


def drop_path(x: torch.Tensor, rate: float, training: bool) -> torch.Tensor:
    """Stochastic depth: in training, each sample's residual branch is dropped with probability ``rate`` (the
    rest scaled up to keep the expectation)."""
    if not training or rate == 0.0:
        return x
    keep = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(1.0 - rate)
    return x * keep / (1.0 - rate)


class ViTBlock(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: float, drop_path: float = 0.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = ViTAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = ViTMlp(dim, int(dim * mlp_ratio))
        self.drop_path = drop_path

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + drop_path(self.attn(self.norm1(x)), self.drop_path, self.training)
        return x + drop_path(self.mlp(self.norm2(x)), self.drop_path, self.training)


class PatchEmbed(nn.Module):
    def __init__(self, dim: int, patch: int):
        super().__init__()
        self.proj = nn.Conv2d(3, dim, kernel_size=patch, stride=patch, padding=2)


class ViTImageEncoder(nn.Module):
    def __init__(self, config: HeatFormerConfig):
        super().__init__()
        dim, rows, cols = config.image_dim, *config.grid
        self.patch_embed = PatchEmbed(dim, config.image_size[0] // cols)
        # One extra leading position, as in the pretrained weights (a class token's slot, added to all).
        self.pos_embed = nn.Parameter(torch.zeros(1, rows * cols + 1, dim))
        depth = config.vit_depth  # the official decay rule: from 0 at the first block to the rate at the last
        rates = [config.vit_drop_path * i / max(depth - 1, 1) for i in range(depth)]
        self.blocks = nn.ModuleList(ViTBlock(dim, config.vit_heads, config.vit_mlp_ratio, rate) for rate in rates)
        self.last_norm = nn.LayerNorm(dim, eps=1e-6)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed.proj(images)
        b, c, h, w = x.shape
        x = x.flatten(2).transpose(1, 2) + self.pos_embed[:, 1:] + self.pos_embed[:, :1]
        for block in self.blocks:
            x = block(x)
        return self.last_norm(x).transpose(1, 2).reshape(b, c, h, w)


def build_image_encoder(config: HeatFormerConfig) -> nn.Module:
    return ViTImageEncoder(config) if config.image_encoder == "vit" else ConvImageEncoder(config)

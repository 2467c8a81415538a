"""HeatEncoder: turns a (J, H, W) stack of joint heatmaps into a (C, H/p, W/p) feature map.

At every patch position the J joint patches (each p x p values, flattened) and one extra all-zero token form a
sequence; a transformer encoder attends across joints, and the extra token's output is that position's feature.
"""
from __future__ import annotations

import torch
from torch import nn

from core.model.config import HeatFormerConfig
from core.model.layers import Block


class HeatEncoder(nn.Module):
    def __init__(self, config: HeatFormerConfig):
        super().__init__()
        p = config.patch_size
        self.patch = p
        self.embed = nn.Linear(p * p, config.heat_dim)
        self.position = nn.Parameter(torch.randn(1, config.num_joints + 1, config.heat_dim) * 0.02)
        self.blocks = nn.ModuleList(Block(config.heat_dim, config.heat_heads, config.heat_head_dim, config.heat_mlp)
                                    for _ in range(config.heat_depth))

    def forward(self, heatmaps: torch.Tensor) -> torch.Tensor:
        """heatmaps (B, J, H, W) -> features (B, C, H/p, W/p)."""
        b, j, h, w = heatmaps.shape
        p = self.patch
        rows, cols = h // p, w // p
        # (B, J, rows, p, cols, p) -> (B * rows * cols, J, p * p)
        patches = heatmaps.reshape(b, j, rows, p, cols, p).permute(0, 2, 4, 1, 3, 5).reshape(b * rows * cols, j, p * p)
        tokens = torch.cat([patches, patches.new_zeros(patches.shape[0], 1, p * p)], dim=1)
        x = self.embed(tokens) + self.position
        for block in self.blocks[:-1]:
            x = block(x)
        x = self.blocks[-1](x, outputs=slice(-1, None))  # the extra token's output is all that is kept
        return x[:, 0].reshape(b, rows, cols, -1).permute(0, 3, 1, 2)

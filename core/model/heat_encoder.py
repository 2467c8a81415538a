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
        grid = heatmaps.reshape(b, j, rows, p, cols, p)
        if len(self.blocks) == 1:
            x = self._single_block(grid)
        else:
            patches = grid.permute(0, 2, 4, 1, 3, 5).reshape(b * rows * cols, j, p * p)  # a sequence per cell
            tokens = torch.cat([patches, patches.new_zeros(patches.shape[0], 1, p * p)], dim=1)
            x = self.embed(tokens) + self.position
            for block in self.blocks[:-1]:
                x = block(x)
            x = self.blocks[-1](x, outputs=slice(-1, None))  # the extra token's output is all that is kept
        return x[:, 0].reshape(b, rows, cols, -1).permute(0, 3, 1, 2)

    def _single_block(self, grid: torch.Tensor) -> torch.Tensor:
        """The extra token's output (B * rows * cols, 1, C) of a one-block encoder; grid (B, J, rows, p, cols, p).

        An all-zero patch embeds to the bias plus its joint's position, the same at every cell, and so do its
        normed token, key and value: they are made once, and only patches with signal are embedded. Rendered
        heatmaps are zero outside a few patches around each joint (see `HeatFormerConfig.heatmap_window`), so this
        skips most of the encoder's work; the result equals the dense computation up to float rounding."""
        block, attention = self.blocks[0], self.blocks[0].attn
        b, j, rows, p, cols, _ = grid.shape
        n = b * rows * cols
        empty = self.embed.bias + self.position[0]  # (J + 1, C): each position's token for an all-zero patch
        empty_normed = block.attn_norm(empty)
        keys = attention.to_k(empty_normed).expand(n, -1, -1)
        values = attention.to_v(empty_normed).expand(n, -1, -1)
        signal = grid.ne(0).any(5).any(3)  # (B, J, rows, cols)
        image, joint, row, col = signal.nonzero(as_tuple=True)
        if len(joint):
            patches = grid[image, joint, row, :, col, :].flatten(1)  # (M, p * p), only those with signal
            normed = block.attn_norm(self.embed(patches) + self.position[0, joint])
            cell = (image * rows + row) * cols + col
            keys = keys.index_put((cell, joint), attention.to_k(normed))
            values = values.index_put((cell, joint), attention.to_v(normed))
        extra = empty[j:].expand(n, 1, -1)  # the extra token is an all-zero patch too
        return block(extra, self_context=(attention.split_heads(keys), attention.split_heads(values)))

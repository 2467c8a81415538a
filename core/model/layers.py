"""Transformer pieces shared by the HeatEncoder, the decoder and the orientation head: pre-LayerNorm blocks with
optional cross-attention, and the 3D sine positional encoding over (view, row, column); and the plain MLP of the
start's learnt parts."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class Attention(nn.Module):
    """Multi-head attention; queries from x, keys/values from ``context`` (x itself when None)."""

    def __init__(self, dim: int, heads: int, head_dim: int, context_dim: int | None = None, dropout: float = 0.0):
        super().__init__()
        inner = heads * head_dim
        context_dim = context_dim or dim
        self.heads = heads
        self.dropout = dropout  # on the attention weights and on the output, in training only
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_k = nn.Linear(context_dim, inner, bias=False)
        self.to_v = nn.Linear(context_dim, inner, bias=False)
        self.to_out = nn.Linear(inner, dim)

    def split_heads(self, t: torch.Tensor) -> torch.Tensor:  # (B, N, H*D) -> (B, H, N, D)
        return t.unflatten(-1, (self.heads, -1)).transpose(1, 2)

    def keys_values(self, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The context's keys and values, split into heads: made once for a context that several calls share
        (the decoder's keys are the same at every iteration)."""
        return self.split_heads(self.to_k(context)), self.split_heads(self.to_v(context))

    def forward(self, x: torch.Tensor, context: torch.Tensor | tuple[torch.Tensor, torch.Tensor] | None = None
                ) -> torch.Tensor:
        """``context``: the tokens to attend to (x itself when None), or their `keys_values`."""
        keys, values = context if isinstance(context, tuple) else self.keys_values(x if context is None else context)
        dropout = self.dropout if self.training else 0.0
        out = F.scaled_dot_product_attention(self.split_heads(self.to_q(x)), keys, values, dropout_p=dropout)
        out = self.to_out(out.transpose(1, 2).flatten(2))
        return F.dropout(out, dropout) if dropout else out


class Block(nn.Module):
    """Pre-LN residual block: self-attention, optional cross-attention, GELU MLP."""

    def __init__(self, dim: int, heads: int, head_dim: int, mlp_dim: int, context_dim: int | None = None,
                 cross: bool = False, cross_dropout: float = 0.0):
        super().__init__()
        self.attn_norm = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, head_dim)
        self.cross_norm = nn.LayerNorm(dim) if cross else None
        self.cross = Attention(dim, heads, head_dim, context_dim, cross_dropout) if cross else None
        self.mlp_norm = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_dim), nn.GELU(), nn.Linear(mlp_dim, dim))

    def forward(self, x: torch.Tensor, context: torch.Tensor | tuple[torch.Tensor, torch.Tensor] | None = None,
                outputs: slice | None = None, self_context: tuple[torch.Tensor, torch.Tensor] | None = None
                ) -> torch.Tensor:
        """x (B, N, dim) -> (B, N, dim); ``context`` for the cross-attention, as `Attention` takes it. With
        ``outputs``, only those tokens' rows (their self-attention still reads every token), which is all a
        caller that keeps one token of the last block needs. With ``self_context``, the self-attention's keys and
        values, made by the caller from the normed tokens (x then holds only the tokens whose outputs it wants)."""
        normed = self.attn_norm(x)
        if self_context is not None:
            x = x + self.attn(normed, self_context)
        elif outputs is None:
            x = x + self.attn(normed)
        else:
            x = x[:, outputs] + self.attn(normed[:, outputs], normed)
        if self.cross is not None:
            x = x + self.cross(self.cross_norm(x), context)
        return x + self.mlp(self.mlp_norm(x))


def sine_features(positions: torch.Tensor, num_feats: int, temperature: float = 10000.0) -> torch.Tensor:
    """(..., ) positions -> (..., num_feats) interleaved sin/cos features (DETR's scheme)."""
    index = torch.arange(num_feats, device=positions.device, dtype=torch.float32)
    freq = temperature ** (2 * torch.div(index, 2, rounding_mode="floor") / num_feats)
    angles = positions[..., None] / freq
    return torch.stack([angles[..., 0::2].sin(), angles[..., 1::2].cos()], dim=-1).flatten(-2)


class PositionalEncoding3D(nn.Module):
    """Sine features of (view, row, column), each normalised to (0, 2 pi], mixed by a learned 2-layer MLP into the
    token dimension (as the official code's 1x1 convolutions do)."""

    def __init__(self, dim: int):
        super().__init__()
        self.num_feats = dim // 2
        self.adapter = nn.Sequential(nn.Linear(3 * self.num_feats, 4 * dim), nn.ReLU(), nn.Linear(4 * dim, dim))

    def forward(self, views: int, rows: int, columns: int, device: torch.device) -> torch.Tensor:
        """(views * rows * columns, dim), ordered view-major then row then column."""
        def axis(n):
            return torch.arange(1, n + 1, device=device, dtype=torch.float32) / (n + 1e-6) * 2 * math.pi

        v, r, c = torch.meshgrid(axis(views), axis(rows), axis(columns), indexing="ij")
        feats = torch.cat([sine_features(t, self.num_feats) for t in (v, r, c)], dim=-1)
        return self.adapter(feats.reshape(-1, feats.shape[-1]))


def mlp(inputs: int, width: int, depth: int, outputs: int) -> nn.Sequential:
    """``depth`` hidden layers of ``width`` with GELU, then a linear output: the start's small learnt parts
    (core.model.joint_prior, core.model.view_lifter)."""
    layers: list[nn.Module] = []
    size = inputs
    for _ in range(depth):
        layers += [nn.Linear(size, width), nn.GELU()]
        size = width
    layers.append(nn.Linear(size, outputs))
    return nn.Sequential(*layers)

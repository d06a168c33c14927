"""Cross-modal predictor P(a->b): from modality a's context tokens to modality b's target tokens."""

from __future__ import annotations

import numpy as np
import torch
from timm.models.vision_transformer import Block
from torch import nn

from xjepa_kit.models.encoder import gather_tokens


def sincos_pos_embed(dim: int, grid: int) -> torch.Tensor:
    """Fixed 2-D sine-cosine positional embedding [grid*grid, dim] (as in MAE / I-JEPA predictors)."""
    assert dim % 4 == 0, "predictor width must be a multiple of 4"
    omega = 1.0 / 10000 ** (np.arange(dim // 4, dtype=np.float64) / (dim / 4))
    ys, xs = np.meshgrid(np.arange(grid), np.arange(grid), indexing="ij")
    parts = []
    for coord in (ys.ravel(), xs.ravel()):
        out = np.einsum("n,d->nd", coord, omega)
        parts += [np.sin(out), np.cos(out)]
    return torch.from_numpy(np.concatenate(parts, axis=1)).float()


class CrossAttention(nn.Module):
    """Pre-norm cross-attention + MLP: queries [B, K, D] attend to ``memory`` [B, L, D]."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.norm_q, self.norm_kv, self.norm_mlp = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, num_heads, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        kv = self.norm_kv(memory)
        x = x + self.attn(self.norm_q(x), kv, kv, need_weights=False)[0]
        return x + self.mlp(self.norm_mlp(x))


class CrossModalPredictor(nn.Module):
    """Narrow transformer over [context tokens, shared queries, mask tokens at target positions].

    ``forward(ctx [B, Kc, De], ctx_idx [B, Kc], tgt_idx [B, M, Kt], queries [Q, Dp],
    target_ctx [B, Kc, De] | None) -> predictions [B*M, Kt, De]`` (one row per target block).
    By default all M blocks are predicted in one sequence per sample (mask tokens carry only
    positions, so blocks learn nothing from each other) instead of repeating the context M times.
    """

    def __init__(self, encoder_dim: int, grid: int, embed_dim: int = 96, depth: int = 2, num_heads: int = 3,
                 cross_attention: bool = False, per_block: bool = False) -> None:
        super().__init__()
        self.per_block = per_block  # True: one sequence per target block (I-JEPA); False: all blocks at once
        self.proj_in = nn.Linear(encoder_dim, embed_dim)
        self.register_buffer("pos", sincos_pos_embed(embed_dim, grid), persistent=False)
        self.mask_token = nn.Parameter(torch.zeros(embed_dim))
        self.target_modality = nn.Parameter(torch.zeros(embed_dim))  # which modality to predict
        self.blocks = nn.Sequential(*[Block(embed_dim, num_heads, qkv_bias=True) for _ in range(depth)])
        self.norm = nn.LayerNorm(embed_dim)
        self.cross = CrossAttention(embed_dim, num_heads) if cross_attention else None
        self.proj_target_ctx = nn.Linear(encoder_dim, embed_dim) if cross_attention else None
        self.proj_out = nn.Linear(embed_dim, encoder_dim)
        nn.init.trunc_normal_(self.mask_token, std=0.02)
        nn.init.trunc_normal_(self.target_modality, std=0.02)

    def forward(self, ctx: torch.Tensor, ctx_idx: torch.Tensor, tgt_idx: torch.Tensor,
                queries: torch.Tensor | None, target_ctx: torch.Tensor | None = None) -> torch.Tensor:
        b, m, kt = tgt_idx.shape
        pos = self.pos.to(ctx.dtype).unsqueeze(0).expand(b, -1, -1)
        x = self.proj_in(ctx) + gather_tokens(pos, ctx_idx)                    # [B, Kc, Dp]
        mask = self.mask_token + self.target_modality + gather_tokens(pos, tgt_idx.reshape(b, m * kt))
        rows, k = (b * m, kt) if self.per_block else (b, m * kt)                 # sequences, mask tokens each
        if self.per_block:  # the context is repeated once per target block, as I-JEPA does
            x, mask = x.repeat_interleave(m, dim=0), mask.reshape(b * m, kt, -1)
        parts = [x] + ([queries.unsqueeze(0).expand(rows, -1, -1)] if queries is not None else []) + [mask]
        h = self.norm(self.blocks(torch.cat(parts, dim=1)))[:, -k:]             # [rows, k, Dp]
        if self.cross is not None and target_ctx is not None:
            mem = self.proj_target_ctx(target_ctx) + gather_tokens(pos, ctx_idx)
            h = self.cross(h, mem.repeat_interleave(m, dim=0) if self.per_block else mem)
        return self.proj_out(h).reshape(b * m, kt, -1)

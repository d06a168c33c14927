"""AdamW with decoupled parameter groups and the step schedules (DESIGN 6): warm-up + cosine learning rate,
cosine weight decay, linear EMA momentum."""

from __future__ import annotations

import math

import torch
from torch import nn

from xjepa_kit.config import Config


def cosine(start: float, end: float, t: float) -> float:
    """Cosine interpolation from ``start`` (t=0) to ``end`` (t=1)."""
    return end + (start - end) * 0.5 * (1 + math.cos(math.pi * min(max(t, 0.0), 1.0)))


def schedules(cfg: Config, step: int) -> tuple[float, float, float]:
    """(learning rate, weight decay, EMA momentum) at ``step``: warm-up + cosine, cosine, linear."""
    t = cfg.train
    if step < t.warmup_steps:
        lr = t.lr * (step + 1) / t.warmup_steps
    else:
        lr = cosine(t.lr, t.min_lr, (step - t.warmup_steps) / max(t.steps - t.warmup_steps, 1))
    progress = step / max(t.steps, 1)
    wd = cosine(t.weight_decay[0], t.weight_decay[1], progress)
    ema = t.ema[0] + (t.ema[1] - t.ema[0]) * progress
    return lr, wd, ema


def param_groups(model: nn.Module) -> list[dict]:
    """Weight decay on matrices only; none on biases, norms, positional embeddings, queries, tokens."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim <= 1 or "pos" in name or "queries" in name or "token" in name else decay).append(p)
    return [{"params": decay, "weight_decay": 0.0}, {"params": no_decay, "weight_decay": 0.0}]


def build_optimizer(model: nn.Module, cfg: Config) -> torch.optim.AdamW:
    """AdamW over :func:`param_groups`, fused into one kernel per step (CUDA and CPU)."""
    fused = next(model.parameters()).device.type in ("cuda", "cpu")
    return torch.optim.AdamW(param_groups(model), lr=cfg.train.lr, betas=(0.9, 0.95), fused=fused)

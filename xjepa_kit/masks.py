"""Multi-block masks (I-JEPA) made in the collate function, shared by both modalities.

Per batch, block sizes are drawn once (as I-JEPA does, so masks stack without padding); per
sample, positions are drawn: ``num_targets`` target blocks and one context block with the
target tokens removed. Both modalities use the same positions (their grids are co-registered).
Masks are seeded by (seed, step, rank), so a resumed run sees exactly the same masks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import default_collate


@dataclass
class BlockMasks:
    """``context`` long [B, Kc] and ``targets`` long [B, M, Kt] token indices into the H*W grid."""

    context: torch.Tensor
    targets: torch.Tensor


def _block_size(rng: np.random.Generator, grid: int, scale: tuple[float, float],
                aspect: tuple[float, float]) -> tuple[int, int]:
    s = rng.uniform(*scale)
    a = math.exp(rng.uniform(math.log(aspect[0]), math.log(aspect[1])))
    n = s * grid * grid
    h = max(1, min(grid, round(math.sqrt(n * a))))
    w = max(1, min(grid, round(math.sqrt(n / a))))
    return h, w


def _block(rng: np.random.Generator, grid: int, h: int, w: int) -> np.ndarray:
    top, left = rng.integers(0, grid - h + 1), rng.integers(0, grid - w + 1)
    rows, cols = np.meshgrid(np.arange(top, top + h), np.arange(left, left + w), indexing="ij")
    return (rows * grid + cols).ravel()


def sample_masks(rng: np.random.Generator, batch: int, grid: int, num_targets: int = 4,
                 target_scale=(0.15, 0.2), target_aspect=(0.75, 1.5), context_scale=(0.85, 1.0),
                 min_keep: int = 4) -> BlockMasks:
    """Masks for a batch on a ``grid`` x ``grid`` token grid (see module docstring)."""
    th, tw = _block_size(rng, grid, tuple(target_scale), tuple(target_aspect))
    ch, cw = _block_size(rng, grid, tuple(context_scale), (1.0, 1.0))
    targets = np.empty((batch, num_targets, th * tw), np.int64)
    contexts = []
    for b in range(batch):
        for _ in range(20):  # redraw if the targets leave too little context
            blocks = [_block(rng, grid, th, tw) for _ in range(num_targets)]
            ctx = np.setdiff1d(_block(rng, grid, ch, cw), np.concatenate(blocks))
            if len(ctx) >= min_keep:
                break
        else:  # fall back: context = everything not in a target
            ctx = np.setdiff1d(np.arange(grid * grid), np.concatenate(blocks))
        targets[b] = np.stack(blocks)
        contexts.append(ctx)
    keep = max(min(len(c) for c in contexts), 1)
    context = np.stack([np.sort(rng.choice(c, size=keep, replace=False)) for c in contexts])
    return BlockMasks(torch.from_numpy(context), torch.from_numpy(targets))


class MaskCollator:
    """Collate samples into a batch and add ``batch["masks"]`` (:class:`BlockMasks`).

    Samples may carry ``"_step"`` (from :class:`xjepa_kit.train_data.StepBatchSampler`); masks are
    then seeded by (seed, step, rank). ``None`` samples (skipped bad files) are dropped.
    """

    def __init__(self, grid: int, seed: int = 0, rank: int = 0, num_targets: int = 4,
                 target_scale=(0.15, 0.2), target_aspect=(0.75, 1.5), context_scale=(0.85, 1.0),
                 min_keep: int = 4, with_masks: bool = True) -> None:
        self.grid, self.seed, self.rank, self.with_masks = grid, seed, rank, with_masks
        self.kw = dict(num_targets=num_targets, target_scale=target_scale, target_aspect=target_aspect,
                       context_scale=context_scale, min_keep=min_keep)
        self._calls = 0

    def __call__(self, items: list) -> dict:
        items = [it for it in items if it is not None]
        if not items:
            return {}
        step = items[0].get("_step", self._calls)
        self._calls += 1
        batch = default_collate([{k: v for k, v in it.items() if k != "_step"} for it in items])
        if self.with_masks:
            rng = np.random.default_rng((self.seed, int(step), self.rank))
            batch["masks"] = sample_masks(rng, len(items), self.grid, **self.kw)
        batch["step"] = int(step)
        return batch

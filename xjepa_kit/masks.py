"""Multi-block masks (I-JEPA) made in the collate function, shared by both modalities.

Per batch, block sizes are drawn once (as I-JEPA does, so masks stack without padding); per
sample, positions are drawn: ``num_targets`` target blocks and one context block with the
target tokens removed. Both modalities use the same positions (their grids are co-registered).
Masks are seeded by (seed, step, rank), so a resumed run sees exactly the same masks. Every sample keeps at
least ``min_keep`` context tokens (redrawn otherwise; after 20 tries the context is everything outside the
targets). Block sides are whole tokens, so on BigEarthNet's 8 x 8 grid the drawn scales are quantised: target
blocks of 9, 12 or 16 tokens (0.14, 0.19, 0.25 of the grid) and context blocks of 7 x 7 or 8 x 8 (0.77, 1.0).

With ``fixed_shapes`` every batch has the same token counts: target blocks of one area (the
rectangles of that area inside the aspect range, see :func:`fixed_target_shapes`) and exactly
``context_tokens`` context tokens per sample (samples with fewer are redrawn). I-JEPA's own
sampler changes both counts from batch to batch, which makes ``torch.compile`` recompile or fall
back to dynamic shapes; fixed counts let it (and CUDA graphs) compile the step once.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import default_collate

from xjepa_kit.errors import XJepaError


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


def fixed_target_shapes(grid: int, scale: tuple[float, float] = (0.15, 0.2),
                        aspect: tuple[float, float] = (0.75, 1.5)) -> list[tuple[int, int]]:
    """Target block shapes (h, w) of one common area, for fixed-shape masks.

    Among the areas inside ``scale`` x grid**2 whose rectangles fit the aspect range, the area with
    the most rectangle shapes wins (ties: nearest the middle of the range); with none inside the
    range, the fitting area nearest the middle. Grid 8 -> [(3, 4), (4, 3)] (12 tokens).
    """
    lo, hi = scale[0] * grid * grid, scale[1] * grid * grid
    by_area: dict[int, list[tuple[int, int]]] = {}
    for h in range(1, grid + 1):
        for w in range(1, grid + 1):
            if aspect[0] - 1e-9 <= h / w <= aspect[1] + 1e-9:
                by_area.setdefault(h * w, []).append((h, w))
    mid = (lo + hi) / 2
    inside = [a for a in by_area if lo <= a <= hi]
    area = max(inside, key=lambda a: (len(by_area[a]), -abs(a - mid))) if inside else \
        min(by_area, key=lambda a: abs(a - mid))
    return by_area[area]


@functools.lru_cache(maxsize=32)
def auto_context_tokens(grid: int, num_targets: int = 4, scale: tuple[float, float] = (0.15, 0.2),
                        aspect: tuple[float, float] = (0.75, 1.5),
                        context_scale: tuple[float, float] = (0.85, 1.0)) -> int:
    """Context count for fixed-shape masks: the 10th percentile of the per-sample context sizes.

    Computed from 2,000 deterministic draws (seed 0), so about one sample in ten is redrawn. Grid 8
    with the I-JEPA defaults -> 20 tokens (the variable sampler's batch of 32 keeps a median 21).
    """
    rng = np.random.default_rng(0)
    shapes = fixed_target_shapes(grid, scale, aspect)
    sizes = []
    for _ in range(2000):
        th, tw = shapes[rng.integers(len(shapes))]
        ch, cw = _block_size(rng, grid, tuple(context_scale), (1.0, 1.0))
        blocks = np.concatenate([_block(rng, grid, th, tw) for _ in range(num_targets)])
        sizes.append(len(np.setdiff1d(_block(rng, grid, ch, cw), blocks)))
    return max(1, int(np.percentile(sizes, 10)))


def sample_masks(rng: np.random.Generator, batch: int, grid: int, num_targets: int = 4,
                 target_scale=(0.15, 0.2), target_aspect=(0.75, 1.5), context_scale=(0.85, 1.0),
                 min_keep: int = 4, fixed_shapes: bool = False, context_tokens: int = 0) -> BlockMasks:
    """Masks for a batch on a ``grid`` x ``grid`` token grid (see module docstring).

    ``context`` [B, Kc], ``targets`` [B, M, Kt]; with ``fixed_shapes`` Kt and Kc are the same for
    every batch (``context_tokens=0``: :func:`auto_context_tokens`).
    """
    if fixed_shapes:
        shapes = fixed_target_shapes(grid, tuple(target_scale), tuple(target_aspect))
        th, tw = shapes[rng.integers(len(shapes))]
        need = context_tokens or auto_context_tokens(grid, num_targets, tuple(target_scale), tuple(target_aspect),
                                                     tuple(context_scale))
    else:
        th, tw = _block_size(rng, grid, tuple(target_scale), tuple(target_aspect))
        need = max(1, min_keep)
    ch, cw = _block_size(rng, grid, tuple(context_scale), (1.0, 1.0))
    targets = np.empty((batch, num_targets, th * tw), np.int64)
    contexts = []
    for b in range(batch):
        for attempt in range(200):  # redraw if the targets leave too little context
            blocks = [_block(rng, grid, th, tw) for _ in range(num_targets)]
            if attempt < 20:
                ctx = np.setdiff1d(_block(rng, grid, ch, cw), np.concatenate(blocks))
            else:  # then: context = everything not in a target
                ctx = np.setdiff1d(np.arange(grid * grid), np.concatenate(blocks))
            if len(ctx) >= need:
                break
        else:
            key, fix = ("mask.context_tokens", "lower mask.context_tokens (0 picks it automatically)") if fixed_shapes \
                else ("mask.min_keep", "lower mask.min_keep, mask.num_targets or mask.target_scale")
            raise XJepaError(f"{key}={need} context tokens could not be drawn around {num_targets} target blocks "
                             f"of {th}x{tw} on a {grid}x{grid} grid in 200 tries; {fix}")
        targets[b] = np.stack(blocks)
        contexts.append(ctx)
    keep = need if fixed_shapes else max(min(len(c) for c in contexts), 1)
    context = np.stack([np.sort(rng.choice(c, size=keep, replace=False)) for c in contexts])
    return BlockMasks(torch.from_numpy(context), torch.from_numpy(targets))


class MaskCollator:
    """Collate samples into a batch and add ``batch["masks"]`` (:class:`BlockMasks`).

    Samples may carry ``"_step"`` (from :class:`xjepa_kit.train_data.StepBatchSampler`); masks are
    then seeded by (seed, step, rank). Skipped samples (``None`` or tagged ``_skipped``) are dropped.
    """

    def __init__(self, grid: int, seed: int = 0, rank: int = 0, num_targets: int = 4,
                 target_scale=(0.15, 0.2), target_aspect=(0.75, 1.5), context_scale=(0.85, 1.0),
                 min_keep: int = 4, with_masks: bool = True, fixed_shapes: bool = False,
                 context_tokens: int = 0) -> None:
        self.grid, self.seed, self.rank, self.with_masks = grid, seed, rank, with_masks
        self.kw = dict(num_targets=num_targets, target_scale=target_scale, target_aspect=target_aspect,
                       context_scale=context_scale, min_keep=min_keep, fixed_shapes=fixed_shapes,
                       context_tokens=context_tokens)
        self._calls = 0

    def __call__(self, items: list) -> dict:
        """Samples -> batch with ``masks`` and ``step``; only ``{"step": step}`` when every sample was skipped."""
        tagged = [it for it in items if it is not None]
        step = tagged[0].get("_step", self._calls) if tagged else self._calls
        self._calls += 1
        items = [it for it in tagged if not it.get("_skipped")]
        if not items:
            return {"step": int(step)}
        batch = default_collate([{k: v for k, v in it.items() if k not in ("_step", "_skipped")} for it in items])
        if self.with_masks:
            rng = np.random.default_rng((self.seed, int(step), self.rank))
            batch["masks"] = sample_masks(rng, len(items), self.grid, **self.kw)
        batch["step"] = int(step)
        return batch

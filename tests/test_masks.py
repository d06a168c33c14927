"""Multi-block masks: disjoint context and targets, sizes, determinism by (seed, step, rank)."""

import numpy as np
import pytest
import torch

from xjepa_kit.errors import XJepaError
from xjepa_kit.masks import MaskCollator, sample_masks


def test_blocks_are_disjoint_rectangles_within_the_grid():
    m = sample_masks(np.random.default_rng(1), batch=16, grid=8, num_targets=4)
    assert m.context.shape[0] == 16 and m.targets.shape[:2] == (16, 4)
    kt = m.targets.shape[2]
    assert 0.1 * 64 <= kt <= 0.25 * 64  # scale 0.15-0.2 of 64 tokens, rounded
    for b in range(16):
        ctx, tgt = set(m.context[b].tolist()), set(m.targets[b].flatten().tolist())
        assert not ctx & tgt and len(ctx) == m.context.shape[1] >= 4
        assert max(ctx | tgt) < 64 and min(ctx | tgt) >= 0
        rows = m.targets[b, 0] // 8
        cols = m.targets[b, 0] % 8
        h, w = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
        assert h * w == kt  # a full rectangle


def test_collator_seeds_masks_by_step_and_rank():
    items = [{"s1": torch.zeros(2, 4, 4), "s2": torch.ones(3, 4, 4), "_step": 5} for _ in range(4)]
    a = MaskCollator(8, seed=0)(items)
    b = MaskCollator(8, seed=0)(items)
    c = MaskCollator(8, seed=0, rank=1)(items)
    d = MaskCollator(8, seed=0)([{**it, "_step": 6} for it in items])
    assert torch.equal(a["masks"].context, b["masks"].context) and a["step"] == 5
    assert not torch.equal(a["masks"].targets, c["masks"].targets)
    assert not torch.equal(a["masks"].targets, d["masks"].targets)
    assert a["s2"].shape == (4, 3, 4, 4) and "_step" not in a
    assert MaskCollator(8)([None, items[0]])["s1"].shape[0] == 1  # skipped samples are dropped


def test_fixed_shapes_give_the_same_token_counts_every_batch():
    from xjepa_kit.masks import auto_context_tokens, fixed_target_shapes

    assert fixed_target_shapes(8) == [(3, 4), (4, 3)]  # 12 of 64 tokens: inside scale 0.15-0.2, two aspects
    for grid in (8, 14, 16):
        areas = {h * w for h, w in fixed_target_shapes(grid)}
        assert len(areas) == 1 and 0.15 * grid**2 <= areas.pop() <= 0.2 * grid**2
    kc = auto_context_tokens(8)
    assert 12 <= kc <= 30
    shapes, seen = set(), set()
    for seed in range(12):
        m = sample_masks(np.random.default_rng(seed), batch=8, grid=8, fixed_shapes=True)
        shapes.add((tuple(m.context.shape), tuple(m.targets.shape)))
        for b in range(8):
            ctx, tgt = set(m.context[b].tolist()), set(m.targets[b].flatten().tolist())
            assert not ctx & tgt and len(ctx) == kc
            rows, cols = m.targets[b, 0] // 8, m.targets[b, 0] % 8
            seen.add((int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)))
    assert shapes == {((8, kc), (8, 4, 12))}
    assert seen == {(3, 4), (4, 3)}  # both rectangles are used
    m = sample_masks(np.random.default_rng(0), batch=4, grid=8, fixed_shapes=True, context_tokens=30)
    assert m.context.shape == (4, 30)


def test_impossible_context_count_names_the_key():
    with pytest.raises(XJepaError, match="mask.context_tokens=53"):  # 64 - 12 + 1: more than any draw leaves
        sample_masks(np.random.default_rng(0), batch=2, grid=8, fixed_shapes=True, context_tokens=53)


def test_collator_passes_fixed_shapes():
    items = [{"s1": torch.zeros(2, 4, 4), "_step": s} for s in range(3)]
    a = MaskCollator(8, fixed_shapes=True, context_tokens=17)(items)
    assert a["masks"].context.shape == (3, 17) and a["masks"].targets.shape == (3, 4, 12)


def test_every_sample_keeps_min_keep_context_tokens():
    # 30 of 64 tokens is often more than the 8 x 8 context block leaves around 4 targets: samples are redrawn
    for seed in range(10):
        m = sample_masks(np.random.default_rng(seed), batch=8, grid=8, min_keep=30)
        assert m.context.shape[1] >= 30
        for b in range(8):
            assert not set(m.context[b].tolist()) & set(m.targets[b].flatten().tolist())


def test_impossible_min_keep_names_the_key():
    with pytest.raises(XJepaError, match=r"mask\.min_keep=4 .*lower mask\.min_keep"):
        sample_masks(np.random.default_rng(0), batch=2, grid=4, target_scale=(0.9, 1.0))  # targets cover the grid

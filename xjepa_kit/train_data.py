"""Training data pipeline: dataset from the config, a resumable step-indexed sampler, skip-on-error.

:class:`StepBatchSampler` plays the role of ``DistributedSampler`` (each rank a disjoint shard of
an epoch's permutation, seeded by epoch) but counts global steps, so ``--resume`` at step N sees
exactly the batches and masks a straight run sees at step N.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from xjepa_kit.config import Config
from xjepa_kit.errors import DataError, XJepaError
from xjepa_kit.masks import MaskCollator, auto_context_tokens

log = logging.getLogger(__name__)


def point_at_data(cfg: Config, root: str | Path, split_file: str | None = None, rgb_root: str | None = None) -> None:
    """Read ``root`` (and the given split file / fMoW-RGB root) with a trained run's data settings, in place.

    The run's own ``data.split_file`` and ``data.fmow_rgb_root`` are kept unless replaced; one that is not there
    (the data moved, or the run was trained from another folder with a relative path) names the option to give.
    """
    d = cfg.data
    d.root = str(root)
    from xjepa_kit.data import is_packed_store

    packed = is_packed_store(root)  # a packed store holds its pairs and splits: no split file is read
    for key, option, given, used in (("split_file", "--split-file", split_file, d.dataset != "fmow" and not packed),
                                     ("fmow_rgb_root", "--rgb-root", rgb_root, d.dataset == "fmow")):
        value = given or getattr(d, key)
        setattr(d, key, value)
        if used and value and not Path(value).exists():
            raise XJepaError(f"{option} {value} is not there" if given else
                             f"the run's data.{key} {value} is not there (relative paths are read from the "
                             f"current folder); give its place with {option}")


def build_dataset(cfg, split: str | None = "config") -> Dataset:
    """The dataset named by ``cfg.data`` (BigEarthNet GeoTIFF root or packed store, or fMoW pairs).

    ``split="config"`` takes ``cfg.data.split``; ``None`` takes every pair (BigEarthNet only).
    """
    d = cfg.data
    split = d.split if split == "config" else split
    if d.dataset == "fmow":
        from xjepa_kit.data.fmow import FMoWPairs

        if split is None:
            raise XJepaError("fMoW pairs are read one split at a time: give --split train, val or test")
        if not d.fmow_rgb_root:
            raise XJepaError("config key 'data.fmow_rgb_root' is required for data.dataset=fmow")
        return FMoWPairs(d.fmow_rgb_root, d.root, split=split, pairing=d.fmow_pairing,
                         size=cfg.model.encoder.img_size)
    from xjepa_kit.data import open_dataset
    from xjepa_kit.data.bands import PATCH_PX

    if cfg.model.encoder.img_size != PATCH_PX:
        raise XJepaError(f"config key 'model.encoder.img_size' is {cfg.model.encoder.img_size}, but BigEarthNet patches "
                         f"are {PATCH_PX} x {PATCH_PX} px and are not resized: use {PATCH_PX} (patch_size sets the grid)")
    kwargs = {"s2_bands": d.s2_bands}
    if d.split_file:
        kwargs["split_file"] = d.split_file
    return open_dataset(d.root, split=split, **kwargs)


class StepTagged(Dataset):
    """Wraps a dataset to take ``(index, step)`` and tag the sample with ``_step``; may skip bad samples."""

    def __init__(self, dataset: Dataset, skip_errors: bool = False) -> None:
        self.dataset, self.skip_errors = dataset, skip_errors

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> dict:
        """The sample plus ``_step``; a skipped sample is ``{"_step": step, "_skipped": True}``."""
        index, step = key
        try:
            sample = self.dataset[index]
        except DataError as err:
            if not self.skip_errors:
                raise
            log.warning("skipping sample %d: %s", index, err)
            return {"_step": step, "_skipped": True}
        return {**sample, "_step": step}


class StepBatchSampler(Sampler):
    """Batches of ``(index, step)`` for steps ``start_step .. steps-1`` on this rank (drop_last)."""

    def __init__(self, n: int, batch_size: int, seed: int, steps: int, start_step: int = 0,
                 rank: int = 0, world: int = 1) -> None:
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.steps, self.start_step, self.rank, self.world = steps, start_step, rank, world
        self.per_rank = n // world
        self.batches_per_epoch = self.per_rank // batch_size
        if self.batches_per_epoch < 1:
            raise XJepaError(f"{n} training pairs are fewer than one batch of {batch_size} per process "
                             f"({world} processes); lower data.batch_size")

    def __len__(self) -> int:
        return max(self.steps - self.start_step, 0)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        step = self.start_step
        while step < self.steps:
            epoch, pos = divmod(step, self.batches_per_epoch)
            perm = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed * 1_000_003 + epoch))
            shard = perm[self.rank: self.per_rank * self.world: self.world].tolist()
            for p in range(pos, self.batches_per_epoch):
                yield [(i, step) for i in shard[p * self.batch_size:(p + 1) * self.batch_size]]
                step += 1
                if step >= self.steps:
                    return


def context_tokens(cfg: Config, grid: int) -> int:
    """``mask.context_tokens`` resolved once in the main process (0 -> :func:`auto_context_tokens`)."""
    mk = cfg.mask
    if not mk.fixed_shapes or mk.context_tokens:
        return mk.context_tokens
    return auto_context_tokens(grid, mk.num_targets, tuple(mk.target_scale), tuple(mk.target_aspect),
                               tuple(mk.context_scale))


def build_loader(cfg, dataset: Dataset, grid: int, with_masks: bool, start_step: int = 0,
                 rank: int = 0, world: int = 1, pin_memory: bool = False) -> DataLoader:
    """DataLoader for steps ``start_step .. cfg.train.steps`` with masks made in the collate function."""
    d, mk = cfg.data, cfg.mask
    sampler = StepBatchSampler(len(dataset), d.batch_size, cfg.train.seed, cfg.train.steps, start_step, rank, world)
    collate = MaskCollator(grid, seed=cfg.train.seed, rank=rank, num_targets=mk.num_targets,
                           target_scale=tuple(mk.target_scale), target_aspect=tuple(mk.target_aspect),
                           context_scale=tuple(mk.context_scale), min_keep=mk.min_keep, with_masks=with_masks,
                           fixed_shapes=mk.fixed_shapes, context_tokens=context_tokens(cfg, grid))
    workers = d.num_workers
    return DataLoader(StepTagged(dataset, d.on_error == "skip"), batch_sampler=sampler, collate_fn=collate,
                      num_workers=workers, pin_memory=pin_memory and d.pin_memory,
                      persistent_workers=d.persistent_workers and workers > 0)

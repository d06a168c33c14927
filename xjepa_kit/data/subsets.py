"""``make_subset``: a reproducible, label-stratified BEN-14K-style subset (DESIGN 3.3 (c)).

BEN-14K (the CSMAE paper's benchmark) holds 14,832 S1/S2 pairs of BigEarthNet-MM. This builder
draws the same number from a root's official splits (seeded), keeps each split's share of the
pool, leaves out patches on TU Berlin's seasonal-snow and cloud/shadow lists, and stratifies by
label: each patch's stratum is its rarest class, and strata get seats in proportion to their size.
"""

from __future__ import annotations

import bz2
import os
import tempfile
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from xjepa_kit.errors import XJepaError

BEN14K_SIZE = 14_832  # pairs in BEN-14K (Hackstein et al., CSMAE, 2024)


def excluded_patches() -> set[str]:
    """S2 names on TU Berlin's seasonal-snow and cloud/shadow lists (``bigearthnet-common``)."""
    names: set[str] = set()
    for f in ("patches_with_seasonal_snow.csv.bz2", "patches_with_cloud_and_shadow.csv.bz2"):
        with resources.files("bigearthnet_common").joinpath(f).open("rb") as fh:
            names.update(line.strip() for line in bz2.open(fh, "rt") if line.strip())
    return names


def _allocate(sizes: np.ndarray, total: int) -> np.ndarray:
    """Largest-remainder allocation of ``total`` seats over strata of ``sizes`` (never above a size)."""
    exact = sizes / sizes.sum() * total
    seats = np.minimum(np.floor(exact).astype(int), sizes)
    order = np.argsort(-(exact - seats), kind="stable")
    k = 0
    while seats.sum() < total and k < 10 * len(sizes):
        j = order[k % len(order)]
        if seats[j] < sizes[j]:
            seats[j] += 1
        k += 1
    return seats


def stratified_sample(labels: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``n`` rows of a multi-hot matrix [N, 19], stratified by each row's rarest class."""
    freq = labels.sum(0)
    rarity = np.where(labels > 0, freq[None, :], np.inf)
    stratum = np.where(np.isfinite(rarity).any(1), rarity.argmin(1), -1)
    keys, sizes = np.unique(stratum, return_counts=True)
    seats = _allocate(sizes, min(n, len(labels)))
    picked = [rng.choice(np.flatnonzero(stratum == k), size=s, replace=False) for k, s in zip(keys, seats) if s]
    return np.sort(np.concatenate(picked)) if picked else np.array([], int)


def make_subset(root: str | Path, out: str | Path, n: int = BEN14K_SIZE, seed: int = 0,
                exclude_cloud_snow: bool = True, version: str = "auto") -> pd.DataFrame:
    """Draw ``n`` pairs from ``root`` and write ``s2_name,s1_name,split`` to ``out`` (atomically)."""
    from xjepa_kit.data.bigearthnet import BigEarthNetMM

    ds = BigEarthNetMM(root, version=version, normalize=False)
    index = ds.index.copy()
    keep = index["split"].notna().to_numpy().copy()
    if exclude_cloud_snow:
        keep &= ~index["s2_name"].isin(excluded_patches()).to_numpy()
        meta_path = ds.layout.root / "metadata.parquet"
        if ds.layout.kind != "v1" and meta_path.exists():  # reBEN flags its own cloud/snow patches
            meta = pd.read_parquet(meta_path).set_index("patch_id")
            for flag in ("contains_seasonal_snow", "contains_cloud_or_shadow"):
                if flag in meta.columns:
                    keep &= ~index["s2_name"].map(meta[flag]).fillna(False).astype(bool).to_numpy()
    pool = index[keep].reset_index()
    if len(pool) < n:
        raise XJepaError(f"{root}: only {len(pool)} pairs with a split after exclusions, fewer than n={n}; "
                         "lower --n")
    labels = np.stack([ds.labels_of(int(i)) for i in pool["index"]])
    rng = np.random.default_rng(seed)
    shares = pool["split"].value_counts()
    seats = _allocate(shares.to_numpy(), n)
    parts = []
    for split, k in zip(shares.index, seats):
        rows = np.flatnonzero(pool["split"].to_numpy() == split)
        parts.append(pool.iloc[rows[stratified_sample(labels[rows], int(k), rng)]])
    subset = pd.concat(parts)[["s2_name", "s1_name", "split"]].sort_values(["split", "s2_name"])
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    with os.fdopen(fd, "w") as fh:
        subset.to_csv(fh, index=False)
    os.replace(tmp, out)
    return subset.reset_index(drop=True)

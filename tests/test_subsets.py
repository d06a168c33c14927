"""BEN-14K-style subsets: size, split shares, seed, exclusions, label stratification."""

import numpy as np
import pandas as pd
import pytest

from xjepa_kit.data import BigEarthNetMM, make_subset
from xjepa_kit.data.subsets import _allocate, stratified_sample
from xjepa_kit.errors import XJepaError


def test_subset_is_reproducible_and_keeps_split_shares(synth_v1, tmp_path):
    a = make_subset(synth_v1, tmp_path / "a.csv", n=40, seed=1)
    b = make_subset(synth_v1, tmp_path / "b.csv", n=40, seed=1)
    c = make_subset(synth_v1, tmp_path / "c.csv", n=40, seed=2)
    assert len(a) == 40 and a.equals(b) and not a.equals(c)
    assert (tmp_path / "a.csv").read_text() == (tmp_path / "b.csv").read_text()
    pool = BigEarthNetMM(synth_v1).index["split"].value_counts(normalize=True)
    shares = a["split"].value_counts(normalize=True)
    for split in ("train", "val", "test"):
        assert abs(shares[split] - pool[split]) < 0.05
    ds = BigEarthNetMM(synth_v1, split_file=tmp_path / "a.csv", split="test")  # usable as split file
    assert len(ds) == (a["split"] == "test").sum()


def test_stratified_sample_keeps_rare_classes():
    rng = np.random.default_rng(0)
    labels = np.zeros((1000, 19), np.float32)
    labels[:, 2] = 1            # a very common class
    labels[:20, 15] = 1         # a rare class on 2 % of patches
    picked = stratified_sample(labels, 100, rng)
    assert len(picked) == 100 and len(set(picked)) == 100
    assert labels[picked, 15].sum() == 2  # exactly its share, not left to chance
    assert list(_allocate(np.array([5, 3, 2]), 5)) == [3, 1, 1]  # largest remainders, ties by order


def test_subset_excludes_cloud_and_snow_lists(synth_v1, tmp_path, monkeypatch):
    index = BigEarthNetMM(synth_v1).index
    banned = set(index["s2_name"].iloc[:60])
    import xjepa_kit.data.subsets as subsets

    monkeypatch.setattr(subsets, "excluded_patches", lambda: banned)
    sub = make_subset(synth_v1, tmp_path / "s.csv", n=50, seed=0)
    assert not set(sub["s2_name"]) & banned
    with pytest.raises(XJepaError, match="fewer than"):
        make_subset(synth_v1, tmp_path / "t.csv", n=61, seed=0)
    assert not (tmp_path / "t.csv").exists()
    kept = make_subset(synth_v1, tmp_path / "u.csv", n=100, seed=0, exclude_cloud_snow=False)
    assert len(kept) == 100 and isinstance(kept, pd.DataFrame)

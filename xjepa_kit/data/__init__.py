"""Data layer: BigEarthNet v1 / v2 / BEN-14K and fMoW readers, real sample, synthetic set, packed store.

Public API::

    LABELS, BigEarthNetMM, FMoWPairs, extract_sample, make_synthetic, pack, PackedPairs,
    make_subset, check
"""

from xjepa_kit.data.bigearthnet import BigEarthNetMM
from xjepa_kit.data.checks import CheckReport, check
from xjepa_kit.data.fmow import FMOW_CATEGORIES, FMoWPairs
from xjepa_kit.data.labels import LABELS, NUM_CLASSES
from xjepa_kit.data.packed import PackedPairs, pack
from xjepa_kit.data.sample import extract_sample
from xjepa_kit.data.subsets import make_subset
from xjepa_kit.data.synthetic import make_synthetic
from xjepa_kit.data.synthetic_physics import SynthOptions

__all__ = [
    "LABELS", "NUM_CLASSES", "BigEarthNetMM", "FMoWPairs", "FMOW_CATEGORIES", "extract_sample",
    "make_synthetic", "SynthOptions", "pack", "PackedPairs", "make_subset", "check", "CheckReport",
    "open_dataset", "summarize",
]


def open_dataset(path, split=None, **kwargs):
    """A packed store (folder with ``meta.json``) or a GeoTIFF root, whichever ``path`` is."""
    from pathlib import Path

    if (Path(path) / "meta.json").exists():
        return PackedPairs(path, split=split, **kwargs)
    return BigEarthNetMM(path, split=split, **kwargs)


def summarize(ds) -> str:
    """A few lines on a BigEarthNet-format dataset: pairs per split and label frequencies."""
    import numpy as np

    lines = [f"{type(ds).__name__}: {len(ds)} pairs"]
    splits = ds.index["split"].fillna("none").value_counts()
    lines.append("  splits: " + ", ".join(f"{k} {v}" for k, v in splits.items()))
    if isinstance(ds, PackedPairs):
        labels = ds._labels.numpy()[ds._rows]
    else:
        labels = np.stack([ds.labels_of(i) for i in range(len(ds))])
    freq = labels.sum(0)
    top = np.argsort(-freq)[:5]
    lines.append("  most frequent labels: " + "; ".join(f"{LABELS[j]} ({int(freq[j])})" for j in top if freq[j]))
    return "\n".join(lines)

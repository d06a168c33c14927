"""Data layer: BigEarthNet v1 / v2 / BEN-14K and fMoW readers, real sample, synthetic set, packed store.

Public API::

    LABELS, BigEarthNetMM, FMoWPairs, extract_sample, make_synthetic, pack, PackedPairs, is_packed_store,
    make_subset, check
"""

import numpy as np

from xjepa_kit.data.bigearthnet import BigEarthNetMM
from xjepa_kit.data.checks import CheckReport, check
from xjepa_kit.data.fmow import FMOW_CATEGORIES, FMoWPairs
from xjepa_kit.data.labels import LABELS, NUM_CLASSES
from xjepa_kit.data.packed import PackedPairs, is_packed_store, pack
from xjepa_kit.data.sample import extract_sample
from xjepa_kit.data.subsets import make_subset
from xjepa_kit.data.synthetic import make_synthetic
from xjepa_kit.data.synthetic_physics import SynthOptions

__all__ = [
    "LABELS", "NUM_CLASSES", "BigEarthNetMM", "FMoWPairs", "FMOW_CATEGORIES", "extract_sample",
    "make_synthetic", "SynthOptions", "pack", "PackedPairs", "is_packed_store", "make_subset", "check", "CheckReport",
    "open_dataset", "summarize", "label_frequencies", "dataset_bounds", "footprints_geojson",
]


def open_dataset(path, split=None, **kwargs):
    """A packed store (folder with ``meta.json``) or a GeoTIFF root, whichever ``path`` is."""
    if is_packed_store(path):
        kwargs.pop("split_file", None)  # a store holds the pairs (and splits) it was packed with
        return PackedPairs(path, split=split, **kwargs)
    return BigEarthNetMM(path, split=split, **kwargs)


def label_frequencies(ds) -> np.ndarray:
    """Number of pairs per class [19] of a BigEarthNetMM or PackedPairs dataset."""
    if isinstance(ds, PackedPairs):
        labels = ds._labels.numpy()[ds._rows]
    else:
        labels = np.stack([ds.labels_of(i) for i in range(len(ds))])
    return labels.sum(0).astype(int)


def dataset_bounds(ds) -> np.ndarray:
    """Footprints [N, 4] (west, south, east, north, EPSG:4326) without reading the pixels."""
    if isinstance(ds, PackedPairs):
        return ds._bounds.numpy()[np.arange(len(ds))]
    return np.array([ds.bounds_of(i) for i in range(len(ds))])


def footprints_geojson(ds) -> dict:
    """GeoJSON FeatureCollection of a dataset's footprints with ``index``, ``id`` and ``labels``."""
    from xjepa_kit.data.labels import names_from_multihot
    from xjepa_kit.geo import bounds_geojson

    props = []
    for i in range(len(ds)):
        labels = ds.labels_of(i) if isinstance(ds, BigEarthNetMM) else ds._labels[ds._rows[i]].numpy()
        props.append({"index": i, "id": str(ds.index["s2_name"].iloc[i]),
                      "labels": "; ".join(names_from_multihot(labels))})
    return bounds_geojson(dataset_bounds(ds), props)


def summarize(ds) -> str:
    """A few lines on a BigEarthNet-format dataset: pairs per split and label frequencies."""
    lines = [f"{type(ds).__name__}: {len(ds)} pairs"]
    splits = ds.index["split"].fillna("none").value_counts()
    lines.append("  splits: " + ", ".join(f"{k} {v}" for k, v in splits.items()))
    freq = label_frequencies(ds)
    top = np.argsort(-freq, kind="stable")[:5]
    lines.append("  most frequent labels: " + "; ".join(f"{LABELS[j]} ({int(freq[j])})" for j in top if freq[j]))
    return "\n".join(lines)

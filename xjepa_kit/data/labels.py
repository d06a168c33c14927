"""BigEarthNet label nomenclatures: the 19-class set (official order) and the 43 -> 19 mapping.

The 19-class nomenclature is from Sumbul et al., "BigEarthNet-MM: A Large Scale Multi-Modal
Multi-Label Benchmark Archive for Remote Sensing Image Classification and Retrieval" (IEEE GRSM
2021), Table 1, in TU Berlin's official order (``label_indices.json`` of the BigEarthNet-19
models, as shipped in ``bigearthnet_common.constants.NEW_LABELS_ORIGINAL_ORDER``). Index 0 is
"Urban fabric", index 18 "Marine waters". This is *not* the alphabetical order torchgeo uses.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from xjepa_kit.errors import DataError

# Official BigEarthNet-19 order (source: see module docstring).
LABELS: tuple[str, ...] = (
    "Urban fabric",
    "Industrial or commercial units",
    "Arable land",
    "Permanent crops",
    "Pastures",
    "Complex cultivation patterns",
    "Land principally occupied by agriculture, with significant areas of natural vegetation",
    "Agro-forestry areas",
    "Broad-leaved forest",
    "Coniferous forest",
    "Mixed forest",
    "Natural grassland and sparsely vegetated areas",
    "Moors, heathland and sclerophyllous vegetation",
    "Transitional woodland, shrub",
    "Beaches, dunes, sands",
    "Inland wetlands",
    "Coastal wetlands",
    "Inland waters",
    "Marine waters",
)
NUM_CLASSES = len(LABELS)
LABEL_INDEX: dict[str, int] = {name: i for i, name in enumerate(LABELS)}


def clc43_to_19() -> dict[str, str | None]:
    """The 43 CORINE Level-3 names of BigEarthNet v1 -> 19-class name (None: dropped class).

    Taken from TU Berlin's ``bigearthnet_common.constants.OLD2NEW_LABELS_DICT``.
    """
    from bigearthnet_common.constants import OLD2NEW_LABELS_DICT

    return dict(OLD2NEW_LABELS_DICT)


_CLC43: dict[str, str | None] | None = None


def to_multihot(names: Iterable[str], source: str = "") -> np.ndarray:
    """Map label names (43-class CLC or 19-class) to a float32 multi-hot vector [19].

    Classes that the 19-class nomenclature drops (e.g. "Airports") are ignored, as in the
    official conversion. An unknown name raises a DataError naming ``source`` (the file).
    """
    global _CLC43
    if _CLC43 is None:
        _CLC43 = clc43_to_19()
    out = np.zeros(NUM_CLASSES, dtype=np.float32)
    for name in names:
        if name in LABEL_INDEX:
            out[LABEL_INDEX[name]] = 1.0
        elif name in _CLC43:
            new = _CLC43[name]
            if new is not None:
                out[LABEL_INDEX[new]] = 1.0
        else:
            where = f" in {source}" if source else ""
            raise DataError(
                f"unknown label {name!r}{where}: expected one of the 43 BigEarthNet CORINE names "
                "or the 19 BigEarthNet-19 names (xjepa_kit.data.LABELS); fix the metadata file"
            )
    return out


def names_from_multihot(vec: np.ndarray) -> list[str]:
    """The 19-class names whose entries in a multi-hot vector [19] are set."""
    return [LABELS[i] for i in np.flatnonzero(np.asarray(vec) > 0.5)]

"""BigEarthNet patch names: parsing, v2 parent folders, split names.

v1 S2: ``S2A_MSIL2A_20170613T101031_87_48`` (real names may drop a leading hour zero:
``S2B_MSIL2A_20170924T93020_69_24``, so the time has 5 or 6 digits).
v1 S1: ``S1A_IW_GRDH_1SDV_20170613T165043_33UUP_87_48``.
v2 S2 patch_id: ``S2A_MSIL2A_20170613T101031_N9999_R022_T33UUP_26_57``; its parent folder is the
name without its last two ``_`` parts. v2 S1 parent: the S1 name without its last three parts.
"""

from __future__ import annotations

import re

from xjepa_kit.errors import XJepaError

S2_V1_NAME = re.compile(r"^S2[AB]_MSIL2A_(\d{8})T(\d{5,6})_(\d+)_(\d+)$")
S1_NAME = re.compile(r"^S1[AB]_IW_GRDH_1SDV_(\d{8})T(\d{6})_([0-9]{2}[A-Z]{3})_(\d+)_(\d+)$")
S2_V2_NAME = re.compile(r"^S2[AB]_MSIL2A_(\d{8})T(\d{5,6})_N\d{4}_R\d{3}_T([0-9]{2}[A-Z]{3})_(\d+)_(\d+)$")

_SPLIT_ALIASES = {
    "train": "train", "training": "train",
    "val": "val", "validation": "val", "valid": "val",
    "test": "test", "test_gt": "test",
}


def is_s2_name(name: str) -> bool:
    """True for a v1 or v2 Sentinel-2 patch name."""
    return bool(S2_V1_NAME.match(name) or S2_V2_NAME.match(name))


def is_s1_name(name: str) -> bool:
    """True for a BigEarthNet Sentinel-1 patch name."""
    return bool(S1_NAME.match(name))


def s2_v2_parent(patch_id: str) -> str:
    """v2 S2 tile folder: ``patch_id`` without its last two ``_`` parts."""
    return patch_id.rsplit("_", 2)[0]


def s1_v2_parent(s1_name: str) -> str:
    """v2 S1 scene folder: ``s1_name`` without its last three ``_`` parts."""
    return s1_name.rsplit("_", 3)[0]


def canonical_split(split: str | None) -> str | None:
    """Map split aliases (``validation``, ``test_gt`` ...) to ``train``/``val``/``test``."""
    if split is None:
        return None
    key = str(split).strip().lower()
    if key not in _SPLIT_ALIASES:
        raise XJepaError(f"unknown split {split!r}: use train, val (or validation) or test")
    return _SPLIT_ALIASES[key]

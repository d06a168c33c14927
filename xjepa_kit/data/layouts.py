"""Detect a BigEarthNet layout on disk and build its pair index (one row per S1/S2 pair).

Layouts (DESIGN 3.1-3.3):
- ``v1``: ``BigEarthNet-v1.0/<s2_name>/<s2_name>_B02.tif`` + ``BigEarthNet-S1-v1.0/<s1_name>/...``
  with JSON metadata (the real sample's ``BigEarthNet-S2-Example`` names also work);
- ``v2``: reBEN, ``BigEarthNet-S2/<tile>/<patch_id>/...``, ``BigEarthNet-S1/<scene>/<s1_name>/...``,
  ``metadata.parquet``;
- ``ben14k``: one multiband tif per patch, ``BigEarthNet-S2/<split>/<patch_id>.tif``,
  ``BigEarthNet-S1/<split>/<s1_name>.tif``, ``metadata.parquet``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from xjepa_kit.data.naming import canonical_split, is_s1_name, is_s2_name
from xjepa_kit.errors import DataError

V1_S2_DIRS = ("BigEarthNet-v1.0", "BigEarthNet-S2-v1.0", "BigEarthNet-S2-Example", "BigEarthNet-S2")
V1_S1_DIRS = ("BigEarthNet-S1-v1.0", "BigEarthNet-S1-Example", "BigEarthNet-S1")
SPLIT_DIRS = ("train", "val", "validation", "test")
SPLIT_FILE_NAME = "splits.csv"  # written by `xjepa data synth` / `xjepa data subset`


@dataclass(frozen=True)
class Layout:
    """Where a dataset's files live: ``kind`` is ``v1``, ``v2`` or ``ben14k``."""

    kind: str
    root: Path
    s2_dir: Path
    s1_dir: Path


def _first_entry(d: Path) -> os.DirEntry | None:
    with os.scandir(d) as it:
        for e in it:
            if not e.name.startswith("."):
                return e
    return None


def detect_layout(root: str | Path, version: str = "auto") -> Layout:
    """Find the S1/S2 folders under ``root`` and decide the layout (``version`` may force it)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: dataset folder not found; give the folder that holds the "
                        "BigEarthNet S1 and S2 folders (or run `xjepa data sample` / `xjepa data synth`)")
    s2 = next((root / n for n in V1_S2_DIRS if (root / n).is_dir()), None)
    s1 = next((root / n for n in V1_S1_DIRS if (root / n).is_dir()), None)
    if s2 is None or s1 is None:
        raise DataError(f"{root}: no Sentinel-2 and Sentinel-1 folders found (expected one of "
                        f"{V1_S2_DIRS} and one of {V1_S1_DIRS})")
    if version != "auto":
        if version not in ("v1", "v2", "ben14k"):
            raise DataError(f"version must be auto, v1, v2 or ben14k, got {version!r}")
        return Layout(version, root, s2, s1)
    first = _first_entry(s2)
    if first is None:
        raise DataError(f"{s2}: the Sentinel-2 folder is empty")
    if first.name in SPLIT_DIRS and (root / "metadata.parquet").exists():
        return Layout("ben14k", root, s2, s1)
    if is_s2_name(first.name) and any(n.endswith(".json") for n in os.listdir(first.path)):
        return Layout("v1", root, s2, s1)
    if (root / "metadata.parquet").exists():
        return Layout("v2", root, s2, s1)
    raise DataError(f"{root}: cannot tell the layout (v1 patch folders with JSON, or a v2/BEN-14K "
                    "folder with metadata.parquet); pass version='v1'|'v2'|'ben14k'")


def read_split_file(path: str | Path) -> pd.DataFrame:
    """Read a ``s2_name,s1_name,split`` CSV (header optional) -> DataFrame with those columns."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: split file not found")
    df = pd.read_csv(path, dtype=str)
    if not {"s2_name", "s1_name", "split"} <= set(df.columns):
        df = pd.read_csv(path, dtype=str, header=None)
        if df.shape[1] < 3:
            raise DataError(f"{path}: a split file needs the columns s2_name,s1_name,split")
        df = df.iloc[:, :3]
        df.columns = ["s2_name", "s1_name", "split"]
    df["split"] = [canonical_split(s) for s in df["split"]]
    return df[["s2_name", "s1_name", "split"]].reset_index(drop=True)


def _v1_official_pairs(s2_names: list[str], s1_names: set[str], s1_dir: Path) -> dict[str, str]:
    """S2 -> S1 partner: TU Berlin's official mapping first, then the S1 JSON files."""
    pairs: dict[str, str] = {}
    try:
        from bigearthnet_common.base import get_complete_s2_to_s1_patch_name_mapping

        official = get_complete_s2_to_s1_patch_name_mapping()
        for n in s2_names:
            if official.get(n) in s1_names:
                pairs[n] = official[n]
    except ImportError:  # pragma: no cover - bigearthnet-common is a dependency
        pass
    if len(pairs) < len(s2_names):
        wanted = set(s2_names) - set(pairs)
        for s1 in sorted(s1_names - set(pairs.values())):
            meta = s1_dir / s1 / f"{s1}_labels_metadata.json"
            try:
                partner = json.loads(meta.read_text()).get("corresponding_s2_patch")
            except (OSError, ValueError):
                continue
            if partner in wanted:
                pairs[partner] = s1
    return pairs


def _official_split_of(names: list[str]) -> list[str | None]:
    """Official BigEarthNet v1 split (train/val/test) of each S2 name, None if in none."""
    import bz2
    from importlib import resources

    lookup: dict[str, str] = {}
    for split in ("train", "val", "test"):
        with resources.files("bigearthnet_common").joinpath(f"{split}.csv.bz2").open("rb") as fh:
            for line in bz2.open(fh, "rt"):
                lookup[line.strip()] = split
    return [lookup.get(n) for n in names]


def build_index(layout: Layout, split_file: str | Path | None = None) -> pd.DataFrame:
    """Pair index with columns ``s2_name``, ``s1_name``, ``split`` (+ ``labels`` for v2/ben14k)."""
    meta = None
    if layout.kind in ("v2", "ben14k"):
        mp = layout.root / "metadata.parquet"
        if not mp.exists():
            raise DataError(f"{mp}: metadata.parquet is missing; the {layout.kind} layout needs it")
        meta = pd.read_parquet(mp)
        missing = {"patch_id", "labels", "s1_name"} - set(meta.columns)
        if missing:
            raise DataError(f"{mp}: columns {sorted(missing)} are missing")
    if split_file is None and (layout.root / SPLIT_FILE_NAME).exists():
        split_file = layout.root / SPLIT_FILE_NAME
    if split_file is not None:
        df = read_split_file(split_file)
    elif meta is not None:
        split = meta["split"] if "split" in meta.columns else None
        df = pd.DataFrame({"s2_name": meta["patch_id"].astype(str), "s1_name": meta["s1_name"].astype(str),
                           "split": [canonical_split(s) for s in split] if split is not None else None})
    else:
        s2_names = sorted(n for n in os.listdir(layout.s2_dir) if is_s2_name(n))
        s1_names = {n for n in os.listdir(layout.s1_dir) if is_s1_name(n)}
        pairs = _v1_official_pairs(s2_names, s1_names, layout.s1_dir)
        names = [n for n in s2_names if n in pairs]
        df = pd.DataFrame({"s2_name": names, "s1_name": [pairs[n] for n in names],
                           "split": _official_split_of(names)})
    if meta is not None:
        if "s2v1_name" in meta.columns and not df["s2_name"].isin(meta["patch_id"]).all():
            # BEN-14K split lists name v1 patches; reBEN's metadata maps them to v2 patch ids
            v1_to_v2 = dict(zip(meta["s2v1_name"].astype(str), meta["patch_id"].astype(str)))
            df["s2_name"] = [v1_to_v2.get(n, n) for n in df["s2_name"]]
        labels = dict(zip(meta["patch_id"].astype(str), meta["labels"]))
        unknown = [n for n in df["s2_name"] if n not in labels]
        if unknown:
            raise DataError(f"{layout.root / 'metadata.parquet'}: no entry for patch {unknown[0]!r} "
                            f"({len(unknown)} in all) named by the split file")
        df["labels"] = [list(labels[n]) for n in df["s2_name"]]
    return df.reset_index(drop=True)

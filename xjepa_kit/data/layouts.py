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

import functools
import json
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from xjepa_kit.data.naming import canonical_split, is_s1_name, is_s2_name
from xjepa_kit.errors import DataError, XJepaError

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


def _subfolders(d: Path, limit: int = 50) -> list[os.DirEntry]:
    """Up to ``limit`` visible sub-folders of ``d``; stray files (README.md, checksums, .DS_Store) are skipped."""
    out: list[os.DirEntry] = []
    with os.scandir(d) as it:
        for e in it:
            if not e.name.startswith(".") and e.is_dir():
                out.append(e)
                if len(out) >= limit:
                    break
    return out


def _looks_like_fmow(root: Path) -> bool:
    """fMoW-RGB or fMoW-Sentinel: split folders (train, val, test, test_gt) of fMoW category folders."""
    from xjepa_kit.data.fmow import FMOW_CATEGORIES

    splits = [root / n for n in ("train", "val", "test", "test_gt") if (root / n).is_dir()]
    return any(e.name in FMOW_CATEGORIES for d in splits for e in _subfolders(d, limit=5))


def detect_layout(root: str | Path, version: str = "auto") -> Layout:
    """Find the S1/S2 folders under ``root`` and decide the layout (``version`` may force it)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: dataset folder not found; give the folder that holds the "
                        "BigEarthNet S1 and S2 folders (or run `xjepa data sample` / `xjepa data synth`)")
    s2 = next((root / n for n in V1_S2_DIRS if (root / n).is_dir()), None)
    s1 = next((root / n for n in V1_S1_DIRS if (root / n).is_dir()), None)
    if s2 is None or s1 is None:
        if _looks_like_fmow(root):
            raise DataError(f"{root} is an fMoW root: `xjepa data check` and `data pack` read BigEarthNet only. "
                            "fMoW pairs are read (and each file checked) by training: xjepa pretrain --config "
                            "fmow_vitb data.root=<fMoW-Sentinel root> data.fmow_rgb_root=<fMoW-RGB root>")
        raise DataError(f"{root}: no Sentinel-2 and Sentinel-1 folders found (expected one of "
                        f"{V1_S2_DIRS} and one of {V1_S1_DIRS})")
    if version != "auto":
        if version not in ("v1", "v2", "ben14k"):
            raise DataError(f"version must be auto, v1, v2 or ben14k, got {version!r}")
        return Layout(version, root, s2, s1)
    folders = _subfolders(s2)
    if not folders:
        raise DataError(f"{s2}: the Sentinel-2 folder holds no patch or split folders")
    if any(e.name in SPLIT_DIRS for e in folders) and (root / "metadata.parquet").exists():
        return Layout("ben14k", root, s2, s1)
    if any(is_s2_name(e.name) and any(n.endswith(".json") for n in os.listdir(e.path)) for e in folders):
        return Layout("v1", root, s2, s1)
    if (root / "metadata.parquet").exists():
        return Layout("v2", root, s2, s1)
    raise DataError(f"{root}: cannot tell the layout (v1 patch folders with JSON, or a v2/BEN-14K "
                    "folder with metadata.parquet); name it: version='v1'|'v2'|'ben14k' (BigEarthNetMM), "
                    "--layout v1|v2|ben14k (xjepa data check / pack)")


TABLE_FIRST_ABOVE = 2000  # S2 patches; below this, reading the S1 JSON files is faster than the official table


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
        if len(df) and not is_s2_name(str(df.at[0, "s2_name"])) and not _is_split(df.at[0, "split"]):
            df = df.iloc[1:]  # a header row with other column names (s2_patch,s1_patch,split ...)
    df = df.reset_index(drop=True)
    df["split"] = splits_of(df["split"], path)
    for column in ("s2_name", "s1_name"):
        empty = df[column].isna()
        if empty.any():
            raise DataError(f"{path}: row {int(empty.to_numpy().argmax()) + 1} has no {column}; fill it in or "
                            "delete that row")
    refuse_repeated_pairs(df, path)
    return df[["s2_name", "s1_name", "split"]]


def refuse_repeated_pairs(df: pd.DataFrame, path: Path) -> None:
    """One error naming the rows where a split list names a patch twice (it would take two top-k slots, or
    leak from the query split into the archive)."""
    for column in ("s2_name", "s1_name"):
        dup = df[column].duplicated(keep=False).to_numpy()
        if dup.any():
            first = df[column].iloc[int(dup.argmax())]
            rows = [i for i, v in enumerate(df[column]) if v == first]
            raise DataError(f"{path}: {first} is listed in rows {', '.join(str(r + 1) for r in rows)} (splits "
                            f"{', '.join(df['split'].iloc[rows])}); each pair belongs in one split once: remove "
                            "the extra rows")


def _is_split(value) -> bool:
    try:
        return canonical_split(value) is not None
    except XJepaError:
        return False


def splits_of(values, source: Path, allow_missing: bool = False) -> list[str | None]:
    """Canonical split names (train/val/test) of a column read from ``source``; one error naming the file
    and the first bad row. Empty cells are errors unless ``allow_missing`` (they become None: in no split)."""
    out = []
    for row, value in enumerate(values):
        if allow_missing and (value is None or (isinstance(value, float) and value != value)):
            out.append(None)
            continue
        try:
            split = canonical_split(value)
        except XJepaError:
            split = None
        if split is None:
            raise DataError(f"{source}: row {row + 1}: split {value!r} is not train, val (or validation) or test; "
                            "fix that row or leave the pair out")
        out.append(split)
    return out


def _v1_official_pairs(s2_names: list[str], s1_names: set[str], s1_dir: Path) -> dict[str, str]:
    """S2 -> S1 partner from the S1 JSON files' ``corresponding_s2_patch`` and TU Berlin's official table.

    Large roots read the table first (3 s for all 590,326 pairs, against minutes of JSON reading); small ones
    read their few JSON files first and consult the table only for patches left unpaired (e.g. a missing JSON).
    """
    pairs: dict[str, str] = {}

    def from_table() -> None:
        official = _official_s2_to_s1()
        pairs.update({n: official[n] for n in s2_names if n not in pairs and official.get(n) in s1_names})

    if len(s2_names) > TABLE_FIRST_ABOVE:
        from_table()
    wanted = set(s2_names) - set(pairs)
    for s1 in sorted(s1_names - set(pairs.values())) if wanted else ():
        meta = s1_dir / s1 / f"{s1}_labels_metadata.json"
        try:
            partner = json.loads(meta.read_text()).get("corresponding_s2_patch")
        except (OSError, ValueError):
            continue
        if partner in wanted:
            pairs[partner] = s1
    if len(pairs) < len(s2_names) and len(s2_names) <= TABLE_FIRST_ABOVE:
        from_table()
    return pairs


@functools.lru_cache(maxsize=1)
def _official_s2_to_s1() -> dict[str, str]:
    """TU Berlin's S2 -> S1 patch-name table of all 590,326 v1 pairs, read from the file bigearthnet-common ships
    (``s1_s2_name_country_season.csv.bz2``; its ``base`` module wraps it but fails to import with current
    fastcore releases, e.g. 2.2.41)."""
    import bz2
    from importlib import resources

    out: dict[str, str] = {}
    with resources.files("bigearthnet_common").joinpath("s1_s2_name_country_season.csv.bz2").open("rb") as fh:
        lines = bz2.open(fh, "rt")
        if next(lines).split(",")[:2] != ["s1_name", "s2_name"]:
            raise DataError("bigearthnet-common's s1_s2_name_country_season.csv.bz2 changed its columns; "
                            "report this to xjepa-kit")
        for line in lines:
            s1, s2 = line.split(",", 2)[:2]
            out[s2] = s1
    return out


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
                           "split": splits_of(split, mp, allow_missing=True) if split is not None else None})
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
            refuse_repeated_pairs(df, Path(split_file))  # one patch named by its v1 name and by its v2 id
        labels = dict(zip(meta["patch_id"].astype(str), meta["labels"]))
        unknown = [n for n in df["s2_name"] if n not in labels]
        if unknown:
            raise DataError(f"{layout.root / 'metadata.parquet'}: no entry for patch {unknown[0]!r} "
                            f"({len(unknown)} in all) named by the split file")
        df["labels"] = [list(labels[n]) for n in df["s2_name"]]
    return df.reset_index(drop=True)

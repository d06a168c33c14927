"""Fast packed store (DESIGN 3.7): memory-mapped arrays on the model grid plus a parquet index.

Store layout (``xjepa data pack ROOT --out STORE``)::

    STORE/s2.npy          uint16  [N, 12, 120, 120]  all 12 L2A bands (S2_BANDS_12 order), resampled
                                                     (a 10-band BEN-14K copy: [N, 10, 120, 120], S2_BANDS_10)
    STORE/s1.npy          float32 or float16 [N, 2, 120, 120]  (VV, VH) dB
    STORE/labels.npy      float32 [N, 19]  multi-hot, LABELS order
    STORE/index.parquet   s2_name, s1_name, split, west, south, east, north, crs, date
    STORE/meta.json       format version, source, counts
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset

from xjepa_kit.data.bands import S1_BANDS, S2_BANDS_10, S2_BANDS_12, mean_std
from xjepa_kit.data.bands import s2_bands as s2_band_list
from xjepa_kit.data.naming import canonical_split
from xjepa_kit.errors import DataError, XJepaError

STORE_VERSION = 1
FILES = ("s2.npy", "s1.npy", "labels.npy", "index.parquet", "meta.json")


def is_packed_store(path: str | Path) -> bool:
    """Is ``path`` a store written by :func:`pack` (a folder with its ``meta.json``)?"""
    return (Path(path) / "meta.json").exists()


class _RawPairs(Dataset):
    """GeoTIFF pairs in physical units with all 12 bands, for packing with worker processes."""

    def __init__(self, reader) -> None:
        self.reader = reader

    def __len__(self) -> int:
        return len(self.reader)

    def __getitem__(self, i: int) -> dict:
        raw = self.reader.read_raw(i)
        raw["s2"] = np.clip(np.rint(raw["s2"]), 0, 65535).astype(np.uint16)
        raw["bounds"] = np.asarray(raw["bounds"], dtype=np.float64)
        return raw


def source_s2_bands(reader) -> tuple[str, ...]:
    """The S2 bands a dataset holds: all 12, except a BEN-14K copy whose first file has only the 10 default bands."""
    if reader.layout.kind != "ben14k":
        return S2_BANDS_12
    from xjepa_kit.data.geotiff import read_multiband

    arr, desc, _ = read_multiband(reader.multiband_path(reader.index.at[0, "s2_name"]))
    names = {d.upper() for d in desc if d}
    return S2_BANDS_10 if arr.shape[0] == len(S2_BANDS_10) and (not names or names == set(S2_BANDS_10)) else S2_BANDS_12


def _as_list(items: list) -> list:
    """Collate that keeps the samples as a list (module level, so spawn-started workers can pickle it)."""
    return items


def pack(root: str | Path, out: str | Path, split_file: str | Path | None = None, version: str = "auto",
         s1_dtype: str = "float32", workers: int = 2, overwrite: bool = False, progress: bool = True) -> Path:
    """Convert a BigEarthNet root (any layout) into a packed store at ``out``; returns ``out``.

    Written into a temporary sibling folder and renamed into place, so a crash never leaves a
    half-written store, and an existing store is only replaced with ``overwrite=True``.
    """
    from xjepa_kit.data.bigearthnet import BigEarthNetMM

    if s1_dtype not in ("float32", "float16"):
        raise XJepaError(f"s1_dtype must be float32 or float16, got {s1_dtype!r}")
    out = Path(out)
    if out.exists() and not overwrite:
        raise XJepaError(f"{out} exists; choose another --out or pass --force to replace it")
    reader = BigEarthNetMM(root, version=version, s2_bands=12, normalize=False, split_file=split_file)
    n = len(reader)
    if n == 0:
        raise DataError(f"{root}: no pairs to pack")
    bands = source_s2_bands(reader)
    if bands != S2_BANDS_12:  # a 10-band BEN-14K copy: pack what it has
        reader = BigEarthNetMM(root, version=version, s2_bands=len(bands), normalize=False, split_file=split_file)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        labels = np.zeros((n, 19), np.float32)
        bounds = np.zeros((n, 4), np.float64)
        crs: list[str] = [""] * n
        loader = DataLoader(_RawPairs(reader), batch_size=16, num_workers=workers, collate_fn=_as_list)
        if progress:
            from tqdm.auto import tqdm

            loader = tqdm(loader, desc=f"pack {Path(root).name}", unit="batch")
        # Rows arrive in order: append them to the .npy files (a writable memmap would keep every
        # written page resident in this process until it is closed).
        with _NpyWriter(tmp / "s2.npy", np.uint16, (n, len(bands), 120, 120)) as s2, \
                _NpyWriter(tmp / "s1.npy", np.dtype(s1_dtype), (n, 2, 120, 120)) as s1:
            i = 0
            for batch in loader:
                for item in batch:
                    s2.append(item["s2"], reader.index["s2_name"].iat[i])
                    s1.append(item["s1"], reader.index["s1_name"].iat[i])
                    labels[i], bounds[i], crs[i] = item["labels"], item["bounds"], item["crs"]
                    i += 1
        np.save(tmp / "labels.npy", labels)
        idx = reader.index[["s2_name", "s1_name", "split"]].copy()
        idx[["west", "south", "east", "north"]] = bounds
        idx["crs"] = crs
        idx["date"] = [n.split("_")[2][:8] for n in idx["s2_name"]]
        idx.to_parquet(tmp / "index.parquet")
        (tmp / "meta.json").write_text(json.dumps({
            "format": "xjepa-packed", "version": STORE_VERSION, "count": n, "s2_bands": list(bands),
            "s1_bands": list(S1_BANDS), "s1_dtype": s1_dtype, "source": str(root), "layout": reader.layout.kind,
        }, indent=1))
        if out.exists():
            old = out.with_name(f".{out.name}.old")
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old)
        else:
            os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out


class _NpyWriter:
    """Write an ``.npy`` file of a known shape row by row (``append(row [*shape[1:]])``); checks the count."""

    def __init__(self, path: Path, dtype: np.dtype, shape: tuple[int, ...]) -> None:
        self.path, self.dtype, self.shape, self.rows = path, np.dtype(dtype), shape, 0
        self.fh = open(path, "wb")
        header = {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False, "shape": shape}
        np.lib.format.write_array_header_1_0(self.fh, header)

    def append(self, row: np.ndarray, name: str) -> None:
        """Write ``row`` [*shape[1:]] (cast to the file's dtype); ``name`` (its source) is named on a bad shape."""
        if row.shape != self.shape[1:]:
            raise DataError(f"{name}: array of shape {row.shape}, expected {self.shape[1:]} for {self.path.name}")
        self.fh.write(np.ascontiguousarray(row, dtype=self.dtype).tobytes())
        self.rows += 1

    def __enter__(self) -> _NpyWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.fh.close()
        if exc[0] is None and self.rows != self.shape[0]:
            raise DataError(f"{self.path.name}: wrote {self.rows} of {self.shape[0]} rows; the source changed "
                            "while packing, run pack again")


class PackedPairs(Dataset):
    """The samples of :class:`BigEarthNetMM` (same dict, same values within dtype precision) from a store.

    Dataset format: see the module docstring. Arrays are memory-mapped lazily in each
    DataLoader worker. ``s2`` [C, 120, 120], ``s1`` [2, 120, 120], ``labels`` [19], ``bounds`` [4].
    """

    def __init__(self, store: str | Path, split: str | None = None, s2_bands: int = 10,
                 normalize: bool = True) -> None:
        self.store = Path(store)
        missing = [f for f in FILES if not (self.store / f).exists()]
        if missing:
            raise DataError(f"{self.store}: not a packed store (missing {', '.join(missing)}); "
                            "create one with `xjepa data pack ROOT --out STORE`")
        self.meta = json.loads((self.store / "meta.json").read_text())
        if self.meta.get("version") != STORE_VERSION:
            raise DataError(f"{self.store}: store version {self.meta.get('version')}, this kit reads "
                            f"{STORE_VERSION}; re-pack it")
        index = pd.read_parquet(self.store / "index.parquet")
        index["row"] = np.arange(len(index))
        self.split = canonical_split(split)
        if self.split is not None:
            index = index[index["split"] == self.split].reset_index(drop=True)
            if len(index) == 0:
                raise DataError(f"{self.store}: no pairs in split {self.split!r}")
        self.index = index
        self.s2_band_names = s2_band_list(s2_bands)
        stored = list(self.meta.get("s2_bands", S2_BANDS_12))
        lacking = [b for b in self.s2_band_names if b not in stored]
        if lacking:
            raise DataError(f"{self.store}: packed from a {len(stored)}-band copy, without {', '.join(lacking)}; "
                            f"read it with s2_bands={len(stored)}")
        self._band_idx = np.array([stored.index(b) for b in self.s2_band_names])
        self.normalize = normalize
        self._rows = index["row"].to_numpy()
        self._ids = index["s2_name"].tolist()
        self._s1_ids = index["s1_name"].tolist()
        self._bounds = torch.from_numpy(index[["west", "south", "east", "north"]].to_numpy(np.float64).copy())
        self._labels = torch.from_numpy(np.load(self.store / "labels.npy"))
        self._s2_norm = mean_std(self.s2_band_names)  # numpy: per-sample torch ops pay thread overhead
        self._s1_norm = mean_std(S1_BANDS)
        self._arrays: tuple[np.ndarray, np.ndarray] | None = None

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_arrays"] = None  # each worker maps the files itself
        return state

    def _open(self) -> tuple[np.ndarray, np.ndarray]:
        if self._arrays is None:
            self._arrays = (np.load(self.store / "s2.npy", mmap_mode="r"),
                            np.load(self.store / "s1.npy", mmap_mode="r"))
        return self._arrays

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, i: int) -> dict:
        if not 0 <= i < len(self._rows):
            raise IndexError(i)
        s2_all, s1_all = self._open()
        r = self._rows[i]
        s2 = s2_all[r, self._band_idx].astype(np.float32)
        s1 = s1_all[r].astype(np.float32)
        if self.normalize:
            s2 -= self._s2_norm[0]
            s2 /= self._s2_norm[1]
            s1 -= self._s1_norm[0]
            s1 /= self._s1_norm[1]
        s1, s2 = torch.from_numpy(s1), torch.from_numpy(s2)
        return {"s1": s1, "s2": s2, "labels": self._labels[r], "id": self._ids[i],
                "s1_id": self._s1_ids[i], "bounds": self._bounds[i]}

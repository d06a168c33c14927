"""Test helpers that build other on-disk layouts from a synthetic v1 set."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pandas as pd
import rasterio

from xjepa_kit.data import BigEarthNetMM, LABELS
from xjepa_kit.data.bands import S1_BANDS, S2_BANDS_12

# A small X-JEPA (width 48, depth 2, predictor 32 x 1) that trains in seconds on one thread.
SMALL_RUN = ["model.encoder.embed_dim=48", "model.encoder.depth=2", "model.encoder.num_heads=2",
             "model.predictor.embed_dim=32", "model.predictor.depth=1", "model.predictor.num_heads=2",
             "model.projector_dim=32", "data.batch_size=8", "data.num_workers=0", "train.threads=1"]


def free_port() -> int:
    """A free TCP port on localhost for a test's process group."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_multiband(path: Path, arr: np.ndarray, crs, transform, names: tuple[str, ...] | None) -> None:
    """One multiband GeoTIFF [C, H, W] with optional band descriptions."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", driver="GTiff", height=arr.shape[1], width=arr.shape[2], count=arr.shape[0],
                       dtype=arr.dtype, crs=crs, transform=transform) as dst:
        dst.write(arr)
        if names:
            for i, n in enumerate(names, start=1):
                dst.set_band_description(i, n)


def to_ben14k(v1_root: Path, out: Path, describe: bool = True) -> Path:
    """Convert a v1 set into the BEN-14K one-multiband-tif-per-patch layout with metadata.parquet."""
    ds = BigEarthNetMM(v1_root, s2_bands=12, normalize=False)
    rows = []
    for i in range(len(ds)):
        raw = ds.read_raw(i)
        s2_name, s1_name, split = ds.index.loc[i, ["s2_name", "s1_name", "split"]]
        with rasterio.open(ds.s2_paths(i)["B02"]) as src:
            crs, transform = src.crs, src.transform
        folder = {"val": "validation"}.get(split, split)
        s2 = np.rint(raw["s2"]).astype(np.uint16)
        write_multiband(out / "BigEarthNet-S2" / folder / f"{s2_name}.tif", s2, crs, transform,
                        S2_BANDS_12 if describe else None)
        write_multiband(out / "BigEarthNet-S1" / folder / f"{s1_name}.tif", raw["s1"], crs, transform,
                        S1_BANDS if describe else None)
        labels = [LABELS[j] for j in np.flatnonzero(raw["labels"])]
        rows.append({"patch_id": s2_name, "s1_name": s1_name, "labels": labels,
                     "split": {"val": "validation"}.get(split, split)})
    pd.DataFrame(rows).to_parquet(out / "metadata.parquet")
    return out

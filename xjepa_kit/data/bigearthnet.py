"""``BigEarthNetMM``: Sentinel-1 / Sentinel-2 pairs of BigEarthNet v1, v2 (reBEN) and BEN-14K."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import rasterio
import torch
from torch.utils.data import Dataset

from xjepa_kit.data import geotiff
from xjepa_kit.data.bands import S1_BANDS, S2_BANDS_10, S2_BANDS_12, fill_nonfinite, normalize, resample_bilinear
from xjepa_kit.data.bands import s2_bands as s2_band_list
from xjepa_kit.data.labels import to_multihot
from xjepa_kit.data.layouts import Layout, build_index, detect_layout
from xjepa_kit.data.naming import canonical_split, s1_v2_parent, s2_v2_parent
from xjepa_kit.errors import DataError

log = logging.getLogger(__name__)


class BigEarthNetMM(Dataset):
    """Co-registered Sentinel-1 / Sentinel-2 pairs with 19-class multi-labels.

    Dataset format:

    * v1 (BigEarthNet-MM 2021): ``BigEarthNet-v1.0/<s2_name>/<s2_name>_B01.tif … _B12.tif`` (uint16,
      10 m bands 120x120, 20 m 60x60, 60 m 20x20) and ``_labels_metadata.json`` (43-class CORINE
      ``labels``, UTM ``coordinates``, ``projection``); ``BigEarthNet-S1-v1.0/<s1_name>/<s1_name>_VV.tif,
      _VH.tif`` (float32 dB, 120x120) and JSON with ``corresponding_s2_patch``. Pairs and splits come
      from ``splits.csv`` in the root (``s2_name,s1_name,split``), ``split_file``, or else TU Berlin's
      official mapping and train/val/test lists (``bigearthnet-common``).
    * v2 / reBEN (2024): ``BigEarthNet-S2/<tile>/<patch_id>/<patch_id>_B01.tif …``,
      ``BigEarthNet-S1/<scene>/<s1_name>/<s1_name>_VV.tif, _VH.tif``, ``metadata.parquet`` with
      ``patch_id``, ``labels`` (19-class names), ``split``, ``s1_name``.
    * BEN-14K multiband copy: ``BigEarthNet-S2/<split>/<patch_id>.tif`` (12 bands B01…B12 without
      B10, or band descriptions naming them), ``BigEarthNet-S1/<split>/<s1_name>.tif`` (VV, VH) and
      ``metadata.parquet``.

    Each sample is a dict: ``s1`` float32 [2, 120, 120] (VV, VH), ``s2`` float32 [C, 120, 120]
    (C = 10 or 12, order of :data:`xjepa_kit.data.bands.S2_BANDS_10` / ``S2_BANDS_12``, 20 m and 60 m
    bands upsampled bilinearly), ``labels`` float32 [19] multi-hot in :data:`LABELS` order, ``id``
    (S2 name), ``s1_id``, ``bounds`` float64 [4] (west, south, east, north) in EPSG:4326.
    ``normalize=True`` standardises each band with the BigEarthNet statistics; ``False`` returns
    reflectance x 10000 and dB. Non-finite S1 values become the band mean and are counted in
    ``nonfinite_filled``.
    """

    def __init__(self, root: str | Path, split: str | None = None, version: str = "auto",
                 s2_bands: int = 10, normalize: bool = True, split_file: str | Path | None = None) -> None:
        self.layout: Layout = detect_layout(root, version)
        self.s2_band_names = s2_band_list(s2_bands)
        self.normalize = normalize
        self.split = canonical_split(split)
        index = build_index(self.layout, split_file)
        if self.split is not None:
            index = index[index["split"] == self.split].reset_index(drop=True)
            if len(index) == 0:
                raise DataError(f"{self.layout.root}: no pairs in split {self.split!r}; check the "
                                "split file or use split=None")
        self.index = index
        self.nonfinite_filled = 0
        self._multiband_paths: dict[str, Path] | None = None

    def __len__(self) -> int:
        return len(self.index)

    # -- paths -----------------------------------------------------------------------------
    def s2_paths(self, i: int) -> dict[str, Path]:
        """Band name -> GeoTIFF path of pair ``i``'s S2 patch (v1 and v2)."""
        name = self.index.at[i, "s2_name"]
        folder = self.layout.s2_dir / name
        if self.layout.kind == "v2":
            folder = self.layout.s2_dir / s2_v2_parent(name) / name
        return {b: folder / f"{name}_{b}.tif" for b in S2_BANDS_12}

    def s1_paths(self, i: int) -> dict[str, Path]:
        """Polarisation -> GeoTIFF path of pair ``i``'s S1 patch (v1 and v2)."""
        name = self.index.at[i, "s1_name"]
        folder = self.layout.s1_dir / name
        if self.layout.kind == "v2":
            folder = self.layout.s1_dir / s1_v2_parent(name) / name
        return {p: folder / f"{name}_{p}.tif" for p in S1_BANDS}

    def multiband_path(self, name: str) -> Path:
        """Path of a BEN-14K multiband tif (S1 or S2 name), found in any split folder."""
        if self._multiband_paths is None:
            self._multiband_paths = {p.stem: p for d in (self.layout.s2_dir, self.layout.s1_dir)
                                     for p in d.glob("*/*.tif")}
        if name not in self._multiband_paths:
            raise DataError(f"{self.layout.root}: no file {name}.tif under {self.layout.s2_dir.name}/<split>/ "
                            f"or {self.layout.s1_dir.name}/<split>/")
        return self._multiband_paths[name]

    # -- reading ---------------------------------------------------------------------------
    def read_raw(self, i: int) -> dict:
        """Pair ``i`` in physical units: ``s1`` [2, 120, 120] dB, ``s2`` [C, 120, 120] reflectance x 10000,
        ``labels`` [19], ``bounds`` (EPSG:4326) and ``crs`` (the patch's own, e.g. ``EPSG:32633``)."""
        row = self.index.iloc[i]
        with rasterio.Env(**geotiff.GDAL_ENV):
            if self.layout.kind == "ben14k":
                s2, s1, geo = self._read_multiband(row["s2_name"], row["s1_name"])
            else:
                s2, geo = geotiff.read_s2_bands(self.s2_paths(i), self.s2_band_names)
                paths = self.s1_paths(i)
                s1 = np.stack([geotiff.read_band(paths[p], s2.shape[-1])[0] for p in S1_BANDS])
        s1, n_bad = fill_nonfinite(s1.astype(np.float32, copy=False), S1_BANDS)
        if n_bad:
            self.nonfinite_filled += n_bad
            log.warning("%s: %d non-finite S1 values replaced by the band mean", row["s1_name"], n_bad)
        source = self.multiband_path(row["s2_name"]) if self.layout.kind == "ben14k" else self.s2_paths(i)["B02"]
        return {"s1": s1, "s2": s2, "labels": self.labels_of(i), "bounds": geotiff.bounds_wgs84(geo, source),
                "crs": geo[0].to_string() if geo[0] is not None else ""}

    def _read_multiband(self, s2_name: str, s1_name: str) -> tuple[np.ndarray, np.ndarray, object]:
        p2, p1 = self.multiband_path(s2_name), self.multiband_path(s1_name)
        arr2, desc2, geo = geotiff.read_multiband(p2)
        default = S2_BANDS_10 if arr2.shape[0] == len(S2_BANDS_10) else S2_BANDS_12  # order of undescribed bands
        s2 = geotiff.order_multiband(arr2, desc2, self.s2_band_names, default, p2)
        arr1, desc1, _ = geotiff.read_multiband(p1)
        s1 = geotiff.order_multiband(arr1, desc1, S1_BANDS, S1_BANDS, p1)
        for path, arr in ((p2, arr2), (p1, arr1)):  # BEN-14K copies hold every band on the 120 x 120 grid
            if arr.shape[-2:] != (geotiff.PATCH_PX, geotiff.PATCH_PX):
                raise DataError(f"{path}: shape {arr.shape}, expected {geotiff.PATCH_PX} x {geotiff.PATCH_PX} pixels per "
                                "band; re-export this patch (`xjepa data check` lists every such file)")
        return resample_bilinear(s2.astype(np.float32)), resample_bilinear(s1.astype(np.float32)), geo

    def bounds_of(self, i: int) -> geotiff.Bounds:
        """(west, south, east, north) in EPSG:4326 of pair ``i``, from its S2 file's georeferencing only."""
        with rasterio.Env(**geotiff.GDAL_ENV):
            if self.layout.kind == "ben14k":
                path = self.multiband_path(self.index.at[i, "s2_name"])
            else:
                path = self.s2_paths(i)["B02"]
            try:
                with rasterio.open(path) as src:
                    geo = (src.crs, src.bounds)
            except rasterio.errors.RasterioError as err:
                raise DataError(f"{path}: unreadable GeoTIFF ({err})") from None
        return geotiff.bounds_wgs84(geo, path)

    def labels_of(self, i: int) -> np.ndarray:
        """Multi-hot labels [19] of pair ``i`` (read from the JSON or the parquet metadata)."""
        row = self.index.iloc[i]
        if "labels" in self.index.columns:
            return to_multihot(row["labels"], source=str(self.layout.root / "metadata.parquet"))
        path = self.layout.s2_dir / row["s2_name"] / f"{row['s2_name']}_labels_metadata.json"
        return to_multihot(geotiff.read_json(path).get("labels", []), source=str(path))

    def __getitem__(self, i: int) -> dict:
        if not 0 <= i < len(self):
            raise IndexError(i)
        raw = self.read_raw(i)
        s1, s2, labels, bounds = raw["s1"], raw["s2"], raw["labels"], raw["bounds"]
        if self.normalize:
            s1, s2 = normalize(s1, S1_BANDS), normalize(s2, self.s2_band_names)
        row = self.index.iloc[i]
        return {"s1": torch.from_numpy(np.ascontiguousarray(s1, dtype=np.float32)),
                "s2": torch.from_numpy(np.ascontiguousarray(s2, dtype=np.float32)),
                "labels": torch.from_numpy(labels), "id": row["s2_name"], "s1_id": row["s1_name"],
                "bounds": torch.tensor(bounds, dtype=torch.float64)}


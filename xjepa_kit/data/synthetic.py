"""``make_synthetic``: a BigEarthNet-format synthetic S1/S2 set that the real readers read (DESIGN 3.6).

Scenes are placed in the ten BigEarthNet countries (Sumbul et al., IGARSS 2019: Austria, Belgium,
Finland, Ireland, Kosovo, Lithuania, Luxembourg, Portugal, Serbia, Switzerland) with real UTM
georeferencing (EPSG:326xx, 10 m pixels, 1200 m patches on a 1200 m grid), official-looking names,
v1 JSON or v2 ``metadata.parquet``, and a train/val/test split. Seeded and deterministic.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import rasterio
from rasterio.crs import CRS
from affine import Affine
from rasterio.warp import transform as warp_transform

from xjepa_kit.data.bands import S1_BANDS
from xjepa_kit.data.geotiff import GDAL_ENV
from xjepa_kit.data.labels import to_multihot, names_from_multihot
from xjepa_kit.data.layouts import SPLIT_FILE_NAME
from xjepa_kit.data.synthetic_physics import SynthOptions, growth_of_month
from xjepa_kit.data.synthetic_render import render_patch, sample_classes
from xjepa_kit.errors import XJepaError

# (lat, lon) near the middle of each BigEarthNet country, and the landscapes found there.
COUNTRIES: dict[str, tuple[float, float, dict[str, float]]] = {
    "Austria": (47.5, 14.5, {"farmland": 3, "forest": 3, "upland": 2, "urban": 1}),
    "Belgium": (50.6, 4.6, {"farmland": 4, "urban": 2, "forest": 1, "coast": 0.5}),
    "Finland": (63.0, 26.0, {"forest": 5, "wetland": 3, "farmland": 1}),
    "Ireland": (53.2, -8.0, {"farmland": 4, "wetland": 2, "upland": 1, "coast": 1}),
    "Kosovo": (42.6, 20.9, {"farmland": 3, "forest": 2, "upland": 2, "urban": 1}),
    "Lithuania": (55.3, 23.9, {"farmland": 4, "forest": 3, "wetland": 1, "coast": 0.5}),
    "Luxembourg": (49.7, 6.1, {"farmland": 3, "forest": 2, "urban": 1}),
    "Portugal": (39.6, -8.0, {"mediterranean": 4, "coast": 2, "forest": 2, "upland": 1}),
    "Serbia": (44.0, 20.8, {"farmland": 4, "forest": 2, "urban": 1}),
    "Switzerland": (46.8, 8.2, {"farmland": 2, "forest": 2, "upland": 3, "urban": 1}),
}
_LAT_BANDS = "CDEFGHJKLMNPQRSTUVWX"  # MGRS latitude bands, 8 degrees each from 80 S
_TILE_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"
PATCHES_PER_SCENE = 40


@dataclass(frozen=True)
class Scene:
    """One acquisition: where, when, which satellites."""

    country: str
    epsg: int
    tile: str
    ulx: float
    uly: float
    s2_time: datetime
    s1_time: datetime
    s2_sat: str
    s1_sat: str
    lat: float


def _make_scene(rng: np.random.Generator) -> Scene:
    country = str(rng.choice(sorted(COUNTRIES)))
    lat0, lon0, _ = COUNTRIES[country]
    lat, lon = lat0 + rng.uniform(-0.8, 0.8), lon0 + rng.uniform(-0.8, 0.8)
    zone = int((lon + 180) // 6) + 1
    epsg = 32600 + zone
    (x,), (y,) = warp_transform("EPSG:4326", f"EPSG:{epsg}", [lon], [lat])
    tile = f"{zone:02d}{_LAT_BANDS[int((lat + 80) // 8)]}" + "".join(rng.choice(list(_TILE_LETTERS), 2))
    day = datetime(2017, 6, 1) + timedelta(days=int(rng.integers(0, 365)))
    s2_time = day + timedelta(hours=9, seconds=int(rng.integers(0, 2 * 3600)))
    s1_time = day + timedelta(days=int(rng.integers(-2, 3)), hours=int(rng.choice([4, 16])),
                              seconds=int(rng.integers(0, 3600)))
    return Scene(country, epsg, tile, round(x / 1200) * 1200.0, round(y / 1200) * 1200.0,
                 s2_time, s1_time, str(rng.choice(["S2A", "S2B"])), str(rng.choice(["S1A", "S1B"])), lat)


def _v1_time(t: datetime) -> str:
    """``YYYYMMDDThhmmss`` with the leading hour zero dropped, as in real v1 names."""
    return t.strftime("%Y%m%dT") + str(int(t.strftime("%H"))) + t.strftime("%M%S")


def _names(scene: Scene, col: int, row: int, fmt: str) -> tuple[str, str]:
    s1 = f"{scene.s1_sat}_IW_GRDH_1SDV_{scene.s1_time:%Y%m%dT%H%M%S}_{scene.tile}_{col}_{row}"
    if fmt == "v1":
        return f"{scene.s2_sat}_MSIL2A_{_v1_time(scene.s2_time)}_{col}_{row}", s1
    orbit = (scene.s2_time.toordinal() * 7) % 143 + 1
    return f"{scene.s2_sat}_MSIL2A_{scene.s2_time:%Y%m%dT%H%M%S}_N9999_R{orbit:03d}_T{scene.tile}_{col}_{row}", s1


def _write_tif(path: Path, arr: np.ndarray, crs: CRS, ulx: float, uly: float, res: float) -> None:
    with rasterio.open(path, "w", driver="GTiff", height=arr.shape[0], width=arr.shape[1], count=1,
                       dtype=arr.dtype, crs=crs, transform=Affine(res, 0.0, ulx, 0.0, -res, uly)) as dst:
        dst.write(arr, 1)


def make_synthetic(out: str | Path = "data/synthetic", n: int = 4000, seed: int = 0, format: str = "v1",
                   options: SynthOptions | None = None, splits: tuple[float, float, float] = (0.5, 0.25, 0.25),
                   overwrite: bool = False) -> Path:
    """Write ``n`` synthetic S1/S2 pairs in the BigEarthNet ``format`` (``v1`` or ``v2``) to ``out``.

    The set is written into a temporary sibling folder and renamed into place at the end.
    """
    if format not in ("v1", "v2"):
        raise XJepaError(f"format must be 'v1' or 'v2', got {format!r}")
    if n < 1:
        raise XJepaError(f"n must be at least 1, got {n}")
    out, opts = Path(out), options or SynthOptions()
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise XJepaError(f"{out} exists and is not empty; choose another --out or pass overwrite=True (--force)")
    out.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    s2_root = tmp / ("BigEarthNet-v1.0" if format == "v1" else "BigEarthNet-S2")
    s1_root = tmp / ("BigEarthNet-S1-v1.0" if format == "v1" else "BigEarthNet-S1")
    rows = []
    try:
        with rasterio.Env(**GDAL_ENV):
            for start in range(0, n, PATCHES_PER_SCENE):
                scene = _make_scene(rng)
                rows += _write_scene(rng, scene, min(PATCHES_PER_SCENE, n - start), s2_root, s1_root, format, opts)
        split_names = rng.choice(["train", "val", "test"], size=len(rows), p=list(splits))
        meta = pd.DataFrame(rows)
        meta["split"] = split_names
        if format == "v1":
            meta[["s2_name", "s1_name", "split"]].to_csv(tmp / SPLIT_FILE_NAME, index=False)
        else:
            meta["split"] = meta["split"].replace({"val": "validation"})
            meta = meta.rename(columns={"s2_name": "patch_id"})
            meta["contains_seasonal_snow"] = False
            meta["contains_cloud_or_shadow"] = False
            meta[["patch_id", "labels", "split", "country", "s1_name", "s2v1_name",
                  "contains_seasonal_snow", "contains_cloud_or_shadow"]].to_parquet(tmp / "metadata.parquet")
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def _write_scene(rng: np.random.Generator, scene: Scene, count: int, s2_root: Path, s1_root: Path,
                 fmt: str, opts: SynthOptions) -> list[dict]:
    crs = CRS.from_epsg(scene.epsg)
    wkt = crs.to_wkt()
    growth = growth_of_month(scene.s2_time.month, scene.lat)
    gain = 1.0 + rng.uniform(-opts.illumination, opts.illumination)
    db = rng.uniform(-opts.s1_angle_db, opts.s1_angle_db)
    landscapes = COUNTRIES[scene.country][2]
    p = np.asarray(list(landscapes.values()), float)
    cells = rng.choice(90 * 90, size=count, replace=False)
    rows = []
    for cell in cells:
        col, row = int(cell % 90), int(cell // 90)
        s2_name, s1_name = _names(scene, col, row, fmt)
        landscape = str(rng.choice(list(landscapes), p=p / p.sum()))
        bands, s1, labels = render_patch(rng, sample_classes(rng, landscape), growth, gain, db, opts)
        ulx, uly = scene.ulx + col * 1200.0, scene.uly - row * 1200.0
        s2_dir = s2_root / (s2_name if fmt == "v1" else f"{s2_name.rsplit('_', 2)[0]}/{s2_name}")
        s1_dir = s1_root / (s1_name if fmt == "v1" else f"{s1_name.rsplit('_', 3)[0]}/{s1_name}")
        s2_dir.mkdir(parents=True)
        s1_dir.mkdir(parents=True)
        for b, arr in bands.items():
            _write_tif(s2_dir / f"{s2_name}_{b}.tif", arr, crs, ulx, uly, 1200.0 / arr.shape[0])
        for c, pol in enumerate(S1_BANDS):
            _write_tif(s1_dir / f"{s1_name}_{pol}.tif", s1[c], crs, ulx, uly, 10.0)
        if fmt == "v1":
            coords = {"ulx": ulx, "uly": uly, "lrx": ulx + 1200, "lry": uly - 1200}
            (s2_dir / f"{s2_name}_labels_metadata.json").write_text(json.dumps({
                "labels": labels, "coordinates": coords, "projection": wkt,
                "tile_source": f"{scene.s2_sat}_MSIL1C_{_v1_time(scene.s2_time)}_N0205_R022_T{scene.tile}",
                "acquisition_date": f"{scene.s2_time:%Y-%m-%d %H:%M:%S}"}))
            s1_coords = {"ulx": ulx, "uly": uly, "lrx": ulx + 1200, "lly": uly - 1200}  # real S1 JSON says lly
            (s1_dir / f"{s1_name}_labels_metadata.json").write_text(json.dumps({
                "labels": labels, "coordinates": s1_coords, "projection": wkt,
                "corresponding_s2_patch": s2_name, "scene_source": s1_name.rsplit("_", 3)[0],
                "acquisition_time": f"{scene.s1_time:%Y-%m-%dT%H:%M:%S}"}))
        rows.append({"s2_name": s2_name, "s1_name": s1_name, "country": scene.country,
                     "labels": names_from_multihot(to_multihot(labels)),
                     "s2v1_name": _names(scene, col, row, "v1")[0]})
    return rows

"""Tiny synthetic fMoW-RGB and fMoW-Sentinel folders in the real layouts, for tests and demos.

No fMoW pixels are ever written (the dataset's licence is non-commercial share-alike): images are
flat grey boxes and constant-valued bands whose values encode category, location and image id
(see :func:`fake_rgb_value` and :func:`fake_sentinel_value`), so a test can tell which files
were paired and check the raw values exactly after bilinear resizing.

Timestamps: RGB image ``t`` of a location is taken ``30 * t`` days after the location's start
date, Sentinel image ``t`` ``30 * (images - 1 - t) + 1`` days after it, so ``location`` pairing
picks Sentinel image ``images - 1 - t`` (reversed), unlike ``exact`` pairing.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

RGB_W, RGB_H = 64, 48  # fake JPEG size (width, height); boxes lie on the 16-pixel JPEG grid
S_PX, S_RES = 32, 10.0  # fake Sentinel GeoTIFF: 32 x 32 pixels of 10 m
_EPOCH = datetime(2016, 1, 1, 10, 30, tzinfo=timezone.utc)
_FOLDER = {"train": "train", "val": "val", "validation": "val", "test": "test_gt", "test_gt": "test_gt"}


def _cat_index(category: str) -> int:
    from xjepa_kit.data.fmow import FMOW_CATEGORIES

    return FMOW_CATEGORIES.index(category)


def fake_rgb_value(category: str) -> tuple[int, int]:
    """(grey value inside the box, grey value outside it) of a fake RGB image of ``category``."""
    inside = 20 + 3 * _cat_index(category)
    return inside, 255 - inside


def fake_sentinel_value(category: str, location: int, image_id: int, band: int) -> int:
    """Constant uint16 value of band ``band`` (0..12, B1..B12 order) of a fake Sentinel image."""
    return 1000 + 200 * band + 50 * _cat_index(category) + 10 * image_id + location


def fake_origin(category: str, location: int) -> tuple[float, float]:
    """(lon, lat) of the upper-left corner of a fake Sentinel image (northern hemisphere)."""
    k = _cat_index(category)
    return -120.0 + 3.7 * k + 0.05 * location, 10.0 + 0.6 * k + 0.1 * location


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _write_sentinel(path: Path, category: str, loc: int, img: int) -> str:
    """Write one 13-band uint16 GeoTIFF in its UTM zone; returns its footprint as WKT lon/lat."""
    import rasterio
    from rasterio.transform import Affine
    from rasterio.warp import transform

    lon, lat = fake_origin(category, loc)
    crs = f"EPSG:{32600 + int((lon + 180) // 6) + 1}"
    (x,), (y,) = transform("EPSG:4326", crs, [lon], [lat])
    data = np.stack([np.full((S_PX, S_PX), fake_sentinel_value(category, loc, img, b), np.uint16)
                     for b in range(13)])
    profile = dict(driver="GTiff", width=S_PX, height=S_PX, count=13, dtype="uint16", crs=crs,
                   transform=Affine(S_RES, 0.0, x, 0.0, -S_RES, y))
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    side = S_PX * S_RES
    xs, ys = [x, x + side, x + side, x, x], [y, y, y - side, y - side, y]
    lons, lats = transform(crs, "EPSG:4326", xs, ys)
    return "POLYGON ((" + ", ".join(f"{a:.6f} {b:.6f}" for a, b in zip(lons, lats)) + "))"


def _write_rgb(stem: Path, category: str, box: list[int], timestamp: str, wkt: str) -> None:
    """Write ``<stem>.jpg`` (grey box on a contrasting background) and ``<stem>.json``."""
    from PIL import Image

    inside, outside = fake_rgb_value(category)
    arr = np.full((RGB_H, RGB_W, 3), outside, np.uint8)
    x, y, w, h = box
    arr[y:y + h, x:x + w] = inside
    Image.fromarray(arr).save(stem.with_suffix(".jpg"), quality=95)
    meta = {
        "bounding_boxes": [{"box": box, "category": category, "ID": 1}],
        "raw_location": wkt, "gsd": 0.5, "utm": "11S", "timestamp": timestamp,
        "img_width": RGB_W, "img_height": RGB_H,
    }
    stem.with_suffix(".json").write_text(json.dumps(meta))


def make_fake_fmow(
    out: Path,
    categories: tuple[str, ...] = ("airport", "zoo", "port"),
    locations: int = 2,
    images: int = 2,
    splits: tuple[str, ...] = ("train", "val"),
    seed: int = 0,
) -> tuple[Path, Path]:
    """Write fake fMoW-RGB and fMoW-Sentinel trees under ``out``; returns (rgb_root, sentinel_root).

    Every split gets ``locations`` locations per category with ``images`` RGB images and the same
    image ids on the Sentinel side (GeoTIFFs 13 x 32 x 32 uint16, CSV per split). ``test`` is
    written as ``test_gt``. ``seed`` moves the boxes and the start dates.
    """
    import pandas as pd

    rng = np.random.default_rng(seed)
    out = Path(out)
    rgb_root, sen_root = out / "fmow-rgb", out / "fmow-sentinel"
    for split in splits:
        folder = _FOLDER[split]
        rows = []
        for cat in categories:
            for loc in range(locations):
                start = _EPOCH + timedelta(days=int(rng.integers(0, 300)))
                stem = f"{cat}_{loc}"
                rdir, sdir = rgb_root / folder / cat / stem, sen_root / folder / cat / stem
                rdir.mkdir(parents=True, exist_ok=True)
                sdir.mkdir(parents=True, exist_ok=True)
                for t in range(images):
                    s_time = start + timedelta(days=30 * (images - 1 - t) + 1)
                    wkt = _write_sentinel(sdir / f"{stem}_{t}.tif", cat, loc, t)
                    rows.append((cat, loc, t, _iso(s_time), wkt))
                    w, h = int(rng.choice([16, 32])), int(rng.choice([16, 32]))
                    box = [16 * int(rng.integers(0, (RGB_W - w) // 16 + 1)),
                           16 * int(rng.integers(0, (RGB_H - h) // 16 + 1)), w, h]
                    _write_rgb(rdir / f"{stem}_{t}_rgb", cat, box, _iso(start + timedelta(days=30 * t)), wkt)
        cols = ["category", "location_id", "image_id", "timestamp", "polygon"]
        pd.DataFrame(rows, columns=cols).to_csv(sen_root / f"{folder}.csv", index=False)
    return rgb_root, sen_root

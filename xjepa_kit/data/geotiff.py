"""Reading one BigEarthNet pair from GeoTIFFs with rasterio: bands, shapes, bounds, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import rasterio
from rasterio.errors import RasterioError
from rasterio.warp import transform_bounds

from xjepa_kit.data.bands import PATCH_PX, S2_RESOLUTION_M, resample_bilinear
from xjepa_kit.errors import DataError

# GDAL lists a file's folder on open to look for side-car files; BigEarthNet has none, and
# skipping the listing makes each open faster.
GDAL_ENV = {"GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR"}

Bounds = tuple[float, float, float, float]


def read_band(path: Path, expected: int | None = None) -> tuple[np.ndarray, object]:
    """Read band 1 of a single-band GeoTIFF -> (array [h, w], rasterio dataset profile info).

    Raises DataError naming the file when it is missing, unreadable or of the wrong size.
    """
    if not path.exists():
        raise DataError(f"{path}: file is missing; re-download this patch or run `xjepa data check`")
    try:
        with rasterio.open(path) as src:
            arr = src.read(1)
            geo = (src.crs, src.bounds)
    except RasterioError as err:
        raise DataError(f"{path}: unreadable GeoTIFF ({err}); the file is corrupt or truncated, "
                        "re-download it") from None
    if expected is not None and arr.shape != (expected, expected):
        raise DataError(f"{path}: shape {arr.shape}, expected ({expected}, {expected}) for this band")
    return arr, geo


def read_multiband(path: Path) -> tuple[np.ndarray, tuple[str | None, ...], object]:
    """Read all bands of a multiband GeoTIFF -> (array [C, h, w], band descriptions, (crs, bounds))."""
    if not path.exists():
        raise DataError(f"{path}: file is missing; re-download this patch or run `xjepa data check`")
    try:
        with rasterio.open(path) as src:
            return src.read(), tuple(src.descriptions), (src.crs, src.bounds)
    except RasterioError as err:
        raise DataError(f"{path}: unreadable GeoTIFF ({err}); re-download it") from None


def native_px(band: str) -> int:
    """Side length in pixels of a BigEarthNet S2 band at its native resolution (120/60/20)."""
    return PATCH_PX * 10 // S2_RESOLUTION_M[band]


def read_s2_bands(paths: dict[str, Path], bands: tuple[str, ...]) -> tuple[np.ndarray, object]:
    """Read single-band S2 files, upsample 20 m / 60 m bands bilinearly -> ([C, 120, 120], geo)."""
    out = np.empty((len(bands), PATCH_PX, PATCH_PX), dtype=np.float32)
    geo = None
    by_size: dict[int, list[tuple[int, np.ndarray]]] = {}
    for c, b in enumerate(bands):
        arr, g = read_band(paths[b], native_px(b))
        if geo is None or b == "B02":
            geo = g
        by_size.setdefault(arr.shape[0], []).append((c, arr))
    for size, items in by_size.items():
        stack = np.stack([a for _, a in items]).astype(np.float32)
        if size != PATCH_PX:
            stack = resample_bilinear(stack, PATCH_PX)
        for (c, _), band in zip(items, stack):
            out[c] = band
    return out, geo


def order_multiband(arr: np.ndarray, descriptions: tuple[str | None, ...], wanted: tuple[str, ...],
                    default_order: tuple[str, ...], path: Path) -> np.ndarray:
    """Pick ``wanted`` bands from a multiband array [C, h, w] by description, else by ``default_order``."""
    names = [d.upper() if d else None for d in descriptions]
    if all(names) and set(wanted) <= set(names):
        order = [names.index(b) for b in wanted]
    elif arr.shape[0] == len(default_order) and set(wanted) <= set(default_order):
        order = [default_order.index(b) for b in wanted]  # undescribed, or named otherwise (B1 ... B12, VV_dB)
    elif all(names):
        lacking = [b for b in wanted if b not in names]
        hint = " (a 10-band copy: read it with s2_bands=10, the default)" if set(lacking) <= {"B01", "B09"} else ""
        raise DataError(f"{path}: its bands are {', '.join(names)}; {', '.join(lacking)} missing{hint}")
    else:
        raise DataError(f"{path}: {arr.shape[0]} bands without band descriptions; expected "
                        f"{len(default_order)} bands in the order {', '.join(default_order)}")
    return arr[order]


def bounds_wgs84(geo: object, source: object = "GeoTIFF") -> Bounds:
    """(west, south, east, north) in EPSG:4326 of a (crs, bounds) pair read from ``source`` (named in errors)."""
    crs, b = geo
    if crs is None:
        raise DataError(f"{source}: GeoTIFF without a CRS, so the patch cannot be placed on the map; "
                        "re-download it or restore its georeferencing (`xjepa data check` lists every such file)")
    return tuple(float(v) for v in transform_bounds(crs, "EPSG:4326", *b))  # type: ignore[return-value]


def read_json(path: Path) -> dict:
    """Read a BigEarthNet ``*_labels_metadata.json``, with a clear error when broken."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{path}: metadata JSON is missing; re-download this patch") from None
    except ValueError as err:
        raise DataError(f"{path}: invalid JSON ({err})") from None


def json_corners(meta: dict, path: Path) -> tuple[float, float, float, float]:
    """(ulx, uly, lrx, lry) from v1 JSON ``coordinates``; real S1 files say ``lly`` for ``lry``."""
    c = meta.get("coordinates", {})
    lry = c.get("lry", c.get("lly"))
    if lry is None or not all(k in c for k in ("ulx", "uly", "lrx")):
        raise DataError(f"{path}: 'coordinates' needs ulx, uly, lrx and lry (or lly)")
    return float(c["ulx"]), float(c["uly"]), float(c["lrx"]), float(lry)

"""fMoW-RGB / fMoW-Sentinel pairs (DESIGN 3.4): one RGB crop and one 10-band Sentinel-2 image.

Readers for the fMoW-RGB release (Christie et al., CVPR 2018) and the fMoW-Sentinel release of
SatMAE (Cong et al., NeurIPS 2022), joined per image (``exact``) or per location (``location``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from xjepa_kit.data.bands import (
    FMOW_RGB_MEAN, FMOW_RGB_STD, FMOW_SENTINEL_BANDS_10, FMOW_SENTINEL_BANDS_13,
    FMOW_SENTINEL_MEAN, FMOW_SENTINEL_STD, resample_bilinear,
)
from xjepa_kit.errors import DataError

# The 62 fMoW categories in alphabetical order (the class index). Source: Christie et al.,
# "Functional Map of the World", CVPR 2018 (the category list of the fMoW dataset release).
FMOW_CATEGORIES: tuple[str, ...] = (
    "airport", "airport_hangar", "airport_terminal", "amusement_park", "aquaculture",
    "archaeological_site", "barn", "border_checkpoint", "burial_site", "car_dealership",
    "construction_site", "crop_field", "dam", "debris_or_rubble", "educational_institution",
    "electric_substation", "factory_or_powerplant", "fire_station", "flooded_road", "fountain",
    "gas_station", "golf_course", "ground_transportation_station", "helipad", "hospital",
    "impoverished_settlement", "interchange", "lake_or_pond", "lighthouse", "military_facility",
    "multi-unit_residential", "nuclear_powerplant", "office_building", "oil_or_gas_facility",
    "park", "parking_lot_or_garage", "place_of_worship", "police_station", "port", "prison",
    "race_track", "railway_bridge", "recreational_facility", "road_bridge", "runway", "shipyard",
    "shopping_mall", "single-unit_residential", "smokestack", "solar_farm", "space_facility",
    "stadium", "storage_tank", "surface_mine", "swimming_pool", "toll_booth", "tower",
    "tunnel_opening", "waste_disposal", "water_treatment_facility", "wind_farm", "zoo",
)
assert len(FMOW_CATEGORIES) == 62
_CAT_INDEX = {c: i for i, c in enumerate(FMOW_CATEGORIES)}

# Canonical split -> (folder names tried in order, CSV names tried in order).
_SPLITS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "train": (("train",), ("train.csv",)),
    "val": (("val", "validation"), ("val.csv", "validation.csv")),
    "test": (("test_gt", "test"), ("test_gt.csv", "test.csv")),
}
_SPLIT_ALIASES = {"train": "train", "val": "val", "validation": "val", "test": "test", "test_gt": "test"}
_KEEP = [FMOW_SENTINEL_BANDS_13.index(b) for b in FMOW_SENTINEL_BANDS_10]
_S_MEAN = np.array([FMOW_SENTINEL_MEAN[i] for i in _KEEP], dtype=np.float32).reshape(-1, 1, 1)
_S_STD = np.array([FMOW_SENTINEL_STD[i] for i in _KEEP], dtype=np.float32).reshape(-1, 1, 1)
_RGB_MEAN = np.array(FMOW_RGB_MEAN, dtype=np.float32).reshape(3, 1, 1)
_RGB_STD = np.array(FMOW_RGB_STD, dtype=np.float32).reshape(3, 1, 1)
_NAT = np.iinfo(np.int64).min  # "no timestamp" marker in nanoseconds


def _split_dir(root: Path, split: str, what: str) -> Path:
    """The existing split folder under ``root`` (e.g. ``test_gt`` or ``test``) or DataError."""
    if not root.is_dir():
        raise DataError(f"{what} root {root} does not exist; download it or fix the path")
    for name in _SPLITS[split][0]:
        if (root / name).is_dir():
            return root / name
    raise DataError(
        f"{what} root {root} has no split folder for {split!r} (tried {', '.join(_SPLITS[split][0])});"
        " check the root points at the folder that holds train/ val/ test_gt/"
    )


def _category(name: str, where: Path) -> int:
    if name not in _CAT_INDEX:
        raise DataError(f"unknown fMoW category {name!r} in {where}; expected one of the 62 fMoW categories "
                        "(lower case, e.g. airport)")
    return _CAT_INDEX[name]


def _to_ns(ts: Any) -> int:
    """ISO timestamp -> UTC nanoseconds since epoch; missing or unparsable -> _NAT."""
    t = pd.to_datetime(ts, utc=True, errors="coerce", format="ISO8601")
    return _NAT if pd.isna(t) else int(t.as_unit("ns").value)


def _scan_rgb(split_dir: Path) -> list[tuple[str, int, int, Path]]:
    """(category, location_id, image_id, jpeg path) of every ``*_rgb.jpg`` under ``split_dir``."""
    out = []
    for cat_entry in sorted(os.scandir(split_dir), key=lambda e: e.name):
        if not cat_entry.is_dir() or cat_entry.name.startswith("."):
            continue
        cat = cat_entry.name
        _category(cat, Path(cat_entry.path))
        for loc_entry in os.scandir(cat_entry.path):
            loc = loc_entry.name[len(cat) + 1:]
            if not loc_entry.is_dir() or not loc_entry.name.startswith(cat + "_") or not loc.isdigit():
                continue
            for f in os.scandir(loc_entry.path):
                t = f.name[len(loc_entry.name) + 1: -len("_rgb.jpg")]
                if f.name.startswith(loc_entry.name + "_") and f.name.endswith("_rgb.jpg") and t.isdigit():
                    out.append((cat, int(loc), int(t), Path(f.path)))
    return sorted(out, key=lambda r: (r[0], r[1], r[2]))


def _scan_sentinel(root: Path, split: str, split_dir: Path) -> pd.DataFrame:
    """Sentinel index (category, location_id, image_id, ts) from the split CSV, else the folders."""
    csv = next((root / n for n in _SPLITS[split][1] if (root / n).is_file()), None)
    if csv is not None:
        try:
            df = pd.read_csv(csv, usecols=["category", "location_id", "image_id", "timestamp"])
        except ValueError as e:  # missing columns or not a CSV
            raise DataError(f"cannot read fMoW-Sentinel index {csv} ({e}); delete it to scan folders") from e
        unknown = (~df["category"].isin(list(_CAT_INDEX))).to_numpy()
        if unknown.any():  # one vectorised test over the whole CSV (fMoW's train list has ~700k rows)
            row = int(unknown.argmax())
            _category(str(df["category"].iloc[row]), Path(f"{csv}, line {row + 2}"))
        for column in ("location_id", "image_id"):
            ids = pd.to_numeric(df[column], errors="coerce")
            bad = ids.isna() | (ids != ids.round())
            if bad.any():
                row = int(bad.to_numpy().argmax())
                value = df[column].iloc[row]
                what = "is empty" if pd.isna(value) else f"{str(value)!r} is not a whole number"
                raise DataError(f"{csv}, line {row + 2}: {column} {what}; fix or delete that line")
            df[column] = ids.astype(int)
        ts = pd.to_datetime(df["timestamp"], utc=True, errors="coerce", format="ISO8601").dt.as_unit("ns")
        df["ts"] = ts.fillna(pd.Timestamp(0, tz="UTC")).astype("int64").where(ts.notna(), _NAT)
        return df[["category", "location_id", "image_id", "ts"]]
    rows = []
    for cat_entry in os.scandir(split_dir):
        if not cat_entry.is_dir() or cat_entry.name.startswith("."):
            continue
        cat = cat_entry.name
        _category(cat, Path(cat_entry.path))
        for loc_entry in os.scandir(cat_entry.path):
            loc = loc_entry.name[len(cat) + 1:]
            if not loc_entry.is_dir() or not loc.isdigit():
                continue
            for f in os.scandir(loc_entry.path):
                img = f.name[len(loc_entry.name) + 1: -len(".tif")]
                if f.name.startswith(loc_entry.name + "_") and f.name.endswith(".tif") and img.isdigit():
                    rows.append((cat, int(loc), int(img), _NAT))
    return pd.DataFrame(rows, columns=["category", "location_id", "image_id", "ts"])


def _read_json(path: Path) -> dict[str, Any]:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise DataError(f"cannot read fMoW metadata {path} ({e}); re-download this image's JSON") from e


class FMoWPairs(Dataset):
    """Paired fMoW-RGB crops and fMoW-Sentinel images, one sample per paired RGB image.

    Dataset format:

    * fMoW-RGB (``rgb_root``)::

        <split>/<category>/<category>_<loc>/<category>_<loc>_<t>_rgb.jpg
        <split>/<category>/<category>_<loc>/<category>_<loc>_<t>_rgb.json

      The JSON holds ``bounding_boxes`` (the first entry's ``box`` = [x, y, w, h] in pixels is
      used), ``raw_location`` (WKT), ``gsd``, ``utm`` and ``timestamp`` (ISO 8601). The test split
      folder may be ``test_gt`` (labelled, preferred) or ``test``.
    * fMoW-Sentinel (``sentinel_root``, SatMAE)::

        <split>/<category>/<category>_<location_id>/<category>_<location_id>_<image_id>.tif
        train.csv  val.csv  test_gt.csv   (category, location_id, image_id, timestamp, polygon)

      Each GeoTIFF has 13 uint16 bands B1..B12 incl. B8A and B10. The CSV is the index of the
      split; without it the split folder is scanned instead and timestamps are unknown (then
      ``location`` pairing treats all images of a location as tied and takes the lowest id).

    Splits: ``train``, ``val`` (or ``validation``), ``test``. Pairing ``exact`` joins on
    (category, location_id, image_id) with the RGB ``<t>`` as image id; ``location`` joins on
    (category, location_id) and takes the Sentinel image nearest in time (ties -> lowest
    image_id). RGB images without a partner are dropped and counted in ``self.unpaired``.

    Sample: ``rgb`` float32 [3, size, size] (box plus ``context`` x its width/height on each side,
    clipped to the image, bilinear), ``sentinel`` float32 [10, size, size] (B1, B9, B10 dropped,
    order ``FMOW_SENTINEL_BANDS_10``), ``label`` int64 [], ``labels`` float32 one-hot [62],
    ``id`` str (``<category>_<loc>_<t>``), ``bounds`` (west, south, east, north) in EPSG:4326.
    With ``normalize=True`` both are standardised with the SatMAE statistics; otherwise ``rgb``
    is in [0, 1] and ``sentinel`` is raw reflectance.
    """

    def __init__(
        self,
        rgb_root: str | Path,
        sentinel_root: str | Path,
        split: str = "train",
        pairing: str = "exact",
        size: int = 96,
        normalize: bool = True,
        context: float = 0.5,
    ) -> None:
        if split not in _SPLIT_ALIASES:
            raise DataError(f"unknown fMoW split {split!r}; use train, val (validation) or test")
        if pairing not in ("exact", "location"):
            raise DataError(f"pairing must be 'exact' or 'location', got {pairing!r}")
        self.rgb_root, self.sentinel_root = Path(rgb_root), Path(sentinel_root)
        self.split, self.pairing = _SPLIT_ALIASES[split], pairing
        self.size, self.normalize, self.context = int(size), bool(normalize), float(context)
        self.rgb_dir = _split_dir(self.rgb_root, self.split, "fMoW-RGB")
        self.sentinel_dir = _split_dir(self.sentinel_root, self.split, "fMoW-Sentinel")
        sen = _scan_sentinel(self.sentinel_root, self.split, self.sentinel_dir)
        by_loc: dict[tuple[str, int], list[tuple[int, int]]] = {}
        for cat, loc, img, ts in sen.itertuples(index=False):
            by_loc.setdefault((str(cat), int(loc)), []).append((int(img), int(ts)))
        #: (category, location_id, rgb image id, sentinel image id, jpeg path)
        self.pairs: list[tuple[str, int, int, int, Path]] = []
        self.unpaired = 0
        for cat, loc, t, jpg in _scan_rgb(self.rgb_dir):
            cands = by_loc.get((cat, loc), [])
            match = self._match(t, jpg, cands)
            if match is None:
                self.unpaired += 1
            else:
                self.pairs.append((cat, loc, t, match, jpg))
        if not self.pairs:
            raise DataError(
                f"no fMoW RGB/Sentinel pairs for split {split!r} between {self.rgb_root} and "
                f"{self.sentinel_root} ({self.unpaired} RGB images had no partner); check both roots"
            )

    def _match(self, t: int, jpg: Path, cands: list[tuple[int, int]]) -> int | None:
        """Sentinel image id paired with RGB image ``t`` of one location, or None."""
        if not cands:
            return None
        if self.pairing == "exact":
            return t if any(img == t for img, _ in cands) else None
        rgb_ts = _to_ns(_read_json(jpg.with_suffix(".json")).get("timestamp"))

        def gap(c: tuple[int, int]) -> tuple[float, int]:
            unknown = rgb_ts == _NAT or c[1] == _NAT
            return (0.0 if unknown else abs(float(c[1]) - float(rgb_ts)), c[0])

        return min(cands, key=gap)[0]

    def __len__(self) -> int:
        return len(self.pairs)

    def sentinel_path(self, category: str, location_id: int, image_id: int) -> Path:
        """Path of one fMoW-Sentinel GeoTIFF in this split."""
        stem = f"{category}_{location_id}"
        return self.sentinel_dir / category / stem / f"{stem}_{image_id}.tif"

    def _read_rgb(self, jpg: Path) -> np.ndarray:
        """Box crop with context -> float32 [3, size, size] in [0, 1] (or normalised)."""
        from PIL import Image

        meta = _read_json(jpg.with_suffix(".json"))
        try:
            x, y, w, h = (float(v) for v in meta["bounding_boxes"][0]["box"])
        except (KeyError, IndexError, TypeError, ValueError) as e:
            raise DataError(f"{jpg.with_suffix('.json')} has no bounding_boxes[0].box = [x, y, w, h]") from e
        try:
            with Image.open(jpg) as im:
                arr = np.asarray(im.convert("RGB"), dtype=np.float32)
        except OSError as e:
            raise DataError(f"cannot read fMoW-RGB image {jpg} ({e}); re-download it") from e
        H, W = arr.shape[:2]
        x0, x1 = max(0, int(np.floor(x - self.context * w))), min(W, int(np.ceil(x + w + self.context * w)))
        y0, y1 = max(0, int(np.floor(y - self.context * h))), min(H, int(np.ceil(y + h + self.context * h)))
        if x1 <= x0 or y1 <= y0:
            raise DataError(f"bounding box {[x, y, w, h]} of {jpg} lies outside the {W}x{H} image")
        crop = resample_bilinear(arr[y0:y1, x0:x1].transpose(2, 0, 1), self.size) / 255.0
        return (crop - _RGB_MEAN) / _RGB_STD if self.normalize else crop

    def _read_sentinel(self, tif: Path) -> tuple[np.ndarray, tuple[float, float, float, float]]:
        """10 kept bands -> float32 [10, size, size] and (west, south, east, north) in EPSG:4326."""
        import rasterio
        from rasterio.errors import RasterioError
        from rasterio.warp import transform_bounds

        try:
            with rasterio.Env(GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR"), rasterio.open(tif) as src:
                if src.count != 13:
                    raise DataError(
                        f"{tif} has {src.count} bands, fMoW-Sentinel needs 13 (B1..B12 with B8A and "
                        "B10); re-download or re-export this file"
                    )
                data = src.read([i + 1 for i in _KEEP]).astype(np.float32)
                if src.crs is None:
                    raise DataError(f"{tif} has no CRS; fMoW-Sentinel GeoTIFFs must be georeferenced")
                bounds = transform_bounds(src.crs, "EPSG:4326", *src.bounds)
        except RasterioError as e:
            raise DataError(f"cannot read fMoW-Sentinel image {tif} ({e}); check the file exists") from e
        img = resample_bilinear(data, self.size)
        img = (img - _S_MEAN) / _S_STD if self.normalize else img
        return img, tuple(float(b) for b in bounds)  # type: ignore[return-value]

    def __getitem__(self, i: int) -> dict[str, Any]:
        cat, loc, t, s_img, jpg = self.pairs[i]
        label = _CAT_INDEX[cat]
        sentinel, bounds = self._read_sentinel(self.sentinel_path(cat, loc, s_img))
        onehot = torch.zeros(len(FMOW_CATEGORIES), dtype=torch.float32)
        onehot[label] = 1.0
        return {
            "rgb": torch.from_numpy(np.ascontiguousarray(self._read_rgb(jpg), dtype=np.float32)),
            "sentinel": torch.from_numpy(np.ascontiguousarray(sentinel, dtype=np.float32)),
            "label": torch.tensor(label, dtype=torch.int64),
            "labels": onehot,
            "id": f"{cat}_{loc}_{t}",
            "bounds": bounds,
        }

"""``check(root)``: validate a BigEarthNet-format dataset without stopping at the first problem (DESIGN 3.8)."""

from __future__ import annotations

import math
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio
from rasterio.errors import RasterioError

from xjepa_kit.data import geotiff
from xjepa_kit.data.naming import is_s1_name, is_s2_name
from xjepa_kit.errors import DataError


@dataclass(frozen=True)
class Problem:
    """One finding: ``kind`` is missing, unreadable, shape, dtype, georef, nonfinite, label, unpaired or mismatch."""

    kind: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"[{self.kind}] {self.path}: {self.message}"


@dataclass
class CheckReport:
    """All problems found in a dataset, with the number of pairs looked at."""

    root: str
    pairs: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def counts(self) -> dict[str, int]:
        return dict(Counter(p.kind for p in self.problems))

    def summary(self, limit: int = 50) -> str:
        """Human-readable report: every problem (up to ``limit``) then counts per kind."""
        if self.ok:
            return f"{self.root}: {self.pairs} pairs checked, no problems"
        lines = [str(p) for p in self.problems[:limit]]
        if len(self.problems) > limit:
            lines.append(f"... and {len(self.problems) - limit} more")
        kinds = ", ".join(f"{k}: {v}" for k, v in sorted(self.counts().items()))
        lines.append(f"{self.root}: {self.pairs} pairs checked, {len(self.problems)} problems ({kinds})")
        return "\n".join(lines)


def _check_tif(path: Path, shape: tuple[int, ...], dtype: str, report: CheckReport) -> None:
    if not path.exists():
        report.problems.append(Problem("missing", str(path), "file is missing"))
        return
    try:
        with rasterio.open(path) as src:
            arr, crs = src.read(), src.crs
    except RasterioError as err:
        report.problems.append(Problem("unreadable", str(path), f"unreadable or truncated GeoTIFF ({err})"))
        return
    if crs is None:
        report.problems.append(Problem("georef", str(path), "no CRS: the patch cannot be placed on the map"))
    if arr.shape[0] == 1 and len(shape) == 2:
        arr = arr[0]
    if arr.shape != shape:
        report.problems.append(Problem("shape", str(path), f"shape {arr.shape}, expected {shape}"))
    if arr.dtype != np.dtype(dtype):
        report.problems.append(Problem("dtype", str(path), f"dtype {arr.dtype}, expected {dtype}"))
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        n = int((~np.isfinite(arr)).sum())
        report.problems.append(Problem("nonfinite", str(path), f"{n} NaN/inf values (the reader fills them "
                                       "with the band mean)"))


def check(root: str | Path, version: str = "auto", split_file: str | Path | None = None) -> CheckReport:
    """Check every pair of the dataset at ``root`` and return a :class:`CheckReport`."""
    from xjepa_kit.data.bigearthnet import BigEarthNetMM

    report = CheckReport(str(root))
    try:
        ds = BigEarthNetMM(root, version=version, s2_bands=12, normalize=False, split_file=split_file)
    except DataError as err:
        report.problems.append(Problem("unreadable", str(root), str(err)))
        return report
    report.pairs = len(ds)
    kind = ds.layout.kind
    if kind == "ben14k" and len(ds):
        from xjepa_kit.data.packed import source_s2_bands

        try:
            s2_shape = (len(source_s2_bands(ds)), 120, 120)  # a 10-band copy is complete with 10 bands
        except DataError:
            s2_shape = (len(ds.s2_band_names), 120, 120)  # the first file is broken: reported below
    with rasterio.Env(**geotiff.GDAL_ENV):
        for i in range(len(ds)):
            s2_name, s1_name = ds.index.at[i, "s2_name"], ds.index.at[i, "s1_name"]
            if kind == "ben14k":
                for name, shape, dtype in ((s2_name, s2_shape, "uint16"), (s1_name, (2, 120, 120), "float32")):
                    try:
                        _check_tif(ds.multiband_path(name), shape, dtype, report)
                    except DataError as err:
                        report.problems.append(Problem("missing", name, str(err)))
            else:
                for b, p in ds.s2_paths(i).items():
                    side = geotiff.native_px(b)
                    _check_tif(p, (side, side), "uint16", report)
                for p in ds.s1_paths(i).values():
                    _check_tif(p, (120, 120), "float32", report)
            _check_labels_and_pair(ds, i, s2_name, s1_name, report)
    if kind == "v1" and split_file is None:  # an explicit split file may list a subset on purpose
        _check_unpaired(ds, report)
    return report


def _check_labels_and_pair(ds, i: int, s2_name: str, s1_name: str, report: CheckReport) -> None:
    try:
        ds.labels_of(i)
    except DataError as err:
        report.problems.append(Problem("label", s2_name, str(err)))
    if ds.layout.kind != "v1":  # no S1 JSON names the partner: the two footprints must coincide
        try:
            p2, p1 = (ds.multiband_path(s2_name), ds.multiband_path(s1_name)) if ds.layout.kind == "ben14k" \
                else (ds.s2_paths(i)["B02"], ds.s1_paths(i)["VV"])
        except DataError:  # a missing file: reported by the file checks
            return
        apart = _footprint_distance_m(p2, p1)
        if apart is not None and apart > MAX_PAIR_OFFSET_M:
            report.problems.append(Problem("mismatch", str(p1), f"footprint {apart / 1000:.1f} km from its S2 partner "
                                           f"{s2_name}: not the same patch (check s1_name in the metadata)"))
        return
    meta_path = ds.layout.s1_dir / s1_name / f"{s1_name}_labels_metadata.json"
    if not meta_path.parent.is_dir():
        report.problems.append(Problem("unpaired", s2_name, f"its S1 partner {s1_name} is missing"))
        return
    try:
        partner = geotiff.read_json(meta_path).get("corresponding_s2_patch")
    except DataError as err:
        report.problems.append(Problem("unreadable", str(meta_path), str(err)))
        return
    if partner is not None and partner != s2_name:
        report.problems.append(Problem("mismatch", str(meta_path), f"S1 says its S2 patch is {partner}, "
                                       f"the pair list says {s2_name}"))


MAX_PAIR_OFFSET_M = 600.0  # half a 1.2 km BigEarthNet patch: co-registered S1/S2 patches share their footprint


def _footprint_distance_m(a: Path, b: Path) -> float | None:
    """Distance in metres between the centres of two GeoTIFFs' footprints; None if either cannot be placed
    (missing, unreadable or without CRS: reported by the file checks)."""
    centres = []
    for path in (a, b):
        try:
            with rasterio.open(path) as src:
                if src.crs is None:
                    return None
                w, s, e, n = geotiff.bounds_wgs84((src.crs, src.bounds), path)
        except RasterioError:
            return None
        centres.append((math.radians((s + n) / 2), math.radians((w + e) / 2)))
    (la1, lo1), (la2, lo2) = centres
    h = math.sin((la2 - la1) / 2) ** 2 + math.cos(la1) * math.cos(la2) * math.sin((lo2 - lo1) / 2) ** 2
    return 2 * 6_371_000.0 * math.asin(math.sqrt(h))  # haversine on a sphere of the Earth's mean radius


def _check_unpaired(ds, report: CheckReport) -> None:
    """S1 or S2 patch folders that no pair uses."""
    used_s1, used_s2 = set(ds.index["s1_name"]), set(ds.index["s2_name"])
    for name in sorted(os.listdir(ds.layout.s1_dir)):
        if is_s1_name(name) and name not in used_s1:
            report.problems.append(Problem("unpaired", str(ds.layout.s1_dir / name), "S1 patch without an S2 partner"))
    for name in sorted(os.listdir(ds.layout.s2_dir)):
        if is_s2_name(name) and name not in used_s2:
            report.problems.append(Problem("unpaired", str(ds.layout.s2_dir / name), "S2 patch without an S1 partner"))

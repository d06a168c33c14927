"""Band lists, native resolutions, per-band statistics, normalisation and resampling.

Kit conventions (DESIGN 3.5): S2 10-band input (B02 B03 B04 B05 B06 B07 B08 B8A B11 B12),
12-band option adds B01 and B09 (S2 order below); S1 is always (VV, VH), never file-name order.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

# --- Sentinel-2 (BigEarthNet) -------------------------------------------------------------
S2_BANDS_10: tuple[str, ...] = ("B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12")
S2_BANDS_12: tuple[str, ...] = (
    "B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12",
)
# Native pixel size in metres (ESA Sentinel-2 User Handbook, Table 1); B10 is not in L2A.
S2_RESOLUTION_M: dict[str, int] = {
    "B01": 60, "B02": 10, "B03": 10, "B04": 10, "B05": 20, "B06": 20, "B07": 20,
    "B08": 10, "B8A": 20, "B09": 60, "B11": 20, "B12": 20,
}
S1_BANDS: tuple[str, ...] = ("VV", "VH")
PATCH_PX = 120  # BigEarthNet patches: 1200 m x 1200 m at 10 m (Sumbul et al., IGARSS 2019)

# BigEarthNet v1 per-band mean / std, L2A reflectance x 10000 and S1 backscatter in dB.
# Source: TU Berlin BigEarthNet statistics as listed in DESIGN 3.5 (the values distributed with
# the BigEarthNet-MM models, Sumbul et al. 2021); they agree within 0.005 with bigearthnet-common's
# ``constants.BAND_STATS_S2`` / ``BAND_STATS_S1``.
BEN_MEAN: dict[str, float] = {
    "B01": 340.77, "B02": 429.94, "B03": 614.22, "B04": 590.24, "B05": 950.68, "B06": 1792.46,
    "B07": 2075.47, "B08": 2218.95, "B8A": 2266.46, "B09": 2246.06, "B11": 1594.43,
    "B12": 1009.33, "VV": -12.620, "VH": -19.290,
}
BEN_STD: dict[str, float] = {
    "B01": 554.81, "B02": 572.42, "B03": 582.88, "B04": 675.89, "B05": 729.90, "B06": 1096.01,
    "B07": 1273.45, "B08": 1365.46, "B8A": 1356.14, "B09": 1302.33, "B11": 1079.19,
    "B12": 818.87, "VV": 5.116, "VH": 5.464,
}

# --- fMoW -----------------------------------------------------------------------------------
# fMoW-Sentinel (Cong et al., SatMAE, NeurIPS 2022): 13 bands B1..B12 with B8A and B10.
FMOW_SENTINEL_BANDS_13: tuple[str, ...] = (
    "B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12",
)
# SatMAE drops B1, B9 and B10 (SatMAE paper, Sec. 4; repository `--dropped_bands 0 9 10`).
FMOW_SENTINEL_BANDS_10: tuple[str, ...] = tuple(
    b for b in FMOW_SENTINEL_BANDS_13 if b not in ("B01", "B09", "B10")
)
# Source: SatMAE repository, util/datasets.py, SentinelIndividualImageDataset.mean / .std.
FMOW_SENTINEL_MEAN: tuple[float, ...] = (
    1370.19151926, 1184.3824625, 1120.77120066, 1136.26026392, 1263.73947144, 1645.40315151,
    1846.87040806, 1762.59530783, 1972.62420416, 582.72633433, 14.77112979, 1732.16362238,
    1247.91870117,
)
FMOW_SENTINEL_STD: tuple[float, ...] = (
    633.15169573, 650.2842772, 712.12507725, 965.23119807, 948.9819932, 1108.06650639,
    1258.36394548, 1233.1492281, 1364.38688993, 472.37967789, 14.3114637, 1310.36996126,
    1087.6020813,
)
# fMoW-RGB, pixel values scaled to [0, 1]. Source: SatMAE repository, util/datasets.py,
# CustomDatasetFromImages.mean / .std.
FMOW_RGB_MEAN: tuple[float, float, float] = (0.4182007312774658, 0.4214799106121063, 0.3991275727748871)
FMOW_RGB_STD: tuple[float, float, float] = (0.28774282336235046, 0.27541765570640564, 0.2764017581939697)


def s2_bands(n: int) -> tuple[str, ...]:
    """The S2 band list for ``s2_bands=n`` (10 or 12)."""
    if n == 10:
        return S2_BANDS_10
    if n == 12:
        return S2_BANDS_12
    from xjepa_kit.errors import XJepaError

    raise XJepaError(f"s2_bands must be 10 or 12, got {n!r}")


def mean_std(bands: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """BigEarthNet mean and std of ``bands`` as float32 arrays [C, 1, 1] for broadcasting."""
    mean = np.array([BEN_MEAN[b] for b in bands], dtype=np.float32).reshape(-1, 1, 1)
    std = np.array([BEN_STD[b] for b in bands], dtype=np.float32).reshape(-1, 1, 1)
    return mean, std


def normalize(x: np.ndarray, bands: tuple[str, ...]) -> np.ndarray:
    """(x - mean) / std per band; ``x`` [C, H, W] or [B, C, H, W] in physical units -> float32."""
    mean, std = mean_std(bands)
    return ((x.astype(np.float32, copy=False) - mean) / std).astype(np.float32, copy=False)


def denormalize(x: np.ndarray, bands: tuple[str, ...]) -> np.ndarray:
    """Inverse of :func:`normalize`: back to reflectance x 10000 or dB."""
    mean, std = mean_std(bands)
    return x * std + mean


def resample_bilinear(band: np.ndarray, size: int = PATCH_PX) -> np.ndarray:
    """Bilinear resampling of one band [h, w] (or a stack [C, h, w]) to [size, size], float32.

    Uses ``align_corners=False`` (pixel-area geometry: a 20 m pixel covers 2 x 2 10 m pixels),
    the same convention as torchgeo and torchvision's ``Resize``.
    """
    arr = np.asarray(band, dtype=np.float32)
    if arr.shape[-2:] == (size, size):
        return arr
    t = torch.from_numpy(np.ascontiguousarray(arr))
    squeeze = t.ndim == 2
    t = t[None, None] if squeeze else t[None]
    out = F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False)
    return (out[0, 0] if squeeze else out[0]).numpy()


def fill_nonfinite(x: np.ndarray, bands: tuple[str, ...]) -> tuple[np.ndarray, int]:
    """Replace NaN/inf in ``x`` [C, H, W] by each band's dataset mean; returns (x, count)."""
    bad = ~np.isfinite(x)
    n = int(bad.sum())
    if n:
        x = x.copy()
        for c, b in enumerate(bands):
            x[c][bad[c]] = BEN_MEAN[b]
    return x, n

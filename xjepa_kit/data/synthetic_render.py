"""Render one synthetic patch: label map, S2 bands at native resolutions, speckled S1 (DESIGN 3.6)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from xjepa_kit.data.bands import PATCH_PX, S2_BANDS_12
from xjepa_kit.data.geotiff import native_px
from xjepa_kit.data.synthetic_physics import CLC_ARCHETYPE, SynthOptions, class_signature

# Landscapes: CORINE classes that co-occur in BigEarthNet patches (arable with pastures and
# complex cultivation, forests together, water by wetlands ...), with sampling weights.
LANDSCAPES: dict[str, list[tuple[str, float]]] = {
    "farmland": [("Non-irrigated arable land", 4), ("Pastures", 3), ("Complex cultivation patterns", 2),
                 ("Land principally occupied by agriculture, with significant areas of natural vegetation", 2),
                 ("Discontinuous urban fabric", 1), ("Broad-leaved forest", 1)],
    "forest": [("Coniferous forest", 4), ("Mixed forest", 3), ("Broad-leaved forest", 2),
               ("Transitional woodland/shrub", 2), ("Peatbogs", 1), ("Water bodies", 1)],
    "urban": [("Discontinuous urban fabric", 4), ("Continuous urban fabric", 2),
              ("Industrial or commercial units", 2), ("Pastures", 1), ("Non-irrigated arable land", 1)],
    "coast": [("Sea and ocean", 4), ("Beaches, dunes, sands", 2), ("Salt marshes", 1),
              ("Discontinuous urban fabric", 1), ("Natural grassland", 1), ("Estuaries", 1)],
    "mediterranean": [("Olive groves", 2), ("Vineyards", 2), ("Sclerophyllous vegetation", 2),
                      ("Non-irrigated arable land", 2), ("Complex cultivation patterns", 1),
                      ("Agro-forestry areas", 1), ("Broad-leaved forest", 1)],
    "wetland": [("Peatbogs", 3), ("Inland marshes", 2), ("Water bodies", 3), ("Coniferous forest", 2),
                ("Moors and heathland", 1)],
    "upland": [("Natural grassland", 3), ("Moors and heathland", 2), ("Transitional woodland/shrub", 2),
               ("Coniferous forest", 1), ("Sparsely vegetated areas", 1)],
}


def sample_classes(rng: np.random.Generator, landscape: str) -> list[str]:
    """1-5 CORINE classes drawn from one landscape (occasionally one from another)."""
    names, weights = zip(*LANDSCAPES[landscape])
    p = np.asarray(weights, float) / sum(weights)
    k = int(rng.choice([1, 2, 3, 4, 5], p=[0.2, 0.3, 0.25, 0.15, 0.1]))
    chosen = list(rng.choice(names, size=min(k, len(names)), replace=False, p=p))
    if rng.random() < 0.1:
        other = rng.choice(sorted(set(LANDSCAPES) - {landscape}))
        extra = LANDSCAPES[other][int(rng.integers(len(LANDSCAPES[other])))][0]
        if extra not in chosen:
            chosen.append(extra)
    return [str(c) for c in chosen]


def smooth_field(rng: np.random.Generator, n: int, cells: int, size: int = PATCH_PX) -> np.ndarray:
    """``n`` smooth random fields [n, size, size]: bicubic upsampling of a coarse Gaussian grid."""
    coarse = torch.from_numpy(rng.standard_normal((1, n, cells, cells)).astype(np.float32))
    return F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)[0].numpy()


def label_map(rng: np.random.Generator, classes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Smooth regions: (map [120, 120] of indices into ``classes``, cover fractions [K])."""
    k = len(classes)
    fields = smooth_field(rng, k, int(rng.integers(3, 7)))
    fields += rng.normal(0, 0.8, size=(k, 1, 1)).astype(np.float32)  # uneven shares
    lmap = fields.argmax(0)
    frac = np.bincount(lmap.ravel(), minlength=k) / lmap.size
    return lmap, frac


def render_patch(rng: np.random.Generator, classes: list[str], growth: float, scene_gain: float,
                 scene_db: float, opts: SynthOptions) -> tuple[dict[str, np.ndarray], np.ndarray, list[str]]:
    """One co-registered pair.

    Returns (S2 bands by name at native size, uint16; S1 [2, 120, 120] float32 dB (VV, VH);
    CORINE labels covering >= 5 % of the patch).
    """
    lmap, frac = label_map(rng, classes)
    labels = [c for c, f in zip(classes, frac) if f >= 0.05] or [classes[int(frac.argmax())]]
    s2 = np.zeros((12, PATCH_PX, PATCH_PX), np.float32)
    s1_db = np.zeros((2, PATCH_PX, PATCH_PX), np.float32)
    texture = smooth_field(rng, len(classes), 12)
    for i, name in enumerate(classes):
        m = lmap == i
        if not m.any():
            continue
        spec, sar = class_signature(CLC_ARCHETYPE[name], growth, opts)
        spec = spec * rng.normal(1.0, 0.05, size=12).astype(np.float32)  # field-to-field variation
        tex = 1.0 + opts.texture * texture[i][m]
        s2[:, m] = spec[:, None] * tex[None, :]
        s1_db[:, m] = (sar + rng.normal(0, 0.7, size=2)).astype(np.float32)[:, None] + 10 * np.log10(tex)[None, :]
    s2 *= scene_gain * (1 + opts.noise_px * rng.standard_normal(s2.shape).astype(np.float32))
    s2[:3] += rng.uniform(0, 120)  # haze on the short-wave bands
    bands: dict[str, np.ndarray] = {}
    for c, b in enumerate(S2_BANDS_12):
        side = native_px(b)
        f = PATCH_PX // side
        arr = s2[c].reshape(side, f, side, f).mean(axis=(1, 3)) if f > 1 else s2[c]
        bands[b] = np.clip(np.rint(arr), 1, 20000).astype(np.uint16)
    power = 10 ** ((s1_db + scene_db) / 10)
    speckle = rng.gamma(opts.speckle_enl, 1.0 / opts.speckle_enl, size=power.shape).astype(np.float32)
    s1 = (10 * np.log10(np.maximum(power * speckle, 1e-5))).astype(np.float32)
    return bands, s1, labels

"""Per-class surface physics for the synthetic BigEarthNet-like set (DESIGN 3.6).

Reflectance spectra (L2A x 10000, S2 order B01 B02 B03 B04 B05 B06 B07 B08 B8A B09 B11 B12) are
typical values read off the USGS / ASTER spectral libraries and Sentinel-2 L2A scenes for each
cover type (vegetation: low red, red-edge rise, high NIR, SWIR water absorption; water: dark, NIR
near zero; urban: flat and bright; sand: bright and rising). Backscatter means (dB, VV / VH) are
typical C-band values at ~35 deg incidence reported in the Sentinel-1 land-cover literature
(e.g. Abdikan et al. 2016, ISPRS Archives XLI-B7): water -20 / -26, forest about -8 / -14,
urban double bounce bright, bare fields rough and darker in VH. They are *plausible*, not measured.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# name: (peak-season spectrum, dormant-season spectrum, (VV, VH) peak, (VV, VH) dormant)
_VEG_DORMANT_NIR = 0.65  # NIR of deciduous vegetation outside the growing season, relative to peak
SPECTRA: dict[str, tuple[list[float], list[float], tuple[float, float], tuple[float, float]]] = {
    "urban":      ([1100, 1250, 1300, 1350, 1500, 1650, 1750, 1850, 1900, 1800, 2200, 1950],
                   [1100, 1250, 1300, 1350, 1500, 1600, 1700, 1800, 1850, 1750, 2150, 1900], (-4.0, -11.5), (-4.0, -11.5)),
    "industrial": ([1400, 1550, 1600, 1650, 1750, 1850, 1900, 1950, 2000, 1900, 2400, 2200],
                   [1400, 1550, 1600, 1650, 1750, 1850, 1900, 1950, 2000, 1900, 2400, 2200], (-2.5, -10.5), (-2.5, -10.5)),
    "arable":     ([250, 300, 600, 350, 950, 2600, 3300, 3600, 3700, 3500, 1900, 900],
                   [700, 850, 1150, 1450, 1650, 1850, 1950, 2050, 2150, 2050, 2900, 2400], (-10.0, -16.5), (-13.0, -22.0)),
    "pasture":    ([280, 350, 700, 450, 1050, 2400, 2900, 3150, 3250, 3100, 2000, 1000],
                   [330, 420, 700, 600, 1050, 1800, 2100, 2250, 2350, 2250, 2300, 1400], (-11.0, -17.5), (-12.5, -20.0)),
    "permanent":  ([400, 500, 750, 750, 1200, 1900, 2200, 2450, 2550, 2400, 2300, 1600],
                   [450, 550, 750, 850, 1200, 1600, 1800, 1950, 2050, 1950, 2400, 1800], (-9.5, -16.0), (-10.5, -17.5)),
    "broadleaf":  ([200, 280, 550, 280, 850, 2300, 2950, 3150, 3250, 3100, 1600, 700],
                   [300, 380, 550, 500, 900, 1500, 1800, 1950, 2050, 1950, 1900, 1100], (-7.5, -13.0), (-8.5, -14.5)),
    "conifer":    ([160, 210, 380, 220, 620, 1450, 1800, 1950, 2050, 1950, 950, 420],
                   [160, 210, 370, 230, 600, 1350, 1650, 1800, 1900, 1800, 950, 430], (-8.0, -14.0), (-8.3, -14.3)),
    "grassland":  ([500, 600, 850, 950, 1300, 1800, 2050, 2200, 2300, 2200, 2700, 2000],
                   [550, 650, 850, 1050, 1300, 1600, 1750, 1850, 1950, 1850, 2800, 2200], (-12.0, -19.0), (-12.5, -20.0)),
    "heath":      ([280, 350, 500, 500, 900, 1500, 1750, 1850, 1950, 1850, 1600, 900],
                   [300, 380, 500, 560, 900, 1350, 1550, 1650, 1750, 1650, 1700, 1050], (-10.5, -17.0), (-11.0, -17.5)),
    "shrub":      ([230, 300, 520, 380, 880, 1900, 2350, 2550, 2650, 2500, 1550, 750],
                   [280, 350, 520, 480, 880, 1550, 1850, 2000, 2100, 2000, 1750, 950], (-9.0, -15.0), (-9.5, -16.0)),
    "sand":       ([1200, 1450, 1750, 2050, 2250, 2450, 2550, 2650, 2750, 2650, 3300, 2800],
                   [1200, 1450, 1750, 2050, 2250, 2450, 2550, 2650, 2750, 2650, 3300, 2800], (-17.0, -25.0), (-17.0, -25.0)),
    "wetland":    ([250, 320, 500, 380, 800, 1500, 1750, 1850, 1900, 1800, 1000, 450],
                   [300, 380, 500, 480, 750, 1100, 1250, 1300, 1350, 1300, 1100, 600], (-13.0, -20.5), (-14.0, -22.0)),
    "saltmarsh":  ([400, 480, 650, 600, 900, 1300, 1450, 1550, 1600, 1500, 1100, 650],
                   [420, 500, 650, 650, 880, 1150, 1250, 1300, 1350, 1300, 1150, 700], (-14.0, -21.5), (-14.5, -22.0)),
    "inlandwater": ([450, 520, 620, 420, 360, 250, 210, 180, 150, 140, 80, 50],
                    [450, 520, 600, 400, 340, 240, 200, 170, 140, 130, 80, 50], (-20.0, -26.0), (-19.0, -25.5)),
    "marine":     ([420, 430, 380, 220, 160, 110, 90, 70, 55, 50, 25, 15],
                   [420, 430, 380, 220, 160, 110, 90, 70, 55, 50, 25, 15], (-21.0, -27.5), (-19.5, -26.5)),
}

# CORINE Level-3 names (the 43-class vocabulary of BigEarthNet v1 JSON) -> surface archetype.
CLC_ARCHETYPE: dict[str, str] = {
    "Continuous urban fabric": "urban", "Discontinuous urban fabric": "urban",
    "Industrial or commercial units": "industrial",
    "Non-irrigated arable land": "arable", "Permanently irrigated land": "arable",
    "Vineyards": "permanent", "Fruit trees and berry plantations": "permanent", "Olive groves": "permanent",
    "Pastures": "pasture", "Complex cultivation patterns": "arable",
    "Land principally occupied by agriculture, with significant areas of natural vegetation": "pasture",
    "Agro-forestry areas": "shrub",
    "Broad-leaved forest": "broadleaf", "Coniferous forest": "conifer", "Mixed forest": "mixed",
    "Natural grassland": "grassland", "Sparsely vegetated areas": "grassland",
    "Moors and heathland": "heath", "Sclerophyllous vegetation": "heath",
    "Transitional woodland/shrub": "shrub", "Beaches, dunes, sands": "sand",
    "Inland marshes": "wetland", "Peatbogs": "wetland", "Salt marshes": "saltmarsh",
    "Water courses": "inlandwater", "Water bodies": "inlandwater",
    "Coastal lagoons": "marine", "Estuaries": "marine", "Sea and ocean": "marine",
}


@dataclass(frozen=True)
class SynthOptions:
    """Difficulty knobs of the synthetic set (defaults: learnable, not trivial)."""

    speckle_enl: float = 4.4          # equivalent number of looks of S1 GRD (ESA S1 product spec.)
    season_strength: float = 1.0      # 0: no phenology; 1: full peak/dormant swing
    forest_confusion: float = 0.5     # 0: distinct forest spectra; 1: the three forests identical
    illumination: float = 0.15        # per-scene multiplicative S2 brightness range (+-)
    texture: float = 0.08             # relative within-class texture amplitude
    noise_px: float = 0.03            # relative per-pixel S2 noise
    s1_angle_db: float = 1.0          # per-scene S1 incidence-angle offset range (+- dB)
    minor_class_rate: float = 0.35    # chance of a cover class below the 5 % label threshold


def class_signature(arch: str, growth: float, opts: SynthOptions) -> tuple[np.ndarray, np.ndarray]:
    """S2 spectrum [12] and S1 (VV, VH) dB [2] of one archetype at season ``growth`` in [0, 1]."""
    if arch == "mixed":
        s_b, d_b = class_signature("broadleaf", growth, opts)
        s_c, d_c = class_signature("conifer", growth, opts)
        return 0.5 * (s_b + s_c), 0.5 * (d_b + d_c)
    peak, dormant, sar_peak, sar_dormant = SPECTRA[arch]
    g = 1.0 - opts.season_strength * (1.0 - growth)
    spec = g * np.asarray(peak, np.float32) + (1 - g) * np.asarray(dormant, np.float32)
    sar = g * np.asarray(sar_peak, np.float32) + (1 - g) * np.asarray(sar_dormant, np.float32)
    if arch in ("broadleaf", "conifer") and opts.forest_confusion > 0:
        mid_s, mid_d = _forest_mean(growth, opts)
        spec = (1 - opts.forest_confusion) * spec + opts.forest_confusion * mid_s
        sar = (1 - opts.forest_confusion) * sar + opts.forest_confusion * mid_d
    return spec, sar


def _forest_mean(growth: float, opts: SynthOptions) -> tuple[np.ndarray, np.ndarray]:
    plain = SynthOptions(season_strength=opts.season_strength, forest_confusion=0.0)
    s_b, d_b = class_signature("broadleaf", growth, plain)
    s_c, d_c = class_signature("conifer", growth, plain)
    return 0.5 * (s_b + s_c), 0.5 * (d_b + d_c)


def growth_of_month(month: int, lat: float) -> float:
    """Vegetation growth stage in [0, 1]: peak in July, later spring further north."""
    shift = (lat - 45.0) / 20.0  # about one month later at 65 N
    return float(0.5 + 0.5 * np.cos(2 * np.pi * (month - 7 - shift) / 12.0))

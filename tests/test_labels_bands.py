"""Label nomenclature and band handling."""

import numpy as np
import pytest

from xjepa_kit.data import LABELS
from xjepa_kit.data.bands import (BEN_MEAN, BEN_STD, S2_BANDS_10, S2_BANDS_12, denormalize, fill_nonfinite,
                                  normalize, resample_bilinear)
from xjepa_kit.data.labels import names_from_multihot, to_multihot
from xjepa_kit.errors import DataError


def test_labels_are_the_official_19_in_official_order():
    from bigearthnet_common.constants import NEW_LABELS_ORIGINAL_ORDER

    assert LABELS == tuple(NEW_LABELS_ORIGINAL_ORDER)
    assert LABELS[0] == "Urban fabric" and LABELS[18] == "Marine waters"
    assert list(LABELS) != sorted(LABELS)  # not torchgeo's alphabetical order


def test_43_class_names_map_to_19():
    v = to_multihot(["Continuous urban fabric", "Discontinuous urban fabric", "Peatbogs", "Airports"])
    assert names_from_multihot(v) == ["Urban fabric", "Inland wetlands"]  # Airports is dropped officially
    assert v.dtype == np.float32 and v.shape == (19,)
    assert names_from_multihot(to_multihot(["Marine waters", "Pastures"])) == ["Pastures", "Marine waters"]


def test_unknown_label_names_the_file():
    with pytest.raises(DataError, match=r"'Lava'.*patch\.json"):
        to_multihot(["Pastures", "Lava"], source="patch.json")


def test_band_lists_and_statistics():
    assert S2_BANDS_10 == ("B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12")
    assert set(S2_BANDS_12) - set(S2_BANDS_10) == {"B01", "B09"} and "B10" not in S2_BANDS_12
    assert BEN_MEAN["B04"] == 590.24 and BEN_STD["VH"] == 5.464


def test_normalize_roundtrip_and_standardises():
    x = np.stack([np.full((4, 4), BEN_MEAN[b] + BEN_STD[b], np.float32) for b in S2_BANDS_10])
    z = normalize(x, S2_BANDS_10)
    assert np.allclose(z, 1.0, atol=1e-5)
    assert np.allclose(denormalize(z, S2_BANDS_10), x, rtol=1e-5)


def test_resample_keeps_constants_and_geometry():
    assert np.allclose(resample_bilinear(np.full((60, 60), 7.0)), 7.0)
    ramp = np.tile(np.arange(60, dtype=np.float32), (60, 1))  # 20 m pixel centres at 0..59
    up = resample_bilinear(ramp)
    assert up.shape == (120, 120)
    # pixel-area geometry: 10 m pixel 2k+1 lies 1/4 of a 20 m pixel right of 20 m centre k
    assert up[0, 21] == pytest.approx(10.25)


def test_fill_nonfinite_uses_band_mean_and_counts():
    x = np.zeros((2, 3, 3), np.float32)
    x[0, 0, 0], x[1, 2, 2] = np.nan, np.inf
    y, n = fill_nonfinite(x, ("VV", "VH"))
    assert n == 2 and np.isfinite(y).all()
    assert y[0, 0, 0] == pytest.approx(BEN_MEAN["VV"]) and y[1, 2, 2] == pytest.approx(BEN_MEAN["VH"])
    assert np.isnan(x[0, 0, 0])  # the caller's array is untouched


def test_band_statistics_agree_with_bigearthnet_common():
    from bigearthnet_common import constants

    mean = {**constants.BAND_STATS_S2["mean"], **constants.BAND_STATS_S1["mean"]}
    std = {**constants.BAND_STATS_S2["std"], **constants.BAND_STATS_S1["std"]}
    assert set(BEN_MEAN) == set(BEN_STD) <= set(mean)
    for band in BEN_MEAN:
        assert BEN_MEAN[band] == pytest.approx(mean[band], abs=0.01) and BEN_STD[band] == pytest.approx(std[band], abs=0.01)

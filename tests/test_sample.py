"""The six real BigEarthNet-MM v1 pairs shipped by bigearthnet-common."""

import json

import numpy as np
import rasterio

from xjepa_kit.data import BigEarthNetMM
from xjepa_kit.data.labels import names_from_multihot


def test_sample_reads_as_v1_with_official_pairs(sample_root):
    ds = BigEarthNetMM(sample_root)
    assert ds.layout.kind == "v1" and len(ds) == 6
    pairs = dict(zip(ds.index["s2_name"], ds.index["s1_name"]))
    # real quirk: a 5-digit time (hour without its leading zero)
    assert pairs["S2B_MSIL2A_20170924T93020_69_24"] == "S1A_IW_GRDH_1SDV_20170925T043256_35VPK_69_24"
    assert set(ds.index["split"].dropna()) <= {"train", "val", "test"}
    assert len(BigEarthNetMM(sample_root, split="train")) == 4  # TU Berlin's official split lists


def test_sample_shapes_labels_and_bounds(sample_root):
    ds = BigEarthNetMM(sample_root)
    for i in range(len(ds)):
        s = ds[i]
        assert s["s1"].shape == (2, 120, 120) and s["s2"].shape == (10, 120, 120)
        assert s["s1"].dtype == s["s2"].dtype == s["labels"].dtype
        west, south, east, north = s["bounds"].tolist()
        assert -11 < west < east < 35 and 35 < south < north < 72  # Europe
        assert 0.01 < east - west < 0.05 and 0.008 < north - south < 0.015  # 1.2 km
    i = ds.index.index[ds.index["s2_name"] == "S2A_MSIL2A_20170613T101031_87_48"][0]
    # JSON says "Non-irrigated arable land" -> official 19-class "Arable land"
    assert names_from_multihot(ds[i]["labels"].numpy()) == [
        "Arable land", "Land principally occupied by agriculture, with significant areas of natural vegetation"]


def test_sample_s1_is_exact_dB_in_vv_vh_order(sample_root):
    ds = BigEarthNetMM(sample_root, normalize=False)
    raw = ds.read_raw(0)
    paths = ds.s1_paths(0)
    with rasterio.open(paths["VV"]) as vv, rasterio.open(paths["VH"]) as vh:
        assert np.array_equal(raw["s1"][0], vv.read(1)) and np.array_equal(raw["s1"][1], vh.read(1))
    assert raw["s1"][0].mean() > raw["s1"][1].mean()  # VV is brighter than VH over land
    assert not np.allclose(raw["s1"], np.round(raw["s1"]))  # not truncated to integers


def test_real_s1_json_says_lly_and_bounds_agree(sample_root):
    from xjepa_kit.data.geotiff import json_corners

    ds = BigEarthNetMM(sample_root)
    s1 = ds.index.at[0, "s1_name"]
    path = ds.layout.s1_dir / s1 / f"{s1}_labels_metadata.json"
    meta = json.loads(path.read_text())
    assert "lly" in meta["coordinates"]
    ulx, uly, lrx, lry = json_corners(meta, path)
    with rasterio.open(ds.s2_paths(0)["B02"]) as src:
        assert (src.bounds.left, src.bounds.top, src.bounds.right, src.bounds.bottom) == (ulx, uly, lrx, lry)

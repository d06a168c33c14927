"""BigEarthNetMM over the v1, v2 and BEN-14K layouts, splits, options and bad input."""

import numpy as np
import pandas as pd
import pytest
import rasterio
import torch
from helpers import to_ben14k

from xjepa_kit.data import BigEarthNetMM
from xjepa_kit.data.bands import BEN_MEAN, BEN_STD
from xjepa_kit.errors import DataError, XJepaError


@pytest.fixture(scope="module")
def ben14k_root(synth_v1, tmp_path_factory):
    return to_ben14k(synth_v1, tmp_path_factory.mktemp("ben14k"))


def _by_s1(ds, s1_name):
    return int(np.flatnonzero(ds.index["s1_name"] == s1_name)[0])


def test_v1_v2_ben14k_serve_the_same_samples(synth_v1, synth_v2, ben14k_root):
    v1 = BigEarthNetMM(synth_v1)
    v2, b14 = BigEarthNetMM(synth_v2), BigEarthNetMM(ben14k_root)
    assert (v2.layout.kind, b14.layout.kind) == ("v2", "ben14k") and len(b14) == len(v1)
    for i in (0, 17, 119):
        a = v1[i]
        for other in (v2, b14):
            b = other[_by_s1(other, a["s1_id"])]
            assert torch.equal(a["labels"], b["labels"])
            assert torch.allclose(a["s1"], b["s1"], atol=1e-6)
            assert torch.allclose(a["s2"], b["s2"], atol=0.5 / 500)  # uint16 rounding of resampled bands
            assert torch.allclose(a["bounds"], b["bounds"], atol=1e-9)


def test_ben14k_without_band_descriptions_uses_the_documented_order(synth_v1, ben14k_root, tmp_path):
    plain = BigEarthNetMM(to_ben14k(synth_v1, tmp_path / "plain", describe=False), split="test")
    described = BigEarthNetMM(ben14k_root, split="test")
    assert torch.equal(plain[0]["s2"], described[_by_s1(described, plain[0]["s1_id"])]["s2"])


def test_ben14k_with_other_band_names_uses_the_documented_order(small_v1, tmp_path):
    from helpers import write_multiband

    root = to_ben14k(small_v1, tmp_path / "b14")
    reference = BigEarthNetMM(root)[0]["s2"]
    other = ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B11", "B12")  # Earth Engine's names
    for path in (root / "BigEarthNet-S2").rglob("*.tif"):
        with rasterio.open(path) as src:
            arr, crs, transform = src.read(), src.crs, src.transform
        write_multiband(path, arr, crs, transform, other)
    assert torch.equal(BigEarthNetMM(root)[0]["s2"], reference)


def test_split_names_and_split_file(synth_v1, synth_v2, tmp_path):
    full = BigEarthNetMM(synth_v1)
    counts = full.index["split"].value_counts()
    assert len(BigEarthNetMM(synth_v1, split="val")) == counts["val"]
    assert len(BigEarthNetMM(synth_v1, split="validation")) == counts["val"]
    assert len(BigEarthNetMM(synth_v2, split="validation")) == counts["val"]
    chosen = full.index.iloc[[3, 5, 8]].copy()
    chosen["split"] = ["train", "validation", "test"]
    chosen.to_csv(tmp_path / "my_split.csv", index=False)
    sub = BigEarthNetMM(synth_v1, split_file=tmp_path / "my_split.csv")
    assert list(sub.index["s2_name"]) == list(chosen["s2_name"])
    # a split file in v1 names (as BEN-14K's are) over a v2 root: mapped through s2v1_name
    v2_sub = BigEarthNetMM(synth_v2, split="val", split_file=tmp_path / "my_split.csv")
    meta = pd.read_parquet(synth_v2 / "metadata.parquet").set_index("s2v1_name")
    assert list(v2_sub.index["s2_name"]) == [meta.at[chosen["s2_name"].iloc[1], "patch_id"]]
    assert v2_sub[0]["s1_id"] == chosen["s1_name"].iloc[1]
    with pytest.raises(XJepaError, match="unknown split"):
        BigEarthNetMM(synth_v1, split="holdout")


def test_split_file_with_other_header_names_or_a_bad_split(synth_v1, tmp_path):
    chosen = BigEarthNetMM(synth_v1).index.iloc[[3, 5, 8]].copy()
    chosen["split"] = ["train", "validation", "test"]
    chosen.to_csv(tmp_path / "renamed.csv", index=False, header=["s2_patch", "s1_patch", "split"])
    sub = BigEarthNetMM(synth_v1, split_file=tmp_path / "renamed.csv")  # its header row is not a pair
    assert list(sub.index["s2_name"]) == list(chosen["s2_name"]) and list(sub.index["split"]) == ["train", "val", "test"]
    for bad, shown in (("holdout", "'holdout'"), ("", "nan")):
        chosen["split"] = ["train", bad, "test"]
        chosen.to_csv(tmp_path / "bad.csv", index=False)
        with pytest.raises(DataError, match=rf"bad.csv: row 2: split {shown} is not train, val"):
            BigEarthNetMM(synth_v1, split_file=tmp_path / "bad.csv")


def test_split_file_listing_a_pair_twice_is_refused(synth_v1, tmp_path):
    chosen = BigEarthNetMM(synth_v1).index.iloc[[3, 5, 8]].copy()
    for rows, splits, shown in (([0, 1, 2, 1], ["val", "val", "test", "val"], "rows 2, 4 \\(splits val, val\\)"),
                                ([0, 1, 2, 0], ["val", "val", "test", "test"], "rows 1, 4 \\(splits val, test\\)")):
        dup = chosen.iloc[rows].copy()
        dup["split"] = splits
        dup.to_csv(tmp_path / "dup.csv", index=False)
        name = dup["s2_name"].iloc[-1]
        with pytest.raises(DataError, match=rf"dup.csv: {name} is listed in {shown}; each pair belongs in one split"):
            BigEarthNetMM(synth_v1, split_file=tmp_path / "dup.csv")


def test_band_options_and_physical_units(synth_v1):
    s12 = BigEarthNetMM(synth_v1, s2_bands=12, normalize=False)[0]
    s10 = BigEarthNetMM(synth_v1, normalize=False)[0]
    assert s12["s2"].shape == (12, 120, 120)
    assert torch.equal(s12["s2"][1:9], s10["s2"][:8])  # B02..B8A shared, B01 first in the 12-band order
    assert 0 < s10["s2"].min() and s10["s2"].max() < 20000  # reflectance x 10000
    assert -40 < s10["s1"].mean() < 0  # dB
    norm = BigEarthNetMM(synth_v1)[0]
    expected = (s10["s1"][0] - BEN_MEAN["VV"]) / BEN_STD["VV"]
    assert torch.allclose(norm["s1"][0], expected, atol=1e-5)
    with pytest.raises(XJepaError, match="10 or 12"):
        BigEarthNetMM(synth_v1, s2_bands=13)


def test_dataloader_batches(synth_v1):
    loader = torch.utils.data.DataLoader(BigEarthNetMM(synth_v1, split="test"), batch_size=4, num_workers=2)
    batch = next(iter(loader))
    assert batch["s2"].shape == (4, 10, 120, 120) and batch["bounds"].shape == (4, 4) and len(batch["id"]) == 4


def _damage(root, band, how):
    ds = BigEarthNetMM(root)
    path = ds.s2_paths(0)[band] if band.startswith("B") else ds.s1_paths(0)[band]
    if how == "delete":
        path.unlink()
    elif how == "truncate":
        path.write_bytes(path.read_bytes()[:300])
    return ds, path


@pytest.mark.parametrize("how,pattern", [("delete", "missing"), ("truncate", "unreadable")])
def test_bad_files_raise_one_clear_error_naming_the_file(small_v1, how, pattern):
    ds, path = _damage(small_v1, "B05", how)
    with pytest.raises(DataError, match=pattern) as err:
        ds[0]
    assert path.name in str(err.value)
    assert ds[1]["s2"].shape == (10, 120, 120)  # other pairs still read


def test_a_geotiff_without_crs_is_named_by_the_reader_and_by_check(small_v1):
    from xjepa_kit.data import check

    ds = BigEarthNetMM(small_v1)
    path = ds.s2_paths(2)["B02"]
    with rasterio.open(path) as src:
        arr, profile = src.read(), src.profile
    profile.pop("crs"), profile.pop("transform")
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(arr)
    with pytest.raises(DataError, match=rf"{path.name}: GeoTIFF without a CRS"):
        ds[2]
    with pytest.raises(DataError, match=rf"{path.name}: GeoTIFF without a CRS"):
        ds.bounds_of(2)
    report = check(small_v1)
    assert [(p.kind, p.path) for p in report.problems] == [("georef", str(path))]


def test_stray_files_do_not_decide_the_layout(small_v1, tmp_path):
    b14 = to_ben14k(small_v1, tmp_path / "b14")
    for root in (small_v1, b14):
        s2_dir = root / "BigEarthNet-v1.0" if root == small_v1 else root / "BigEarthNet-S2"
        for k in range(30):  # so many that one of them comes first in the folder listing (README.md, checksums ...)
            (s2_dir / f"{k:02d}_README.md").write_text("x")
    assert BigEarthNetMM(small_v1).layout.kind == "v1" and BigEarthNetMM(b14).layout.kind == "ben14k"
    assert len(BigEarthNetMM(b14)) == len(BigEarthNetMM(small_v1)) == 6


def test_ben14k_file_of_the_wrong_size_is_refused_not_resampled(small_v1, tmp_path):
    from helpers import write_multiband

    ds = BigEarthNetMM(to_ben14k(small_v1, tmp_path / "b14"))
    path = ds.multiband_path(ds.index.at[0, "s2_name"])
    with rasterio.open(path) as src:
        crs, transform = src.crs, src.transform
    write_multiband(path, np.ones((12, 100, 100), np.uint16), crs, transform, None)
    with pytest.raises(DataError, match=rf"{path.name}: shape \(12, 100, 100\), expected 120 x 120"):
        ds[0]
    assert ds[1]["s2"].shape == (10, 120, 120)


def test_wrong_shape_and_unknown_label(small_v1):
    ds = BigEarthNetMM(small_v1)
    path = ds.s1_paths(0)["VH"]
    with rasterio.open(path) as src:
        profile = src.profile
    profile.update(width=100, height=100)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.zeros((1, 100, 100), np.float32))
    with pytest.raises(DataError, match=r"VH\.tif.*shape"):
        ds[0]
    s2 = ds.index.at[1, "s2_name"]
    meta = ds.layout.s2_dir / s2 / f"{s2}_labels_metadata.json"
    meta.write_text(meta.read_text().replace('"labels": [', '"labels": ["Moon dust", '))
    with pytest.raises(DataError, match="Moon dust"):
        ds[1]


def test_nonfinite_s1_becomes_band_mean_and_is_counted(small_v1):
    ds = BigEarthNetMM(small_v1, normalize=False)
    path = ds.s1_paths(2)["VV"]
    with rasterio.open(path, "r+") as dst:
        arr = dst.read(1)
        arr[:2, :5] = np.nan
        dst.write(arr, 1)
    s = ds[2]
    assert torch.isfinite(s["s1"]).all() and ds.nonfinite_filled == 10
    assert torch.allclose(s["s1"][0, :2, :5], torch.tensor(BEN_MEAN["VV"]))


def test_missing_root_and_unknown_layout(tmp_path):
    with pytest.raises(DataError, match="not found"):
        BigEarthNetMM(tmp_path / "nope")
    (tmp_path / "BigEarthNet-S2").mkdir()
    (tmp_path / "BigEarthNet-S1").mkdir()
    (tmp_path / "BigEarthNet-S2" / "something").mkdir()
    with pytest.raises(DataError, match="layout"):
        BigEarthNetMM(tmp_path)


def test_bounds_frequencies_and_footprints_without_pixels(synth_v1, ben14k_root):
    from xjepa_kit.data import dataset_bounds, footprints_geojson, label_frequencies

    for root in (synth_v1, ben14k_root):
        ds = BigEarthNetMM(root, split="test")
        b = dataset_bounds(ds)
        assert np.allclose(b[2], ds[2]["bounds"].numpy())
    ds = BigEarthNetMM(synth_v1, split="test")
    freq = label_frequencies(ds)
    assert freq.shape == (19,) and freq.sum() == sum(int(ds[i]["labels"].sum()) for i in range(len(ds)))
    fc = footprints_geojson(ds)
    ring = fc["features"][1]["geometry"]["coordinates"][0]
    west, south, east, north = ds[1]["bounds"].tolist()
    assert ring[0] == [west, south] and ring[2] == [east, north] and ring[-1] == ring[0]
    assert fc["features"][1]["properties"]["id"] == ds.index.at[1, "s2_name"]

"""`check` reports every planted fault in one run, and a clean set as clean."""

import shutil

import numpy as np
import rasterio

from xjepa_kit.cli import main
from xjepa_kit.data import BigEarthNetMM, check


def test_clean_sets_pass(synth_v1, synth_v2, sample_root):
    for root in (synth_v1, synth_v2, sample_root):
        report = check(root)
        assert report.ok, report.summary()
        assert report.pairs == len(BigEarthNetMM(root))


def test_every_planted_fault_is_reported(small_v1, capsys):
    ds = BigEarthNetMM(small_v1)
    s2 = ds.s2_paths
    s2(0)["B8A"].unlink()                                          # missing band
    s2(1)["B03"].write_bytes(s2(1)["B03"].read_bytes()[:200])      # truncated file
    with rasterio.open(s2(2)["B04"]) as src:                       # wrong shape
        profile = src.profile
    profile.update(width=64, height=64)
    with rasterio.open(s2(2)["B04"], "w", **profile) as dst:
        dst.write(np.ones((1, 64, 64), np.uint16))
    vv = ds.s1_paths(3)["VV"]                                      # NaN in S1
    with rasterio.open(vv, "r+") as dst:
        arr = dst.read(1)
        arr[5, 5] = np.nan
        dst.write(arr, 1)
    name = ds.index.at[4, "s2_name"]                               # unknown label
    meta = ds.layout.s2_dir / name / f"{name}_labels_metadata.json"
    meta.write_text(meta.read_text().replace('"labels": [', '"labels": ["Crater lake", '))
    stray = ds.layout.s1_dir / "S1A_IW_GRDH_1SDV_20170701T050000_33UUP_1_1"  # unpaired S1
    shutil.copytree(ds.s1_paths(5)["VV"].parent, stray)

    report = check(small_v1)
    text = report.summary()
    assert not report.ok
    kinds = report.counts()
    assert {"missing", "unreadable", "shape", "nonfinite", "label", "unpaired"} <= set(kinds), text
    assert "B8A.tif" in text and "B03.tif" in text and "B04.tif" in text and "Crater lake" in text
    assert stray.name in text and vv.name in text
    assert report.pairs == 6  # did not stop at the first problem

    assert main(["data", "check", str(small_v1)]) == 1
    out = capsys.readouterr().out
    assert "problems" in out and "B8A.tif" in out


def test_mismatched_pair_is_reported(small_v1):
    ds = BigEarthNetMM(small_v1)
    s1 = ds.index.at[0, "s1_name"]
    meta = ds.layout.s1_dir / s1 / f"{s1}_labels_metadata.json"
    meta.write_text(meta.read_text().replace(ds.index.at[0, "s2_name"], ds.index.at[1, "s2_name"]))
    report = check(small_v1)
    assert report.counts() == {"mismatch": 1}, report.summary()


def test_a_real_pair_without_its_s1_json_is_still_paired_by_the_official_table(sample_root, tmp_path):
    root = shutil.copytree(sample_root, tmp_path / "sample")
    ds = BigEarthNetMM(root)
    s2_name, s1_name = ds.index.at[2, "s2_name"], ds.index.at[2, "s1_name"]
    meta = ds.layout.s1_dir / s1_name / f"{s1_name}_labels_metadata.json"
    meta.unlink()
    again = BigEarthNetMM(root)  # TU Berlin's table (bigearthnet-common) pairs what the S1 JSON no longer says
    assert len(again) == 6 and again.index.set_index("s2_name").at[s2_name, "s1_name"] == s1_name
    report = check(root)
    assert [(p.kind, p.path) for p in report.problems] == [("unreadable", str(meta))]


def test_swapped_partners_in_v2_and_ben14k_metadata_are_reported(tmp_path):
    import pandas as pd
    from helpers import to_ben14k

    from xjepa_kit.data import make_synthetic

    v2 = make_synthetic(tmp_path / "v2", n=6, seed=11, format="v2")
    b14 = to_ben14k(make_synthetic(tmp_path / "v1", n=6, seed=11, format="v1"), tmp_path / "b14")
    for root in (v2, b14):
        assert check(root).ok
        meta = pd.read_parquet(root / "metadata.parquet")
        meta.loc[[0, 1], "s1_name"] = meta.loc[[1, 0], "s1_name"].to_numpy()  # a wrong join, say
        meta.to_parquet(root / "metadata.parquet")
        report = check(root)
        mismatched = [p for p in report.problems if p.kind == "mismatch"]
        assert len(mismatched) == 2 and len(report.problems) == 2, report.summary()
        assert all("km from its S2 partner" in p.message for p in mismatched)
        assert sorted(any(meta.at[r, "s1_name"] in p.path for p in mismatched) for r in range(6)) == [False] * 4 + [True] * 2


def test_an_fmow_root_is_named_as_such(tmp_path, capsys):
    from xjepa_kit.data.fmow_fakes import make_fake_fmow

    rgb, sentinel = make_fake_fmow(tmp_path / "fmow", locations=1, images=1, splits=("train",))
    for root in (rgb, sentinel):
        assert main(["data", "check", str(root)]) == 1
        assert "is an fMoW root: `xjepa data check` and `data pack` read BigEarthNet only" in capsys.readouterr().out
    assert main(["data", "check", str(tmp_path / "fmow")]) == 1  # not a root of either: the BigEarthNet message
    assert "no Sentinel-2 and Sentinel-1 folders found" in capsys.readouterr().out

"""The synthetic set: real on-disk format, real georeferencing, physically plausible class signal."""

import json

import numpy as np
import pandas as pd
import rasterio

from xjepa_kit.data import LABELS, BigEarthNetMM, make_synthetic
from xjepa_kit.data.naming import S1_NAME, S2_V1_NAME, S2_V2_NAME


def _raw(root):
    ds = BigEarthNetMM(root, normalize=False, s2_bands=12)
    return ds, [ds.read_raw(i) for i in range(len(ds))]


def test_v1_files_names_json_and_georeferencing(synth_v1):
    ds = BigEarthNetMM(synth_v1)
    assert ds.layout.kind == "v1" and len(ds) == 120
    assert all(S2_V1_NAME.match(n) for n in ds.index["s2_name"])
    assert all(S1_NAME.match(n) for n in ds.index["s1_name"])
    s2, s1 = ds.index.at[0, "s2_name"], ds.index.at[0, "s1_name"]
    with rasterio.open(ds.s2_paths(0)["B05"]) as src:  # 20 m band at native size
        assert src.shape == (60, 60) and src.dtypes[0] == "uint16" and src.res == (20.0, 20.0)
        assert 32629 <= src.crs.to_epsg() <= 32635
    with rasterio.open(ds.s2_paths(0)["B01"]) as src:
        assert src.shape == (20, 20)
    with rasterio.open(ds.s1_paths(0)["VV"]) as src:
        assert src.shape == (120, 120) and src.dtypes[0] == "float32"
        assert src.bounds.right - src.bounds.left == 1200 and src.bounds.left % 1200 == 0
    s1_meta = json.loads((ds.layout.s1_dir / s1 / f"{s1}_labels_metadata.json").read_text())
    assert s1_meta["corresponding_s2_patch"] == s2 and "lly" in s1_meta["coordinates"]
    s2_meta = json.loads((ds.layout.s2_dir / s2 / f"{s2}_labels_metadata.json").read_text())
    assert set(s2_meta) >= {"labels", "coordinates", "projection", "acquisition_date"}
    assert set(ds.index["split"]) == {"train", "val", "test"}


def test_v2_layout_and_metadata(synth_v2):
    ds = BigEarthNetMM(synth_v2)
    assert ds.layout.kind == "v2" and len(ds) == 120
    meta = pd.read_parquet(synth_v2 / "metadata.parquet")
    assert {"patch_id", "labels", "split", "country", "s1_name", "s2v1_name"} <= set(meta.columns)
    assert set(meta["split"]) == {"train", "validation", "test"}
    assert all(S2_V2_NAME.match(n) for n in meta["patch_id"])
    assert all(set(lab) <= set(LABELS) for lab in meta["labels"])


def test_same_seed_same_pixels_across_formats_and_runs(synth_v1, synth_v2, tmp_path):
    a, b = BigEarthNetMM(synth_v1, normalize=False), BigEarthNetMM(synth_v2, normalize=False)
    j = int(np.flatnonzero(b.index["s1_name"] == a.index.at[7, "s1_name"])[0])
    ra, rb = a.read_raw(7), b.read_raw(j)
    assert np.array_equal(ra["s2"], rb["s2"]) and np.array_equal(ra["s1"], rb["s1"])
    assert np.array_equal(ra["labels"], rb["labels"])
    once = make_synthetic(tmp_path / "once", n=3, seed=4)
    again = make_synthetic(tmp_path / "again", n=3, seed=4)
    other = make_synthetic(tmp_path / "other", n=3, seed=5)
    read = lambda root: BigEarthNetMM(root, normalize=False).read_raw(0)  # noqa: E731
    assert np.array_equal(read(once)["s2"], read(again)["s2"])
    assert (once / "splits.csv").read_text() == (again / "splits.csv").read_text()
    assert not np.array_equal(read(other)["s2"], read(once)["s2"])


def test_class_signal_ndvi_and_backscatter(synth_v1):
    ds, raws = _raw(synth_v1)
    red, nir = ds.s2_band_names.index("B04"), ds.s2_band_names.index("B08")
    ndvi = np.array([((r["s2"][nir] - r["s2"][red]) / (r["s2"][nir] + r["s2"][red] + 1e-6)).mean() for r in raws])
    vv = np.array([r["s1"][0].mean() for r in raws])
    labels = np.stack([r["labels"] for r in raws])
    has = lambda name: labels[:, LABELS.index(name)] > 0  # noqa: E731
    forest = has("Coniferous forest") | has("Broad-leaved forest") | has("Mixed forest")
    water = has("Marine waters") | has("Inland waters")
    urban = has("Urban fabric") | has("Industrial or commercial units")
    only_forest = forest & ~water & ~urban
    only_water = water & ~forest & ~urban
    assert only_forest.sum() >= 3 and only_water.sum() >= 2 and urban.sum() >= 3
    assert ndvi[only_forest].mean() > ndvi[only_water].mean() + 0.3
    assert vv[urban & ~water].mean() > vv[only_water].mean() + 5  # dB
    assert (vv > -35).all() and (vv < 5).all()


def test_speckle_follows_the_enl_knob(tmp_path):
    from xjepa_kit.data import SynthOptions

    def cv(enl):  # coefficient of variation of linear VV over one patch
        root = make_synthetic(tmp_path / f"enl{enl}", n=4, seed=5, options=SynthOptions(speckle_enl=enl, texture=0))
        s1 = BigEarthNetMM(root, normalize=False).read_raw(0)["s1"][0]
        p = 10 ** (s1 / 10)
        return p.std() / p.mean()

    assert cv(1.0) > 1.5 * cv(20.0)


def test_existing_output_is_not_overwritten(small_v1):
    import pytest

    from xjepa_kit.errors import XJepaError

    before = sorted(p.name for p in small_v1.iterdir())
    with pytest.raises(XJepaError, match="exists"):
        make_synthetic(small_v1, n=2)
    assert sorted(p.name for p in small_v1.iterdir()) == before
    assert not [p for p in small_v1.parent.iterdir() if ".tmp-" in p.name]

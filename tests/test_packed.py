"""Packed store: same samples as the GeoTIFF reader, splits, workers, atomic and safe writes."""

import json

import numpy as np
import pytest
import torch

from xjepa_kit.data import BigEarthNetMM, PackedPairs, open_dataset, pack
from xjepa_kit.errors import DataError, XJepaError


@pytest.fixture(scope="module")
def store(synth_v1, tmp_path_factory):
    return pack(synth_v1, tmp_path_factory.mktemp("packed") / "store", progress=False)


@pytest.mark.parametrize("normalize,s2_bands", [(True, 10), (False, 12)])
def test_packed_equals_geotiff_reader(synth_v1, store, normalize, s2_bands):
    ref = BigEarthNetMM(synth_v1, normalize=normalize, s2_bands=s2_bands)
    packed = PackedPairs(store, normalize=normalize, s2_bands=s2_bands)
    assert len(packed) == len(ref)
    s2_tol = 0.5 if not normalize else 0.5 / 500  # uint16 rounding of resampled reflectance
    for i in (0, 1, 50, len(ref) - 1):
        a, b = ref[i], packed[i]
        assert a["id"] == b["id"] and a["s1_id"] == b["s1_id"]
        assert torch.equal(a["labels"], b["labels"])
        assert torch.allclose(a["bounds"], b["bounds"])
        assert torch.allclose(a["s1"], b["s1"], atol=1e-5)
        assert (a["s2"] - b["s2"]).abs().max() <= s2_tol
        assert b["s2"].dtype == torch.float32 and b["s2"].shape == a["s2"].shape


def test_real_sample_packs_and_matches(sample_root, tmp_path):
    out = pack(sample_root, tmp_path / "sample_store", progress=False, workers=0)
    ref, packed = BigEarthNetMM(sample_root, normalize=False), PackedPairs(out, normalize=False)
    for i in range(len(ref)):
        assert torch.equal(ref[i]["s1"], packed[i]["s1"])
        assert (ref[i]["s2"] - packed[i]["s2"]).abs().max() <= 0.5


def test_splits_index_and_open_dataset(synth_v1, store):
    for split in ("train", "val", "test"):
        ref, packed = BigEarthNetMM(synth_v1, split=split), PackedPairs(store, split=split)
        assert list(ref.index["s2_name"]) == list(packed.index["s2_name"])
        assert torch.allclose(ref[0]["s2"], packed[0]["s2"], atol=1e-3)
    assert isinstance(open_dataset(store, split="validation"), PackedPairs)
    assert isinstance(open_dataset(synth_v1), BigEarthNetMM)
    idx = PackedPairs(store).index
    assert {"west", "south", "east", "north", "crs", "date"} <= set(idx.columns)
    assert idx["crs"].str.startswith("EPSG:326").all() and idx["date"].str.len().eq(8).all()


def test_float16_s1_within_half_precision(synth_v1, tmp_path):
    out = pack(synth_v1, tmp_path / "f16", s1_dtype="float16", progress=False, workers=0)
    assert np.load(out / "s1.npy", mmap_mode="r").dtype == np.float16
    a, b = BigEarthNetMM(synth_v1, normalize=False)[3], PackedPairs(out, normalize=False)[3]
    assert (a["s1"] - b["s1"]).abs().max() <= 0.02  # float16 step at |x| < 32 dB is <= 1/64


def test_multiworker_loader_reads_every_pair_once(store):
    ds = PackedPairs(store)
    loader = torch.utils.data.DataLoader(ds, batch_size=16, num_workers=2, shuffle=True,
                                         generator=torch.Generator().manual_seed(0))
    ids = [i for batch in loader for i in batch["id"]]
    assert sorted(ids) == sorted(ds.index["s2_name"])


def test_existing_store_is_kept_unless_forced(synth_v1, store, tmp_path):
    before = (store / "meta.json").read_text()
    with pytest.raises(XJepaError, match="exists"):
        pack(synth_v1, store, progress=False)
    assert (store / "meta.json").read_text() == before
    small = pack(synth_v1, tmp_path / "s", split_file=None, progress=False, workers=0)
    assert not [p for p in small.parent.iterdir() if ".tmp-" in p.name or p.name.endswith(".old")]


def test_not_a_store_and_wrong_version(tmp_path, store):
    with pytest.raises(DataError, match="not a packed store"):
        PackedPairs(tmp_path)
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(store, copy)
    meta = json.loads((copy / "meta.json").read_text())
    meta["version"] = 99
    (copy / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(DataError, match="re-pack"):
        PackedPairs(copy)


def test_failed_pack_leaves_no_partial_store(small_v1, tmp_path):
    ds = BigEarthNetMM(small_v1)
    ds.s2_paths(3)["B11"].unlink()
    with pytest.raises(DataError, match="B11"):
        pack(small_v1, tmp_path / "broken", progress=False, workers=0)
    assert not (tmp_path / "broken").exists()
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


def test_row_writer_makes_a_loadable_npy_and_checks_rows(tmp_path):
    from xjepa_kit.data.packed import _NpyWriter

    rows = np.arange(3 * 2 * 4 * 4, dtype=np.float64).reshape(3, 2, 4, 4)
    with _NpyWriter(tmp_path / "a.npy", np.float16, (3, 2, 4, 4)) as w:
        for i, r in enumerate(rows):
            w.append(r, f"row{i}")
    loaded = np.load(tmp_path / "a.npy", mmap_mode="r")
    assert loaded.dtype == np.float16 and np.array_equal(loaded, rows.astype(np.float16))
    with pytest.raises(DataError, match="row1: array of shape \\(2, 4, 5\\)"):
        with _NpyWriter(tmp_path / "b.npy", np.float32, (2, 2, 4, 4)) as w:
            w.append(rows[0], "row0")
            w.append(np.zeros((2, 4, 5)), "row1")
    with pytest.raises(DataError, match="wrote 1 of 2 rows"):
        with _NpyWriter(tmp_path / "c.npy", np.float32, (2, 2, 4, 4)) as w:
            w.append(rows[0], "row0")


def test_a_ten_band_ben14k_copy_checks_packs_and_reads(small_v1, tmp_path):
    import rasterio
    from helpers import to_ben14k, write_multiband

    from xjepa_kit.data import check
    from xjepa_kit.data.bands import S2_BANDS_10, S2_BANDS_12

    root = to_ben14k(small_v1, tmp_path / "b14")
    for path in (root / "BigEarthNet-S2").rglob("*.tif"):  # keep the 10 default bands, with descriptions
        with rasterio.open(path) as src:
            arr, crs, transform = src.read(), src.crs, src.transform
        write_multiband(path, arr[[S2_BANDS_12.index(b) for b in S2_BANDS_10]], crs, transform, S2_BANDS_10)
    assert check(root).ok, check(root).summary()
    store = pack(root, tmp_path / "store", workers=0, progress=False)
    assert json.loads((store / "meta.json").read_text())["s2_bands"] == list(S2_BANDS_10)
    ref, packed = BigEarthNetMM(root), PackedPairs(store)
    assert torch.allclose(ref[3]["s2"], packed[3]["s2"], atol=1e-6) and ref[3]["id"] == packed[3]["id"]
    with pytest.raises(DataError, match=r"10-band copy, without B01, B09; read it with s2_bands=10"):
        PackedPairs(store, s2_bands=12)
    with pytest.raises(DataError, match=r"B01, B09 missing"):
        BigEarthNetMM(root, s2_bands=12)[0]

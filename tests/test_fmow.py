"""FMoWPairs on tiny fake fMoW-RGB / fMoW-Sentinel trees written by make_fake_fmow."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
import torch
from rasterio.warp import transform

from xjepa_kit.data.bands import (
    FMOW_RGB_MEAN, FMOW_RGB_STD, FMOW_SENTINEL_BANDS_10, FMOW_SENTINEL_BANDS_13,
    FMOW_SENTINEL_MEAN, FMOW_SENTINEL_STD,
)
from xjepa_kit.data.fmow import FMOW_CATEGORIES, FMoWPairs
from xjepa_kit.data.fmow_fakes import fake_origin, fake_rgb_value, fake_sentinel_value, make_fake_fmow
from xjepa_kit.errors import DataError

CATS = ("airport", "zoo", "port")
KEEP = [FMOW_SENTINEL_BANDS_13.index(b) for b in FMOW_SENTINEL_BANDS_10]


@pytest.fixture(scope="module")
def fake(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_fake_fmow(tmp_path_factory.mktemp("fmow"), categories=CATS, splits=("train", "val", "test"))


@pytest.fixture
def fake_copy(fake: tuple[Path, Path], tmp_path: Path) -> tuple[Path, Path]:
    """A private copy for tests that damage files."""
    rgb, sen = tmp_path / "rgb", tmp_path / "sen"
    shutil.copytree(fake[0], rgb)
    shutil.copytree(fake[1], sen)
    return rgb, sen


def _parse(sample_id: str) -> tuple[str, int, int]:
    cat, loc, t = sample_id.rsplit("_", 2)
    return cat, int(loc), int(t)


def _meta(rgb_root: Path, cat: str, loc: int, t: int) -> dict:
    return json.loads((rgb_root / "train" / cat / f"{cat}_{loc}" / f"{cat}_{loc}_{t}_rgb.json").read_text())


def _expected_sentinel(cat: str, loc: int, img: int) -> np.ndarray:
    return np.array([fake_sentinel_value(cat, loc, img, b) for b in KEEP], dtype=np.float32)


def test_categories() -> None:
    assert len(FMOW_CATEGORIES) == 62 and list(FMOW_CATEGORIES) == sorted(FMOW_CATEGORIES)
    assert FMOW_CATEGORIES[0] == "airport" and FMOW_CATEGORIES[-1] == "zoo"


def test_exact_pairs_right_files_and_raw_values(fake: tuple[Path, Path]) -> None:
    ds = FMoWPairs(*fake, split="train", pairing="exact", size=16, normalize=False, context=0.0)
    assert len(ds) == 3 * 2 * 2 and ds.unpaired == 0
    ids = sorted(ds[i]["id"] for i in range(len(ds)))
    assert ids == sorted(f"{c}_{loc}_{t}" for c in CATS for loc in range(2) for t in range(2))
    for i in range(len(ds)):
        s = ds[i]
        cat, loc, t = _parse(s["id"])
        # Sentinel: the kept bands, raw, of exactly this image (constant bands survive resizing).
        np.testing.assert_allclose(s["sentinel"].mean(dim=(1, 2)).numpy(), _expected_sentinel(cat, loc, t))
        assert torch.equal(s["sentinel"].amax(dim=(1, 2)), s["sentinel"].amin(dim=(1, 2)))
        # RGB: context 0 crops exactly the box, whose grey value encodes the category.
        assert int(s["label"]) == FMOW_CATEGORIES.index(cat) and int(s["labels"].argmax()) == int(s["label"])
        inside, _ = fake_rgb_value(cat)
        assert abs(float(s["rgb"].mean()) - inside / 255) < 3 / 255
        assert float(s["rgb"].max() - s["rgb"].min()) < 6 / 255


def test_context_adds_surroundings(fake: tuple[Path, Path]) -> None:
    rgb_root = fake[0]
    ds = FMoWPairs(rgb_root, fake[1], split="train", size=48, normalize=False, context=0.5)
    for i in range(len(ds)):
        s = ds[i]
        cat, loc, t = _parse(s["id"])
        meta = _meta(rgb_root, cat, loc, t)
        x, y, w, h = meta["bounding_boxes"][0]["box"]
        x0, x1 = max(0, x - w // 2), min(64, x + w + w // 2)  # fakes are 64 x 48 pixels
        y0, y1 = max(0, y - h // 2), min(48, y + h + h // 2)
        frac = w * h / ((x1 - x0) * (y1 - y0))
        assert frac < 1  # the box alone would be a flat grey
        inside, outside = fake_rgb_value(cat)
        want = (frac * inside + (1 - frac) * outside) / 255
        assert abs(float(s["rgb"].mean()) - want) < 0.02, (s["id"], float(s["rgb"].mean()), want)


def test_location_pairing_takes_nearest_timestamp(fake: tuple[Path, Path]) -> None:
    rgb_root, sen_root = fake
    csv = pd.read_csv(sen_root / "train.csv")
    csv["ts"] = pd.to_datetime(csv["timestamp"], utc=True)
    ds = FMoWPairs(rgb_root, sen_root, split="train", pairing="location", size=8, normalize=False)
    assert len(ds) == 12 and ds.unpaired == 0
    for i in range(len(ds)):
        s = ds[i]
        cat, loc, t = _parse(s["id"])
        meta = _meta(rgb_root, cat, loc, t)
        cands = csv[(csv.category == cat) & (csv.location_id == loc)]
        gaps = (cands["ts"] - pd.Timestamp(meta["timestamp"])).abs()
        want = int(cands.loc[gaps.idxmin(), "image_id"])
        assert want == 1 - t  # the fakes make the nearest Sentinel image the other one
        np.testing.assert_allclose(s["sentinel"][:, 0, 0].numpy(), _expected_sentinel(cat, loc, want))


def test_location_ties_take_lowest_image_id(fake_copy: tuple[Path, Path]) -> None:
    rgb, sen = fake_copy
    csv = pd.read_csv(sen / "train.csv")
    csv["timestamp"] = "2016-06-01T00:00:00Z"
    csv.to_csv(sen / "train.csv", index=False)
    ds = FMoWPairs(rgb, sen, split="train", pairing="location", size=8, normalize=False)
    assert {p[3] for p in ds.pairs} == {0}
    cat, loc, _ = _parse(ds[1]["id"])
    np.testing.assert_allclose(ds[1]["sentinel"][:, 0, 0].numpy(), _expected_sentinel(cat, loc, 0))


def test_shapes_dtypes_labels_and_normalisation(fake: tuple[Path, Path]) -> None:
    ds = FMoWPairs(*fake, split="train")
    s = ds[3]
    cat, loc, t = _parse(s["id"])
    assert s["rgb"].shape == (3, 96, 96) and s["rgb"].dtype == torch.float32
    assert s["sentinel"].shape == (10, 96, 96) and s["sentinel"].dtype == torch.float32
    assert s["label"].dtype == torch.int64 and int(s["label"]) == FMOW_CATEGORIES.index(cat)
    assert s["labels"].shape == (62,) and s["labels"].dtype == torch.float32
    assert s["labels"].sum() == 1 and int(s["labels"].argmax()) == FMOW_CATEGORIES.index(cat)
    mean = np.array([FMOW_SENTINEL_MEAN[b] for b in KEEP], dtype=np.float32)
    std = np.array([FMOW_SENTINEL_STD[b] for b in KEEP], dtype=np.float32)
    want = (_expected_sentinel(cat, loc, t) - mean) / std
    np.testing.assert_allclose(s["sentinel"][:, 5, 7].numpy(), want, rtol=1e-5, atol=1e-5)
    raw = FMoWPairs(*fake, split="train", normalize=False)[3]["rgb"]
    back = s["rgb"] * torch.tensor(FMOW_RGB_STD).view(3, 1, 1) + torch.tensor(FMOW_RGB_MEAN).view(3, 1, 1)
    torch.testing.assert_close(back, raw, atol=1e-5, rtol=1e-5)
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=4)))
    assert batch["rgb"].shape == (4, 3, 96, 96) and batch["label"].shape == (4,)


def test_bounds_match_written_transform(fake: tuple[Path, Path]) -> None:
    ds = FMoWPairs(*fake, split="train", size=8)
    for i in (0, 5, 11):
        s = ds[i]
        cat, loc, t = _parse(s["id"])
        west, south, east, north = s["bounds"]
        with rasterio.open(fake[1] / "train" / cat / f"{cat}_{loc}" / f"{cat}_{loc}_{t}.tif") as src:
            assert src.crs.to_epsg() // 100 == 326
            (lon,), (lat,) = transform(src.crs, "EPSG:4326", [src.transform.c], [src.transform.f])
        assert abs(west - lon) < 2e-3 and abs(north - lat) < 2e-3
        assert np.allclose((lon, lat), fake_origin(cat, loc), atol=1e-6)
        assert 0.002 < east - west < 0.005 and 0.002 < north - south < 0.004  # 320 m


@pytest.mark.parametrize("split", ["val", "validation", "test"])
def test_split_names(fake: tuple[Path, Path], split: str) -> None:
    ds = FMoWPairs(*fake, split=split, size=8)
    assert len(ds) == 12
    assert ds.sentinel_dir.name == ("test_gt" if split == "test" else "val")


def test_rgb_test_folder_without_gt_suffix(fake_copy: tuple[Path, Path]) -> None:
    rgb, sen = fake_copy
    (rgb / "test_gt").rename(rgb / "test")
    assert len(FMoWPairs(rgb, sen, split="test", size=8)) == 12


def test_wrong_band_count_names_file(fake_copy: tuple[Path, Path]) -> None:
    rgb, sen = fake_copy
    ds = FMoWPairs(rgb, sen, split="train", size=8)
    cat, loc, t = _parse(ds[0]["id"])
    tif = sen / "train" / cat / f"{cat}_{loc}" / f"{cat}_{loc}_{t}.tif"
    with rasterio.open(tif) as src:
        profile, data = src.profile, src.read()
    profile["count"] = 12
    with rasterio.open(tif, "w", **profile) as dst:
        dst.write(data[:12])
    with pytest.raises(DataError, match=tif.name):
        ds[0]


def test_missing_roots_and_splits(fake: tuple[Path, Path], tmp_path: Path) -> None:
    with pytest.raises(DataError, match="nowhere"):
        FMoWPairs(tmp_path / "nowhere", fake[1], split="train")
    with pytest.raises(DataError, match="nowhere"):
        FMoWPairs(fake[0], tmp_path / "nowhere", split="train")
    with pytest.raises(DataError, match="split"):
        FMoWPairs(tmp_path, fake[1], split="train")  # root exists, no train/ inside
    with pytest.raises(DataError):
        FMoWPairs(*fake, split="holdout")


def test_fallback_without_csv(fake_copy: tuple[Path, Path]) -> None:
    rgb, sen = fake_copy
    (sen / "train.csv").unlink()
    ds = FMoWPairs(rgb, sen, split="train", pairing="exact", size=8, normalize=False)
    assert len(ds) == 12 and ds.unpaired == 0
    s = ds[7]
    np.testing.assert_allclose(s["sentinel"][:, 0, 0].numpy(), _expected_sentinel(*_parse(s["id"])))
    loc_ds = FMoWPairs(rgb, sen, split="train", pairing="location", size=8)
    assert {p[3] for p in loc_ds.pairs} == {0}  # no timestamps: all tied -> lowest image id


def test_unpaired_counted_and_no_pairs_raises(fake_copy: tuple[Path, Path]) -> None:
    rgb, sen = fake_copy
    csv = pd.read_csv(sen / "train.csv")
    drop = (csv.category == "zoo") & (csv.location_id == 1) & (csv.image_id == 0)
    csv[~drop].to_csv(sen / "train.csv", index=False)
    ds = FMoWPairs(rgb, sen, split="train", pairing="exact", size=8)
    assert len(ds) == 11 and ds.unpaired == 1
    assert ("zoo", 1, 0) not in {p[:3] for p in ds.pairs}
    assert len(FMoWPairs(rgb, sen, split="train", pairing="location", size=8)) == 12
    csv.iloc[:0].to_csv(sen / "train.csv", index=False)
    with pytest.raises(DataError, match="train") as err:
        FMoWPairs(rgb, sen, split="train")
    assert str(rgb) in str(err.value) and str(sen) in str(err.value)


def test_unknown_category_folder(fake_copy: tuple[Path, Path]) -> None:
    rgb, sen = fake_copy
    (rgb / "train" / "volcano" / "volcano_0").mkdir(parents=True)
    with pytest.raises(DataError, match="volcano"):
        FMoWPairs(rgb, sen, split="train")


def test_bad_csv_rows_name_the_row_and_value(fake_copy: tuple[Path, Path]) -> None:
    rgb, sen = fake_copy
    good = pd.read_csv(sen / "train.csv")
    for column, value, shown in (("image_id", None, "image_id is empty"), ("location_id", "x7", "location_id 'x7'"),
                                 ("category", "Zoo", "category 'Zoo'")):
        bad = good.astype({column: object})
        bad.loc[3, column] = value
        bad.to_csv(sen / "train.csv", index=False)
        with pytest.raises(DataError, match=rf"train.csv, line 5.*{shown}|unknown fMoW {shown} in .*train.csv, line 5"):
            FMoWPairs(rgb, sen, split="train")


def test_unreadable_files_name_the_file(fake_copy: tuple[Path, Path]) -> None:
    rgb, sen = fake_copy
    ds = FMoWPairs(rgb, sen, split="train", size=8)
    cat, loc, t = _parse(ds[0]["id"])
    jpg = rgb / "train" / cat / f"{cat}_{loc}" / f"{cat}_{loc}_{t}_rgb.jpg"
    jpg.write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match=jpg.name):
        ds[0]
    tif = sen / "train" / cat / f"{cat}_{loc}" / f"{cat}_{loc}_{t}.tif"
    tif.write_bytes(b"not a tiff")
    with pytest.raises(DataError, match=tif.name):
        ds[0]

"""Pictures: composites, mask overlays, sample / mask figures, UMAP and pair distances (xjepa_kit.viz)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

from xjepa_kit.data import BigEarthNetMM
from xjepa_kit.data.bands import S2_BANDS_10, S2_BANDS_12
from xjepa_kit.embeddings import Embeddings
from xjepa_kit.masks import sample_masks
from xjepa_kit.viz import (
    COMPOSITES, dominant_labels, mask_overlay, pair_distances, plot_loss_curves, plot_masks, plot_pair_distances,
    plot_pairs, plot_umap, rgb, sar, umap_2d,
)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


def _halves(bright: float, dark: float, size: int = 16) -> np.ndarray:
    x = np.full((size, size), dark, np.float32)
    x[:, : size // 2] = bright
    return x


@pytest.mark.parametrize("kind, expected", [("rgb", ("B04", "B03", "B02")), ("false", ("B08", "B04", "B03")),
                                            ("swir", ("B12", "B8A", "B04"))])
def test_composite_channels_come_from_the_right_bands(kind, expected):
    assert set(COMPOSITES) == {"rgb", "false", "swir"}
    for channel, band in enumerate(expected):
        s2 = np.full((10, 16, 16), 300.0, np.float32)
        s2[S2_BANDS_10.index(band)] = _halves(6000, 400)  # the only band with any contrast
        out = rgb(torch.from_numpy(s2), kind=kind)
        assert out.shape == (16, 16, 3) and out.dtype == np.float32
        assert out.min() >= 0 and out.max() <= 1
        assert np.all(out[:, :8, channel] == 1) and np.all(out[:, 8:, channel] == 0)
        others = [c for c in range(3) if c != channel]
        assert np.all(out[..., others] == 0), (kind, band)


def test_rgb_twelve_bands_and_constant_input():
    s2 = np.full((12, 16, 16), 500.0, np.float32)
    s2[S2_BANDS_12.index("B04")] = _halves(3000, 100)
    assert rgb(s2)[0, 0, 0] == 1 and rgb(s2)[0, 0, 1] == 0  # 12 channels read as S2_BANDS_12
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no division by zero for constant channels
        flat = rgb(np.full((10, 8, 8), 1234.0), kind="swir")
    assert flat.shape == (8, 8, 3) and np.all(flat == 0)
    with pytest.raises(ValueError, match="kind"):
        rgb(s2, S2_BANDS_12, kind="ndvi")


def test_sar_channel_order():
    vv_only = np.stack([_halves(-5, -20), np.full((16, 16), -20.0)])
    out = sar(vv_only)
    assert out.shape == (16, 16, 3) and out.min() >= 0 and out.max() <= 1
    assert np.all(out[:, :8, 0] == 1) and np.all(out[:, 8:, 0] == 0)  # R = VV
    assert np.all(out[..., 1] == 0)  # VH constant
    vh_only = np.stack([np.full((16, 16), -10.0), _halves(-12, -25)])
    out = sar(torch.from_numpy(vh_only))
    assert np.all(out[..., 0] == 0) and np.all(out[:, :8, 1] == 1)  # G = VH
    assert np.all(out[:, :8, 2] == 0) and np.all(out[:, 8:, 2] == 1)  # B = VV - VH: large where VH is low


def test_mask_overlay_tints_exactly_the_masked_cells():
    img = np.random.default_rng(0).uniform(0.05, 0.95, (32, 32, 3)).astype(np.float32)
    context, targets, grid = torch.tensor([0, 1]), torch.tensor([[5, 6], [15, 14]]), 4
    out = mask_overlay(img, context, targets, grid, alpha=0.5)
    assert out.shape == img.shape and out.dtype == np.float32
    expected = np.zeros((4, 4), bool)
    for t in (0, 1, 5, 6, 14, 15):
        expected[t // grid, t % grid] = True
    changed = np.any(out != img, axis=-1)
    assert np.array_equal(changed, np.kron(expected, np.ones((8, 8), bool)))
    assert np.array_equal(out[:8, 16:24], img[:8, 16:24])  # token 2: in neither

    def tint(t: int) -> np.ndarray:  # the colour added to token t's cell
        return (out - 0.5 * img)[(t // grid) * 8, (t % grid) * 8]

    assert not np.allclose(tint(0), tint(5)) and not np.allclose(tint(5), tint(15))
    assert np.allclose(tint(5), tint(6)) and np.allclose(tint(0), tint(1))
    whole = mask_overlay(np.zeros((30, 30, 3)), np.arange(16), np.zeros((0, 0), int), grid)
    assert np.all(whole.sum(-1) > 0)  # cells cover every pixel when the size is not a multiple of the grid


@pytest.fixture(scope="module")
def raw_pairs(sample_root):
    ds = BigEarthNetMM(sample_root, normalize=False)
    return [ds[0], ds[1], ds.read_raw(2)]


def test_composites_on_real_pairs(raw_pairs):
    for s in raw_pairs:
        for pic in (rgb(s["s2"]), rgb(s["s2"], kind="false"), sar(s["s1"])):
            assert pic.shape == (120, 120, 3) and pic.min() >= 0 and pic.max() <= 1
            assert pic.std() > 0.05  # a real picture, not a flat one


def test_plot_pairs_and_masks(raw_pairs):
    fig = plot_pairs(raw_pairs, titles=["a", "b", "c"])
    assert len(fig.axes) == 9
    assert fig.axes[1].get_xlabel() and fig.axes[0].get_ylabel() == "a"
    masks = sample_masks(np.random.default_rng(0), 2, 8)
    s1 = torch.stack([raw_pairs[0]["s1"], raw_pairs[1]["s1"]])
    s2 = torch.stack([raw_pairs[0]["s2"], raw_pairs[1]["s2"]])
    fig = plot_masks(s1, s2, masks, index=1)
    assert len(fig.axes) == 2
    assert len(fig.legends[0].get_texts()) == 1 + masks.targets.shape[1]
    shown = np.asarray(fig.axes[0].images[0].get_array())
    t = int(masks.targets[1, 0, 0])
    r, c = (t // 8) * 15 + 7, (t % 8) * 15 + 7
    assert not np.allclose(shown[r, c], rgb(s2[1])[r, c])


@pytest.fixture(scope="module")
def clusters():
    """Two well-separated direction clusters, 30 + 30 items per modality, and their one UMAP fit."""
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(2, 16))
    which = np.repeat([0, 1], 30)
    vectors = {m: centres[which] + 0.05 * rng.normal(size=(60, 16)) for m in ("s1", "s2")}
    return which, umap_2d(vectors, seed=0, n_neighbors=10)


def test_umap_2d_keeps_clusters_apart(clusters):
    which, coords = clusters
    assert set(coords) == {"s1", "s2"}
    assert all(xy.shape == (60, 2) and np.isfinite(xy).all() for xy in coords.values())
    xy, cl = np.concatenate(list(coords.values())), np.concatenate([which, which])
    d = np.linalg.norm(xy[:, None] - xy[None], axis=-1)
    same = cl[:, None] == cl[None]
    assert d[same].mean() < 0.5 * d[~same].mean()


def test_plot_umap(clusters):
    which, coords = clusters
    labels = np.zeros((60, 19), bool)
    labels[which == 0, 2] = True  # Arable land
    labels[which == 1, 8] = True  # Broad-leaved forest
    labels[:5, 8] = True
    fig = plot_umap(coords, labels, title="t")
    assert len(fig.axes) == 2
    names = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert names == ["Arable land", "Broad-leaved forest"]
    assert [t.get_text() for t in fig.axes[1].get_legend().get_texts()] == ["s1", "s2"]


def test_dominant_labels():
    lab = np.array([[1, 0, 1], [0, 0, 1], [0, 0, 0], [1, 1, 0]], bool)  # class 2 and 0 twice, 1 once
    assert dominant_labels(lab).tolist() == [0, 2, -1, 0]


def _emb(s1: np.ndarray, s2: np.ndarray) -> Embeddings:
    n = len(s1)
    return Embeddings({"s1": s1, "s2": s2}, np.arange(n).astype(str), np.zeros((n, 19), bool), np.zeros((n, 4)))


def test_pair_distances_and_plot():
    rng = np.random.default_rng(2)
    a = rng.normal(size=(40, 16)).astype(np.float32)
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    d = pair_distances(_emb(a, a.copy()))
    assert d["pairs"].shape == d["non_pairs"].shape == (40,)
    assert np.allclose(d["pairs"], 0, atol=1e-5)
    assert np.all(d["non_pairs"] > 1e-3)  # no item is its own non-pair
    assert np.array_equal(d["non_pairs"], pair_distances(_emb(a, a), seed=0)["non_pairs"])
    before = _emb(a, rng.normal(size=(40, 16)).astype(np.float32))
    fig = plot_pair_distances(before, _emb(a, a))
    assert len(fig.axes) == 2 and fig.axes[0].get_title() == "before training"


def test_old_pictures_still_work(tmp_path):
    rows = [{"step": s, "loss": 1.0 / (s + 1)} for s in range(5)]
    (tmp_path / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    fig = plot_loss_curves({"run": tmp_path})
    assert len(fig.axes[0].lines) == 1
    import matplotlib

    assert matplotlib.get_backend().lower() == "agg"

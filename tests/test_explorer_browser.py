"""Headless-browser check of the explorer's offline page: Debian Chromium renders it, the PNG is inspected.

Run with ``pytest -m slow tests/test_explorer_browser.py`` or ``scripts/check_explorer_browser.sh``
(which installs ``chromium`` and ``libjs-leaflet`` when missing). ``XJEPA_EXPLORER_SCREENSHOT=path``
keeps a copy of the real-sample screenshot.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from xjepa_kit.embeddings import Embeddings
from xjepa_kit.errors import XJepaError
from xjepa_kit.explorer_html import BACKGROUND
from xjepa_kit.explorer_logic import COLORS

pytestmark = pytest.mark.slow
MAP_WIDTH = 750  # of the 1000-pixel window; the page's side panel (240 px) is right of it


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("Chromium is not installed: `apt-get install chromium` (or run scripts/check_explorer_browser.sh)")


def _leaflet() -> None:
    from xjepa_kit.explorer_html import find_leaflet

    try:
        find_leaflet()
    except XJepaError as err:
        pytest.skip(str(err))


def screenshot(html: Path, png: Path, profile: Path) -> np.ndarray:
    """Render ``html`` in headless Chromium at 1000 x 800 -> RGB float image [800, 1000, 3] in [0, 1]."""
    from matplotlib.image import imread

    cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
           f"--user-data-dir={profile}", "--window-size=1000,800", "--virtual-time-budget=5000",
           f"--screenshot={png}", html.resolve().as_uri()]
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=180)
    assert png.is_file(), f"chromium wrote no screenshot (rc {proc.returncode}): {proc.stderr[-2000:]}"
    return imread(png)[..., :3].astype(np.float64)


def _near(img: np.ndarray, hex_color: str, tol: float = 0.12) -> np.ndarray:
    rgb = np.array([int(hex_color[i:i + 2], 16) for i in (1, 3, 5)]) / 255.0
    return (np.abs(img - rgb) < tol).all(-1)


def _inside(mask: np.ndarray, shrink: int = 8) -> tuple[slice, slice]:
    """Rows/cols strictly inside the bounding box of ``mask`` (a drawn outline)."""
    ys, xs = np.nonzero(mask)
    return slice(ys.min() + shrink, ys.max() - shrink), slice(xs.min() + shrink, xs.max() - shrink)


def test_real_sample_page_draws_footprint_and_images(sample_root, tmp_path):
    _chromium(), _leaflet()
    from xjepa_kit.config import load_config
    from xjepa_kit.data.bigearthnet import BigEarthNetMM
    from xjepa_kit.embeddings import embed
    from xjepa_kit.explorer import RetrievalExplorer
    from xjepa_kit.models import build_model

    cfg = load_config("tiny_cpu", ["model.encoder.embed_dim=48", "model.encoder.depth=1", "model.encoder.num_heads=2",
                                   "model.predictor.embed_dim=32", "model.predictor.depth=1",
                                   "model.predictor.num_heads=2"])
    ds = BigEarthNetMM(sample_root)
    ex = RetrievalExplorer(embed(build_model(cfg), ds, num_workers=0), ds, k=5)
    ex.select(query=4, direction="s2->s1")
    png = tmp_path / "sample.png"
    img = screenshot(ex.to_html(tmp_path / "sample.html"), png, tmp_path / "profile")[:, :MAP_WIDTH]
    if os.environ.get("XJEPA_EXPLORER_SCREENSHOT"):
        shutil.copyfile(png, os.environ["XJEPA_EXPLORER_SCREENSHOT"])
    assert img.std() > 0.05 and len(np.unique(img.reshape(-1, 3), axis=0)) > 500  # not a blank page
    query = _near(img, COLORS["query"])
    assert query.sum() > 1000, f"query outline: only {query.sum()} magenta pixels"
    inner = img[_inside(query)]  # the query's S2 image, inside its outline
    background = _near(inner, BACKGROUND, tol=0.03)
    assert inner.shape[0] > 100 and background.mean() < 0.05, "no image overlay inside the query footprint"
    assert inner.std(axis=(0, 1)).min() > 0.03, "the overlay inside the footprint is flat"


class GridPairs:
    """In-memory stand-in for a dataset: a 5 x 5 grid of adjacent 0.02° patches with smooth random images."""

    normalize = False
    s2_band_names = ("B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12")

    def __init__(self, n_side: int = 5, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.n = n_side * n_side
        col, row = np.arange(self.n) % n_side, np.arange(self.n) // n_side
        west, north = 10.0 + 0.02 * col, 50.0 - 0.013 * row
        self.bounds = np.stack([west, north - 0.013, west + 0.02, north], 1)
        yy, xx = np.mgrid[0:120, 0:120] / 120.0
        self.images = []
        for _ in range(self.n):
            f = rng.uniform(1, 4, size=(12, 2))
            waves = np.sin(2 * np.pi * (f[:, :1, None] * xx + f[:, 1:, None] * yy))  # [12, 120, 120]
            self.images.append((1500 + 1000 * waves[:10], -12 + 4 * waves[10:]))
        self.ids = np.array([f"grid_{c}_{r}" for c, r in zip(col, row)])
        self.labels = rng.random((self.n, 19)) < 0.2

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        s2, s1 = self.images[i]
        return {"s2": s2, "s1": s1, "id": self.ids[i]}

    def embeddings(self) -> Embeddings:
        """'Geographic' unit vectors [N, 4]: cosine falls with distance, so the neighbours rank first."""
        cx, cy = self.bounds[:, [0, 2]].mean(1) / 0.02, self.bounds[:, [1, 3]].mean(1) / 0.013
        a = np.pi / 12
        v = (np.stack([np.cos(a * cx), np.sin(a * cx), np.cos(a * cy), np.sin(a * cy)], 1) / np.sqrt(2))
        v = v.astype(np.float32)
        return Embeddings({"s1": v, "s2": v.copy()}, self.ids, self.labels, self.bounds)


def test_grid_page_draws_results_and_neighbours(tmp_path):
    _chromium(), _leaflet()
    from xjepa_kit.explorer import RetrievalExplorer

    ds = GridPairs()
    ex = RetrievalExplorer(ds.embeddings(), ds, k=8, direction="s2->s2")
    ex.select(query=12)  # the centre patch: its eight neighbours are the results
    assert {r["index"] for r in ex.results} == {6, 7, 8, 11, 13, 16, 17, 18}
    png = tmp_path / "grid.png"
    img = screenshot(ex.to_html(tmp_path / "grid.html", fit="results"), png, tmp_path / "profile")[:, :MAP_WIDTH]
    if os.environ.get("XJEPA_EXPLORER_SCREENSHOT"):
        shutil.copyfile(png, Path(os.environ["XJEPA_EXPLORER_SCREENSHOT"]).with_suffix(".grid.png"))
    query_px, result_px = _near(img, COLORS["query"]), _near(img, COLORS["result"])
    assert query_px.sum() > 1000 and result_px.sum() > 3000, (query_px.sum(), result_px.sum())
    inner = img[_inside(result_px)]  # the 3 x 3 block: images everywhere, no background showing
    assert _near(inner, BACKGROUND, tol=0.03).mean() < 0.02 and inner.std(axis=(0, 1)).min() > 0.03
    bg = np.array([int(BACKGROUND[i:i + 2], 16) for i in (1, 3, 5)])
    other = np.array([int(COLORS["other"][i:i + 2], 16) for i in (1, 3, 5)])
    tint = "#" + "".join(f"{round(c):02x}" for c in 0.75 * bg + 0.25 * other)  # grey fill over background
    assert _near(img, tint, tol=0.04).sum() > 2000, "the neighbouring 'other' footprints are not drawn"

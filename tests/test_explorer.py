"""Retrieval explorer: search logic against brute force, footprints, widgets and map, offline HTML."""

from __future__ import annotations

import re

import numpy as np
import pytest

from xjepa_kit.data.labels import LABELS
from xjepa_kit.embeddings import Embeddings
from xjepa_kit.errors import XJepaError
from xjepa_kit.explorer_logic import COLORS, directions, footprints_geojson, query_options, search_results, zoom_for


def random_embeddings(n: int, d: int = 8, seed: int = 0, ids=None) -> Embeddings:
    rng = np.random.default_rng(seed)
    vecs = {}
    for m in ("s1", "s2"):
        v = rng.normal(size=(n, d)).astype(np.float32)
        vecs[m] = v / np.linalg.norm(v, axis=1, keepdims=True)
    labels = rng.random((n, 19)) < 0.2
    west = np.arange(n) * 0.02
    bounds = np.stack([west, np.full(n, 50.0), west + 0.015, np.full(n, 50.01)], 1)
    ids = np.array([f"p{i}" for i in range(n)] if ids is None else ids)
    return Embeddings(vecs, ids, labels, bounds)


def brute(q_vec: np.ndarray, archive: np.ndarray, k: int, skip: int | None = None) -> list[int]:
    scores = archive @ q_vec
    order = [int(i) for i in np.argsort(-scores, kind="stable") if i != skip]
    return order[:k]


def test_directions():
    assert directions(["s1", "s2"]) == ["s1->s2", "s2->s1", "s1->s1", "s2->s2"]
    with pytest.raises(XJepaError):
        directions(["s2"])


@pytest.mark.parametrize("direction", ["s1->s2", "s2->s1", "s1->s1", "s2->s2"])
def test_search_matches_brute_force_same_set(direction):
    emb = random_embeddings(30, seed=1)
    src, tgt = direction.split("->")
    for q in (0, 7, 29):
        res = search_results(emb, q, direction, k=6)
        expect = brute(emb.vectors[src][q], emb.vectors[tgt], 6, skip=q if src == tgt else None)
        assert [r["index"] for r in res] == expect
        assert [r["rank"] for r in res] == list(range(1, 7))
        scores = [r["score"] for r in res]
        assert scores == sorted(scores, reverse=True)
        np.testing.assert_allclose(scores, emb.vectors[tgt][expect] @ emb.vectors[src][q], rtol=1e-5)
        if src == tgt:
            assert q not in [r["index"] for r in res]
        for r in res:
            assert r["is_partner"] == (r["index"] == q) and r["id"] == emb.ids[r["index"]]


def test_search_separate_archive_and_k_clipped():
    queries = random_embeddings(5, seed=2)
    archive = random_embeddings(12, seed=3, ids=[f"a{i}" for i in range(10)] + ["p3", "x"])
    res = search_results(queries, 3, "s2->s2", k=50, archive=archive)
    assert len(res) == 12  # nothing excluded: another set
    assert [r["index"] for r in res] == brute(queries.vectors["s2"][3], archive.vectors["s2"], 12)
    assert [r["id"] for r in res if r["is_partner"]] == ["p3"]
    with pytest.raises(XJepaError):
        search_results(queries, 0, "s1->s3", k=3)
    with pytest.raises(XJepaError):
        search_results(queries, 9, "s1->s2", k=3)
    queries.vectors["s1"][1, 0] = np.nan
    with pytest.raises(XJepaError, match=r"query 1 \(p1\) has NaN or inf in its s1 query vector"):
        search_results(queries, 1, "s1->s2", k=3, archive=archive)


def test_overlap_is_jaccard_hand_checked():
    d = 4
    q_vec = np.eye(d, dtype=np.float32)[:1]
    archive_vecs = np.array([[1.0, 0, 0, 0], [0.8, 0.6, 0, 0], [0.6, 0.8, 0, 0], [0, 1.0, 0, 0]], np.float32)
    labels = np.zeros((4, 19), bool)
    labels[0, [1, 2]] = True  # vs query {0, 1}: ∩ {1}, ∪ {0, 1, 2} -> 1/3
    labels[1, [0, 1]] = True  # identical -> 1
    labels[2, [5]] = True  # disjoint -> 0
    archive = Embeddings({"s1": archive_vecs, "s2": archive_vecs}, np.array(list("abcd")), labels, np.zeros((4, 4)))
    q_labels = np.zeros((1, 19), bool)
    q_labels[0, [0, 1]] = True
    queries = Embeddings({"s1": q_vec, "s2": q_vec}, np.array(["b"]), q_labels, np.zeros((1, 4)))
    res = search_results(queries, 0, "s1->s2", k=4, archive=archive)
    assert [r["id"] for r in res] == ["a", "b", "c", "d"]
    assert [r["overlap"] for r in res] == pytest.approx([1 / 3, 1.0, 0.0, 0.0])
    assert [r["relevant"] for r in res] == [True, True, False, False]
    assert res[0]["shared"] == [LABELS[1]] and res[1]["shared"] == [LABELS[0], LABELS[1]]
    assert res[0]["labels"] == [LABELS[1], LABELS[2]] and res[3]["labels"] == []
    assert [r["is_partner"] for r in res] == [False, True, False, False]
    assert res[1]["score"] == pytest.approx(0.8)


def test_footprints_geometry_and_roles():
    emb = random_embeddings(6, seed=4)
    fc = footprints_geojson(emb, {2: "query", 4: "result", 0: "result"})
    assert fc["type"] == "FeatureCollection" and len(fc["features"]) == 6
    for i, f in enumerate(fc["features"]):
        ring = np.array(f["geometry"]["coordinates"][0])
        w, s, e, n = emb.bounds[i]
        assert ring.shape == (5, 2) and (ring[0] == ring[-1]).all()
        assert ring[:, 0].min() == w and ring[:, 0].max() == e and ring[:, 1].min() == s and ring[:, 1].max() == n
        assert f["properties"]["index"] == i and f["properties"]["id"] == f"p{i}"
    roles = [f["properties"]["role"] for f in fc["features"]]
    assert roles == ["result", "other", "query", "other", "result", "other"]
    assert fc["features"][2]["properties"]["style"]["color"] == COLORS["query"]
    with pytest.raises(XJepaError):
        footprints_geojson(emb, {0: "bogus"})


def test_query_options_and_zoom():
    emb = random_embeddings(3, seed=5)
    opts = query_options(emb)
    assert [v for _, v in opts] == [0, 1, 2] and opts[0][0].startswith("p0 — ")
    (lat, lon), zoom = zoom_for((13.70, 48.20, 13.72, 48.21))
    assert lat == pytest.approx(48.205) and lon == pytest.approx(13.71) and 10 <= zoom <= 16


# -- the widget explorer on the six real BigEarthNet pairs -------------------------------------
@pytest.fixture(scope="module")
def sample_embedded(sample_root):
    from xjepa_kit.config import load_config
    from xjepa_kit.data.bigearthnet import BigEarthNetMM
    from xjepa_kit.embeddings import embed
    from xjepa_kit.models import build_model

    cfg = load_config("tiny_cpu", ["model.encoder.embed_dim=48", "model.encoder.depth=1", "model.encoder.num_heads=2",
                                   "model.predictor.embed_dim=32", "model.predictor.depth=1",
                                   "model.predictor.num_heads=2"])
    ds = BigEarthNetMM(sample_root)
    return embed(build_model(cfg), ds, num_workers=0), ds


def _overlays(explorer):
    from ipyleaflet import GeoJSON, ImageOverlay

    layers = explorer.map.layers
    return [x for x in layers if isinstance(x, GeoJSON)], [x for x in layers if isinstance(x, ImageOverlay)]


def test_explorer_select_map_and_click(sample_embedded):
    from xjepa_kit.explorer import RetrievalExplorer

    emb, ds = sample_embedded
    ex = RetrievalExplorer(emb, ds, k=3)
    assert len(ex.results) == 3 and ex.query == 0 and ex.direction_widget.value == "s1->s2"
    first = [r["index"] for r in ex.results]
    res = ex.select(query=emb.ids[4], direction="s2->s2", k=2)
    assert ex.results is res and ex.query == 4 and ex.query_widget.value == 4 and ex.k_widget.value == 2
    assert [r["index"] for r in res] != first and 4 not in [r["index"] for r in res]
    geo, images = _overlays(ex)
    assert len(geo) == 1 and len(images) == 2 + 1
    roles = {f["properties"]["index"]: f["properties"]["role"] for f in geo[0].data["features"]}
    assert roles[4] == "query" and all(roles[r["index"]] == "result" for r in res)
    assert all(img.url.startswith("data:image/png;base64,") for img in images)
    w, s, e, n = emb.bounds[4]
    np.testing.assert_allclose(np.array(images[-1].bounds, float), [[s, w], [n, e]])
    assert tuple(ex.map.center) == pytest.approx(((s + n) / 2, (w + e) / 2))
    assert "query (s2)" in ex.gallery.value and "cos " in ex.gallery.value
    ex.k_widget.value = 4  # widgets drive select()
    assert len(ex.results) == 4 and len(_overlays(ex)[1]) == 5
    feature = geo[0].data["features"][1]  # a simulated click on footprint 1
    geo[0]._handle_mouse_events(None, {"event": "click", "feature": feature, "properties": feature["properties"]}, None)
    assert ex.query == 1 and ex.query_widget.value == 1 and len(_overlays(ex)[1]) == 5


def test_explorer_separate_archive_and_to_html(sample_embedded, tmp_path):
    from xjepa_kit.explorer import RetrievalExplorer

    emb, ds = sample_embedded
    archive = Embeddings(emb.vectors, emb.ids, emb.labels, emb.bounds)
    ex = RetrievalExplorer(emb, ds, archive_embeddings=archive, archive_dataset=ds, k=6, direction="s1->s1",
                           thumbnails=False)
    assert len(ex.results) == 6 and sum(r["is_partner"] for r in ex.results) == 1  # itself, another set
    geo, images = _overlays(ex)
    assert len(geo[0].data["features"]) == 12 and images == []
    archive_feature = next(f for f in geo[0].data["features"] if f["properties"]["source"] == "archive"
                           and f["properties"]["index"] == 2)
    ex._on_click(event="click", feature=archive_feature)
    assert ex.query == 2
    with pytest.raises(XJepaError, match="archive_dataset"):
        RetrievalExplorer(emb, ds, archive_embeddings=archive)

    ex2 = RetrievalExplorer(emb, ds, k=2)
    page = ex2.to_html(tmp_path / "map.html").read_text()
    assert all(str(i) in page for i in emb.ids)
    assert page.count("data:image/png;base64,") == 3 and "L.imageOverlay" in page
    assert not re.search(r"<(script|link)[^>]+(src|href)\s*=\s*[\"']?(https?:)?//", page, re.IGNORECASE)
    assert "<script src" not in page and "<link" not in page


def test_to_html_without_leaflet_says_what_to_install(sample_embedded, tmp_path, monkeypatch):
    from xjepa_kit import explorer_html
    from xjepa_kit.explorer import RetrievalExplorer

    emb, ds = sample_embedded
    monkeypatch.setattr(explorer_html, "SYSTEM_DIRS", ())
    monkeypatch.delenv("XJEPA_LEAFLET_DIR", raising=False)
    monkeypatch.setattr(explorer_html, "_site_package_leaflet", lambda: None)
    with pytest.raises(XJepaError, match="libjs-leaflet"):
        RetrievalExplorer(emb, ds, k=1, thumbnails=False).to_html(tmp_path / "x.html")


def test_thumbnails_undo_normalisation(sample_root):
    from xjepa_kit.data.bigearthnet import BigEarthNetMM
    from xjepa_kit.explorer import _render

    norm, raw = BigEarthNetMM(sample_root), BigEarthNetMM(sample_root, normalize=False)
    a, b = norm[0], raw[0]
    for m in ("s1", "s2"):
        ta, tb = _render(m, a, norm), _render(m, b, raw)
        assert ta.shape == (120, 120, 3) and 0 <= ta.min() and ta.max() <= 1 and ta.std() > 0.05
        np.testing.assert_allclose(ta, tb, atol=1e-3)

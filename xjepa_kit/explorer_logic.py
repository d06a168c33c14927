"""The retrieval explorer's logic without widgets (DESIGN 8, notebook 4): search, footprints, thumbnails.

Everything here is plain numpy / dicts so it can be tested without a browser or a kernel;
:mod:`xjepa_kit.explorer` wires it to ipywidgets and leafmap.
"""

from __future__ import annotations

import base64
import io
import math

import numpy as np

from xjepa_kit.data.labels import LABELS
from xjepa_kit.embedding_store import Embeddings, check_comparable
from xjepa_kit.errors import XJepaError

# Footprint colours: chosen to stand out against imagery (also used by the headless-browser check).
COLORS = {"query": "#ff00ff", "result": "#00e5ff", "other": "#505a64"}
STYLES = {
    "query": {"color": COLORS["query"], "weight": 4, "opacity": 1.0, "fillOpacity": 0.0},
    "result": {"color": COLORS["result"], "weight": 3, "opacity": 1.0, "fillOpacity": 0.0},
    "other": {"color": COLORS["other"], "weight": 1, "opacity": 0.8, "fillColor": COLORS["other"],
              "fillOpacity": 0.25},
}


def directions(modalities) -> list[str]:
    """``["a->b", "b->a", "a->a", "b->b"]`` for two modalities (a, b), e.g. ``"s1->s2"`` first."""
    mods = list(modalities)
    if len(mods) != 2:
        raise XJepaError(f"the explorer needs exactly two modalities, got {mods}")
    a, b = mods
    return [f"{a}->{b}", f"{b}->{a}", f"{a}->{a}", f"{b}->{b}"]


def parse_direction(direction: str, modalities) -> tuple[str, str]:
    """``"s1->s2"`` -> ``("s1", "s2")``; a clear error for a direction the embeddings cannot serve."""
    allowed = directions(modalities)
    if direction not in allowed:
        raise XJepaError(f"unknown direction {direction!r}; choose one of {allowed}")
    src, tgt = direction.split("->")
    return src, tgt


def label_names(row: np.ndarray) -> list[str]:
    """Names of the set entries of one bool label row [19]."""
    return [LABELS[i] for i in np.flatnonzero(row)]


def search_results(queries: Embeddings, query: int, direction: str, k: int,
                   archive: Embeddings | None = None) -> list[dict]:
    """Top-``k`` archive items for query row ``query`` (cosine on unit vectors, exact, numpy).

    ``archive`` None searches the query set itself; then same-modal search excludes the query.
    Each result: ``rank`` (1-based), ``index`` (archive row), ``id``, ``score``, ``labels``,
    ``shared`` (label names in common), ``overlap`` (Jaccard |∩|/|∪|), ``relevant`` (≥ 1 shared
    label), ``is_partner`` (archive id == query id: the co-registered pair).
    """
    same_set = archive is None or archive is queries
    archive = queries if archive is None else archive
    src, tgt = parse_direction(direction, queries.vectors)
    if tgt not in archive.vectors:
        raise XJepaError(f"the archive has no {tgt!r} vectors (it has {list(archive.vectors)})")
    check_comparable(queries, archive, modalities=[tgt])
    if not 0 <= query < len(queries):
        raise XJepaError(f"query index {query} out of range [0, {len(queries)})")
    query_vector = queries.query_vectors(src, tgt)[query].astype(np.float32)  # [D], through P(src->tgt) if saved
    if not np.isfinite(query_vector).all():
        raise XJepaError(f"query {query} ({queries.ids[query]}) has NaN or inf in its {src} query vector; embed it "
                         "again")
    scores = archive.vectors[tgt].astype(np.float32) @ query_vector  # [N]
    exclude = same_set and src == tgt
    if exclude:
        scores = scores.copy()
        scores[query] = -np.inf
    k = max(0, min(int(k), len(scores) - int(exclude)))
    order = np.argsort(-scores, kind="stable")[:k]  # [k]
    q_lab = np.asarray(queries.labels[query], bool)  # [C]
    r_lab = np.asarray(archive.labels[order], bool)  # [k, C]
    inter = (r_lab & q_lab).sum(1)
    union = (r_lab | q_lab).sum(1)
    overlap = np.where(union > 0, inter / np.maximum(union, 1), 0.0)
    q_id = str(queries.ids[query])
    return [{"rank": r + 1, "index": int(i), "id": str(archive.ids[i]), "score": float(scores[i]),
             "labels": label_names(r_lab[r]), "shared": label_names(r_lab[r] & q_lab),
             "overlap": float(overlap[r]), "relevant": bool(inter[r] >= 1),
             "is_partner": str(archive.ids[i]) == q_id}
            for r, i in enumerate(order)]


def footprint_polygon(bounds) -> list[list[list[float]]]:
    """GeoJSON polygon coordinates (closed ring, lon/lat) of ``(west, south, east, north)``."""
    w, s, e, n = (float(v) for v in bounds)
    return [[[w, s], [e, s], [e, n], [w, n], [w, s]]]


def footprints_geojson(emb: Embeddings, highlight: dict[int, str] | None = None, source: str = "queries") -> dict:
    """FeatureCollection of every footprint of ``emb`` (bounds [N, 4]).

    ``highlight`` maps row -> role (``"query"`` or ``"result"``); other rows get ``"other"``.
    Properties: ``index``, ``id``, ``labels`` (names joined by "; "), ``role``, ``source`` and ``style``.
    """
    highlight = highlight or {}
    features = []
    for i in range(len(emb)):
        role = highlight.get(i, "other")
        if role not in STYLES:
            raise XJepaError(f"unknown footprint role {role!r}; use 'query', 'result' or 'other'")
        features.append({"type": "Feature", "id": f"{source}-{i}",
                         "geometry": {"type": "Polygon", "coordinates": footprint_polygon(emb.bounds[i])},
                         "properties": {"index": i, "id": str(emb.ids[i]),
                                        "labels": "; ".join(label_names(emb.labels[i])),
                                        "role": role, "source": source, "style": dict(STYLES[role])}})
    return {"type": "FeatureCollection", "features": features}


def query_options(emb: Embeddings, n_labels: int = 2) -> list[tuple[str, int]]:
    """Dropdown options ``("<id> — <first labels>", index)`` for every row."""
    out = []
    for i in range(len(emb)):
        names = label_names(emb.labels[i])
        text = ", ".join(names[:n_labels]) + (", …" if len(names) > n_labels else "")
        out.append((f"{emb.ids[i]} — {text or 'no label'}", i))
    return out


def zoom_for(bounds, width_px: int = 800, height_px: int = 450,
             pad: float = 3.0) -> tuple[tuple[float, float], int]:
    """(center (lat, lon), integer web-mercator zoom) showing ``bounds`` enlarged ``pad`` times."""
    w, s, e, n = (float(v) for v in bounds)
    lon_span = max((e - w) * pad, 1e-6)
    merc_n, merc_s = (math.log(math.tan(math.pi / 4 + math.radians(lat) / 2)) for lat in (n, s))
    lat_span = max((merc_n - merc_s) * pad, 1e-9)  # mercator units (radians)
    zx = math.log2(width_px * 360.0 / (256 * lon_span))
    zy = math.log2(height_px * 2 * math.pi / (256 * lat_span))
    return ((s + n) / 2, (w + e) / 2), int(max(1, min(18, math.floor(min(zx, zy)))))


def png_data_url(img: np.ndarray) -> str:
    """``data:image/png;base64,…`` of an RGB image [H, W, 3] with values in [0, 1]."""
    from matplotlib.image import imsave

    buf = io.BytesIO()
    imsave(buf, np.clip(np.asarray(img, np.float32), 0, 1), format="png")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def stretch(x: np.ndarray, lo: float = 2.0, hi: float = 98.0) -> np.ndarray:
    """Per-channel percentile stretch of [C, H, W] to [0, 1] -> [H, W, C]."""
    x = np.asarray(x, np.float32)
    p_lo = np.percentile(x, lo, axis=(1, 2), keepdims=True)
    p_hi = np.percentile(x, hi, axis=(1, 2), keepdims=True)
    return np.clip((x - p_lo) / np.maximum(p_hi - p_lo, 1e-6), 0, 1).transpose(1, 2, 0)


def s2_rgb(s2: np.ndarray, bands) -> np.ndarray:
    """True-colour (B04, B03, B02) of S2 reflectance x 10000 [C, H, W] -> [H, W, 3] in [0, 1]."""
    bands = list(bands)
    return stretch(s2[[bands.index(b) for b in ("B04", "B03", "B02")]])


def s1_composite(s1: np.ndarray) -> np.ndarray:
    """SAR false colour of (VV, VH) dB [2, H, W]: R = VV, G = VH, B = VV - VH -> [H, W, 3] in [0, 1]."""
    vv, vh = np.asarray(s1[0], np.float32), np.asarray(s1[1], np.float32)
    return stretch(np.stack([vv, vh, vv - vh]))

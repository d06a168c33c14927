"""Interactive retrieval explorer (DESIGN 8, notebook 4): pick a query, direction and K; see the top-K.

``RetrievalExplorer(embeddings, dataset)`` shows ipywidgets controls, a thumbnail gallery (query and
results, captioned with score and label overlap) and a leafmap map with every footprint, the query
and results highlighted and their images overlaid at their true bounds. ``to_html(path)`` writes an
offline page of the current map. The search itself lives in :mod:`xjepa_kit.explorer_logic`.
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np

from xjepa_kit.data.bands import S1_BANDS, denormalize
from xjepa_kit.embedding_store import Embeddings, check_comparable
from xjepa_kit.errors import XJepaError
from xjepa_kit.explorer_logic import (COLORS, directions, footprints_geojson, label_names, parse_direction,
                                      png_data_url, query_options, s1_composite, s2_rgb, search_results, zoom_for)


def _render(modality: str, item: dict, dataset) -> np.ndarray:
    """Thumbnail [H, W, 3] in [0, 1] of one sample's ``modality`` (physical units restored first)."""
    from xjepa_kit import viz

    x = np.asarray(item[modality], np.float32)
    normalized = bool(getattr(dataset, "normalize", False))
    if modality == "s2":
        bands = tuple(dataset.s2_band_names)
        x = denormalize(x, bands) if normalized else x
        return viz.rgb(x, bands) if hasattr(viz, "rgb") else s2_rgb(x, bands)
    if modality == "s1":
        x = denormalize(x, S1_BANDS) if normalized else x
        return viz.sar(x) if hasattr(viz, "sar") else s1_composite(x)
    raise XJepaError(f"no thumbnail rendering for modality {modality!r}")


class RetrievalExplorer:
    """Widgets + map over query ``embeddings`` (rows = ``dataset`` items) and an optional archive.

    ``archive_embeddings`` None searches the query set itself (same-modal search skips the query).
    """

    def __init__(self, embeddings: Embeddings, dataset, archive_embeddings: Embeddings | None = None,
                 archive_dataset=None, k: int = 10, direction: str | None = None, thumbnails: bool = True,
                 max_k: int = 50, map_height: str = "460px") -> None:
        import ipyleaflet
        import ipywidgets as W
        import leafmap.leafmap as lm

        self.queries, self.dataset = embeddings, dataset
        self.same_set = archive_embeddings is None or archive_embeddings is embeddings
        self.archive = embeddings if self.same_set else archive_embeddings
        self.archive_dataset = dataset if self.same_set else archive_dataset
        self.thumbnails = thumbnails
        check_comparable(self.queries, self.archive, modalities=list(self.archive.vectors))
        if thumbnails and self.archive_dataset is None:
            raise XJepaError("pass archive_dataset with archive_embeddings (or thumbnails=False)")
        for emb, ds in ((self.queries, dataset), (self.archive, self.archive_dataset)):
            if ds is not None and len(ds) != len(emb):
                raise XJepaError(f"dataset has {len(ds)} items but its embeddings {len(emb)} rows; "
                                 "embed that same dataset")
        self.modalities = list(embeddings.vectors)
        self._dirs = directions(self.modalities)
        self._query, self._direction, self._k = 0, direction or self._dirs[0], int(k)
        parse_direction(self._direction, self.modalities)  # a clear error before the widgets see it
        self._urls: dict[tuple[str, int, str], str] = {}
        self._overlays: list = []
        self._specs: list[dict] = []
        self._syncing = False
        self.results: list[dict] = []
        self.geojson: dict = {}

        self.query_widget = W.Dropdown(options=query_options(embeddings), value=0, description="query",
                                       layout=W.Layout(width="560px"))
        self.direction_widget = W.ToggleButtons(options=self._dirs, value=self._direction, description="direction")
        self.k_widget = W.IntSlider(value=self._k, min=1, max=max(1, min(max_k, len(self.archive))),
                                    description="K")
        self.gallery = W.HTML()
        self.map = lm.Map(center=(0, 0), zoom=2, height=map_height, draw_control=False, toolbar_control=False,
                          measure_control=False, search_control=False, layers_control=True)
        self._footprints = ipyleaflet.GeoJSON(data={"type": "FeatureCollection", "features": []},
                                              style_callback=lambda f: f["properties"]["style"],
                                              hover_style={"weight": 5}, name="footprints")
        self._footprints.on_click(self._on_click)
        self.map.add(self._footprints)
        self.widget = W.VBox([W.HBox([self.query_widget, self.k_widget]), self.direction_widget, self.map,
                              self.gallery])
        self.query_widget.observe(lambda ch: self._from_widget(query=ch["new"]), "value")
        self.direction_widget.observe(lambda ch: self._from_widget(direction=ch["new"]), "value")
        self.k_widget.observe(lambda ch: self._from_widget(k=ch["new"]), "value")
        self.select(0, self._direction, self._k)

    # -- state -----------------------------------------------------------------------------
    @property
    def query(self) -> int:
        """Row of the current query in the query embeddings."""
        return self._query

    def _resolve(self, query: int | str | None) -> int:
        if query is None:
            return self._query
        if isinstance(query, (int, np.integer)):
            if not 0 <= int(query) < len(self.queries):
                raise XJepaError(f"query index {query} out of range [0, {len(self.queries)})")
            return int(query)
        hits = np.flatnonzero(self.queries.ids.astype(str) == str(query))
        if len(hits) == 0:
            raise XJepaError(f"no query with id {query!r}")
        return int(hits[0])

    def select(self, query: int | str | None = None, direction: str | None = None,
               k: int | None = None) -> list[dict]:
        """Set query (row or id), direction and K, rerun the search, refresh widgets and map -> results."""
        q = self._resolve(query)
        d = direction or self._direction
        parse_direction(d, self.modalities)
        k = int(k if k is not None else self._k)
        if k < 1:
            raise XJepaError(f"K must be at least 1, got {k}")
        self._query, self._direction, self._k = q, d, k
        self.results = search_results(self.queries, q, d, k, None if self.same_set else self.archive)
        self._syncing = True
        try:
            self.query_widget.value, self.direction_widget.value = q, d
            self.k_widget.value = min(k, self.k_widget.max)
        finally:
            self._syncing = False
        self._update_map()
        self.gallery.value = self._gallery_html()
        return self.results

    def _from_widget(self, **change) -> None:
        if not self._syncing:
            self.select(**change)

    def _on_click(self, event: str | None = None, feature: dict | None = None, properties: dict | None = None,
                  **_) -> None:
        """GeoJSON click: a query-set footprint becomes the query (an archive one too if its id is a query)."""
        props = properties or (feature or {}).get("properties", {})
        if "index" not in props:
            return
        if props.get("source", "queries") == "queries":
            self.select(query=int(props["index"]))
        elif str(props.get("id")) in set(self.queries.ids.astype(str)):
            self.select(query=str(props["id"]))

    # -- pictures --------------------------------------------------------------------------
    def _thumb_url(self, which: str, index: int, modality: str) -> str:
        """PNG data URL of one item's ``modality`` image, cached per (set, row, modality)."""
        which = "queries" if self.same_set else which
        key = (which, index, modality)
        if key not in self._urls:
            ds, emb = (self.dataset, self.queries) if which == "queries" else (self.archive_dataset, self.archive)
            item = ds[index]
            if str(item["id"]) != str(emb.ids[index]):
                raise XJepaError(f"dataset item {index} is {item['id']!r} but the embeddings row is "
                                 f"{emb.ids[index]!r}: pass the dataset the embeddings were made from")
            for m in self.modalities:
                self._urls[(which, index, m)] = png_data_url(_render(m, item, ds))
        return self._urls[key]

    def _overlay_specs(self) -> list[dict]:
        """Image overlays, results (rank K first) then the query on top: url, bounds, name."""
        if not self.thumbnails:
            return []
        src, tgt = parse_direction(self._direction, self.modalities)
        items = [("archive", r["index"], tgt, f"#{r['rank']} {r['id']} ({tgt})") for r in reversed(self.results)]
        items.append(("queries", self._query, src, f"query {self.queries.ids[self._query]} ({src})"))
        specs = []
        for which, i, mod, name in items:
            w, s, e, n = (float(v) for v in (self.queries if which == "queries" else self.archive).bounds[i])
            specs.append({"url": self._thumb_url(which, i, mod), "bounds": [[s, w], [n, e]], "name": name})
        return specs

    def _update_map(self) -> None:
        q_role = {self._query: "query"}
        res_role = {r["index"]: "result" for r in self.results}
        if self.same_set:
            self.geojson = footprints_geojson(self.queries, {**res_role, **q_role})
        else:
            a = footprints_geojson(self.queries, q_role, source="queries")
            b = footprints_geojson(self.archive, res_role, source="archive")
            self.geojson = {"type": "FeatureCollection", "features": a["features"] + b["features"]}
        self._footprints.data = self.geojson
        from ipyleaflet import ImageOverlay

        for layer in self._overlays:
            self.map.remove(layer)
        self._specs = self._overlay_specs()
        self._overlays = [ImageOverlay(url=o["url"], bounds=tuple(map(tuple, o["bounds"])), name=o["name"])
                          for o in self._specs]
        for layer in self._overlays:
            self.map.add(layer)
        center, zoom = zoom_for(self.queries.bounds[self._query])
        self.map.center, self.map.zoom = center, zoom

    def _gallery_html(self) -> str:
        src, tgt = parse_direction(self._direction, self.modalities)
        q_url = self._thumb_url("queries", self._query, src) if self.thumbnails else None
        cards = [self._card(self.queries.ids[self._query], f"query ({src})",
                            ", ".join(label_names(self.queries.labels[self._query])), q_url, COLORS["query"])]
        for r in self.results:
            cap = f"#{r['rank']} · cos {r['score']:.3f} · overlap {r['overlap']:.2f}"
            cap += " · ★ partner" if r["is_partner"] else ""
            url = self._thumb_url("archive", r["index"], tgt) if self.thumbnails else None
            cards.append(self._card(r["id"], cap, "shared: " + (", ".join(r["shared"]) or "none"), url,
                                    COLORS["result"] if r["relevant"] else "#bbbbbb"))
        return f'<div style="display:flex;flex-wrap:wrap;gap:6px">{"".join(cards)}</div>'

    @staticmethod
    def _card(item_id: str, caption: str, detail: str, url: str | None, border: str) -> str:
        img = f'<img src="{url}" width="128" height="128" style="image-rendering:pixelated">' if url else ""
        return (f'<div style="width:136px;border:3px solid {border};padding:2px;font-size:10px;line-height:1.2">'
                f'{img}<div><b>{html.escape(caption)}</b></div>'
                f'<div style="word-break:break-all">{html.escape(str(item_id))}</div>'
                f'<div style="color:#555">{html.escape(detail)}</div></div>')

    # -- output ----------------------------------------------------------------------------
    def to_html(self, path: str | Path, fit: str = "query") -> Path:
        """Write an offline HTML page of the current map (footprints, overlays, highlight) -> path.

        ``fit="query"`` frames the query and one patch around it; ``"results"`` frames query and results.
        """
        from xjepa_kit.explorer_html import render_page

        if fit not in ("query", "results"):
            raise XJepaError(f"fit must be 'query' or 'results', got {fit!r}")
        boxes = [self.queries.bounds[self._query]]
        if fit == "results":
            boxes += [self.archive.bounds[r["index"]] for r in self.results]
        b = np.asarray(boxes, np.float64)  # [M, 4]
        w, s, e, n = b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max()
        dx, dy = (e - w, n - s) if fit == "query" else (0.1 * (e - w), 0.1 * (n - s))
        fit_box = [[s - dy, w - dx], [n + dy, e + dx]]
        swatch = '<span style="display:inline-block;width:10px;height:10px;border:2px solid {}"></span>'
        lines = "".join(f"<li>{html.escape(r['id'])}<br>cos {r['score']:.3f} · overlap {r['overlap']:.2f}"
                        f"{' · ★ partner' if r['is_partner'] else ''}"
                        f"<br><i>{html.escape(', '.join(r['shared']))}</i></li>"
                        for r in self.results)
        q_labels = ", ".join(label_names(self.queries.labels[self._query]))
        info = (f"{swatch.format(COLORS['query'])} <b>query</b> {html.escape(str(self.queries.ids[self._query]))}"
                f"<br><i>{html.escape(q_labels)}</i><br>{self._direction}, K={self._k}<br>"
                f"{swatch.format(COLORS['result'])} <b>results</b><ol style='padding-left:18px'>{lines}</ol>")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render_page(self.geojson, self._specs, fit_box, info_html=info), encoding="utf-8")
        return path

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)

    def __repr__(self) -> str:
        return (f"RetrievalExplorer(queries={len(self.queries)}, archive={len(self.archive)}, "
                f"query={self._query}, direction={self._direction!r}, k={self._k})")

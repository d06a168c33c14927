"""A standalone, offline HTML page of the explorer's map: Leaflet inlined, no tiles, no network.

Leaflet is looked up locally: ``$XJEPA_LEAFLET_DIR``, Debian's ``libjs-leaflet``
(``/usr/share/javascript/leaflet``), then any ``leaflet.js`` + ``leaflet.css`` pair shipped inside
an installed Python package. Nothing is fetched from a CDN.
"""

from __future__ import annotations

import functools
import html
import json
import os
import site
import sys
from pathlib import Path

from xjepa_kit.errors import XJepaError

SYSTEM_DIRS = ("/usr/share/javascript/leaflet", "/usr/share/nodejs/leaflet/dist", "/usr/local/share/javascript/leaflet")
INSTALL_HINT = ("no local Leaflet found for an offline page: install Debian's package "
                "(`apt-get install libjs-leaflet`) or point XJEPA_LEAFLET_DIR at a folder holding "
                "leaflet.js and leaflet.css")
BACKGROUND = "#eef1f4"


def _pair_in(folder: Path) -> tuple[Path, Path] | None:
    for js_name in ("leaflet.js", "leaflet-src.js", "leaflet.min.js"):
        js, css = folder / js_name, folder / "leaflet.css"
        if js.is_file() and css.is_file():
            return js, css
    return None


@functools.lru_cache(maxsize=1)
def _site_package_leaflet() -> tuple[Path, Path] | None:
    roots = {Path(p) for p in [*site.getsitepackages(), site.getusersitepackages(), *sys.path] if p}
    for root in sorted(r for r in roots if r.is_dir() and r.name in ("site-packages", "dist-packages")):
        for css in root.glob("*/**/leaflet.css"):
            found = _pair_in(css.parent)
            if found:
                return found
    return None


def find_leaflet() -> tuple[Path, Path]:
    """Paths (leaflet.js, leaflet.css) of a local Leaflet; raises XJepaError with what to install."""
    env = os.environ.get("XJEPA_LEAFLET_DIR")
    for folder in ([env] if env else []) + list(SYSTEM_DIRS):
        found = _pair_in(Path(folder))
        if found:
            return found
    found = _site_package_leaflet()
    if found:
        return found
    raise XJepaError(INSTALL_HINT)


def _safe_json(obj) -> str:
    """JSON that cannot close the surrounding <script> element."""
    return json.dumps(obj).replace("</", "<\\/")


def render_page(geojson: dict, overlays: list[dict], fit: list[list[float]], title: str = "X-JEPA retrieval",
                info_html: str = "") -> str:
    """The page's HTML text.

    ``overlays``: ``{"url": data URL, "bounds": [[south, west], [north, east]], "name": str}`` each,
    drawn in order under the footprints; ``fit``: [[south, west], [north, east]] the view shows.
    """
    js_path, css_path = find_leaflet()
    js = js_path.read_text(encoding="utf-8").replace("</script", "<\\/script")
    css = css_path.read_text(encoding="utf-8")
    order = {"other": 0, "result": 1, "query": 2}  # the query's outline on top
    features = sorted(geojson.get("features", []), key=lambda f: order.get(f["properties"].get("role"), 0))
    data = {"geojson": {**geojson, "features": features}, "overlays": overlays, "fit": fit}
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{css}</style>
<style>
html, body {{ margin: 0; height: 100%; font: 12px sans-serif; }}
body {{ display: flex; }}
#map {{ flex: 1; height: 100%; background: {BACKGROUND}; }}
#info {{ width: 240px; height: 100%; overflow: auto; box-sizing: border-box; padding: 8px; background: #fff;
         border-left: 1px solid #ccc; font-size: 11px; word-break: break-all; }}
.leaflet-image-layer {{ image-rendering: pixelated; }}
</style>
<script>{js}</script>
</head><body>
<div id="map"></div>
<div id="info">{info_html}</div>
<script id="explorer-data" type="application/json">{_safe_json(data)}</script>
<script>
(function () {{
  var data = JSON.parse(document.getElementById("explorer-data").textContent);
  var map = L.map("map", {{attributionControl: false, zoomSnap: 0.25, fadeAnimation: false, zoomAnimation: false}});
  data.overlays.forEach(function (o) {{ L.imageOverlay(o.url, o.bounds, {{opacity: 1.0}}).addTo(map); }});
  L.geoJSON(data.geojson, {{
    style: function (f) {{ return f.properties.style; }},
    onEachFeature: function (f, layer) {{
      layer.bindTooltip(f.properties.id + " (" + f.properties.role + ")<br>" + f.properties.labels);
    }}
  }}).addTo(map);
  map.fitBounds(data.fit);
}})();
</script>
</body></html>
"""

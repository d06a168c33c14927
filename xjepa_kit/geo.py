"""Footprints as GeoJSON: (west, south, east, north) boxes in EPSG:4326 -> a FeatureCollection."""

from __future__ import annotations

import numpy as np


def box_polygon(west: float, south: float, east: float, north: float) -> dict:
    """A closed GeoJSON Polygon geometry (lon, lat order) for one footprint."""
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    return {"type": "Polygon", "coordinates": [[[float(x), float(y)] for x, y in ring]]}


def bounds_geojson(bounds: np.ndarray, properties: list[dict] | None = None) -> dict:
    """FeatureCollection of footprints ``bounds`` [N, 4] with per-feature ``properties`` (default: index)."""
    bounds = np.asarray(bounds, dtype=np.float64).reshape(-1, 4)
    props = properties or [{"index": i} for i in range(len(bounds))]
    if len(props) != len(bounds):
        raise ValueError(f"{len(props)} property dicts for {len(bounds)} footprints")
    return {"type": "FeatureCollection",
            "features": [{"type": "Feature", "geometry": box_polygon(*b), "properties": p} for b, p in zip(bounds, props)]}

"""Map frames and GeoJSON: where an image's pixels sit on the map, and masks as map features.

Two frames place an image on an ipyleaflet map:

* :class:`PixelFrame` for plain images, on a ``projections.Simple`` map: pixel ``(x, y)`` sits at
  ``lat = -y, lng = x`` (Leaflet's Simple CRS flips the y axis), so one map unit is one pixel.
* :class:`GeoFrame` for georeferenced rasters on the default Web Mercator map: pixel -> source CRS
  through the affine transform, then -> WGS84 longitude/latitude with ``rasterio.warp``.

Masks (COCO RLE in full-resolution image pixels) become GeoJSON polygons in the frame's
coordinates; drawn shapes come back as pixel coordinates. Nothing here imports ipywidgets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np
from rasterio import features as rio_features
from rasterio.transform import Affine
from shapely.geometry import mapping, shape

from text2seg_widgets.core.masks import crop_to_mask, mask_to_polygons
from text2seg_widgets.errors import InputError

__all__ = [
    "PixelFrame",
    "GeoFrame",
    "Frame",
    "mask_to_geometry",
    "geojson_to_pixel_rings",
    "rasterize_polygon",
    "box_from_rings",
    "points_window",
]


@dataclass(frozen=True)
class PixelFrame:
    """A plain image of ``width`` x ``height`` pixels on a Simple-CRS map."""

    width: int
    height: int
    geographic: bool = field(default=False, init=False)

    def to_map(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pixel x, y arrays -> (lng, lat) arrays."""
        return np.asarray(x, dtype=float), -np.asarray(y, dtype=float)

    def to_pixel(self, lng: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(lng, lat) arrays -> pixel x, y arrays."""
        return np.asarray(lng, dtype=float), -np.asarray(lat, dtype=float)

    def bounds(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """((south, west), (north, east)) of the whole image, for an ImageOverlay."""
        return (-float(self.height), 0.0), (0.0, float(self.width))

    def center(self) -> tuple[float, float]:
        return -self.height / 2.0, self.width / 2.0

    def fit_zoom(self, view_width: int, view_height: int) -> float:
        """The (fractional) zoom at which the whole image fits a view of that many CSS pixels."""
        scale = min(view_width / max(self.width, 1), view_height / max(self.height, 1))
        return math.floor(math.log2(scale) * 4) / 4.0


@dataclass(frozen=True)
class GeoFrame:
    """A georeferenced raster: ``transform`` maps pixel (col, row) to ``crs`` coordinates."""

    width: int
    height: int
    transform: Affine
    crs: Any
    #: False for a plain image given a stand-in transform to be served as tiles: no basemap under it
    real: bool = True
    geographic: bool = field(default=True, init=False)

    def _warp(self, xs: np.ndarray, ys: np.ndarray, src: Any, dst: Any) -> tuple[np.ndarray, np.ndarray]:
        from rasterio.warp import transform as warp_transform

        if not len(xs):
            return np.asarray(xs, float), np.asarray(ys, float)
        ox, oy = warp_transform(src, dst, list(map(float, xs)), list(map(float, ys)))
        return np.asarray(ox, dtype=float), np.asarray(oy, dtype=float)

    def to_map(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        xs, ys = _apply(self.transform, np.asarray(x, float), np.asarray(y, float))
        return self._warp(np.atleast_1d(xs), np.atleast_1d(ys), self.crs, "EPSG:4326")

    def to_pixel(self, lng: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        xs, ys = self._warp(np.atleast_1d(np.asarray(lng, float)), np.atleast_1d(np.asarray(lat, float)),
                            "EPSG:4326", self.crs)
        col, row = _apply(~self.transform, xs, ys)
        return np.asarray(col, dtype=float), np.asarray(row, dtype=float)

    def bounds(self) -> tuple[tuple[float, float], tuple[float, float]]:
        xs = np.array([0, self.width, self.width, 0], dtype=float)
        ys = np.array([0, 0, self.height, self.height], dtype=float)
        lng, lat = self.to_map(xs, ys)
        return (float(lat.min()), float(lng.min())), (float(lat.max()), float(lng.max()))

    def center(self) -> tuple[float, float]:
        (s, w), (n, e) = self.bounds()
        return (s + n) / 2.0, (w + e) / 2.0

    def fit_zoom(self, view_width: int, view_height: int) -> float:
        (s, w), (n, e) = self.bounds()
        lng_span = max(e - w, 1e-9)
        lat_span = max(n - s, 1e-9) / max(math.cos(math.radians((s + n) / 2.0)), 1e-6)
        z = min(math.log2(view_width * 360.0 / (256.0 * lng_span)),
                math.log2(view_height * 360.0 / (256.0 * lat_span)))
        return math.floor(z * 4) / 4.0


Frame = PixelFrame | GeoFrame


def _apply(t: Affine, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The affine ``t`` applied to coordinate arrays."""
    return t.a * x + t.b * y + t.c, t.d * x + t.e * y + t.f


def mask_to_geometry(mask: np.ndarray, frame: Frame, *, tolerance: float = 0.75,
                     offset: tuple[int, int] = (0, 0)) -> dict[str, Any] | None:
    """A GeoJSON (Multi)Polygon in map coordinates tracing ``mask``; None for an empty mask.
    ``offset``: where ``mask``'s pixel (0, 0) lies in the image (a crop of a scene mask).

    Only the mask's bounding box is traced, and the outline is simplified by ``tolerance`` pixels,
    so hundreds of masks stay cheap to draw.
    """
    crop, x0, y0 = crop_to_mask(np.asarray(mask, dtype=bool), pad=0)
    x0, y0 = x0 + int(offset[0]), y0 + int(offset[1])
    polys = mask_to_polygons(crop, Affine.translation(x0, y0))
    if not polys:
        return None
    if tolerance > 0:
        polys = [p.simplify(tolerance, preserve_topology=True) for p in polys]
    parts = [_polygon_coords(p, frame) for p in polys if not p.is_empty]
    if len(parts) == 1:
        return {"type": "Polygon", "coordinates": parts[0]}
    return {"type": "MultiPolygon", "coordinates": parts}


def _polygon_coords(poly: Any, frame: Frame) -> list[list[list[float]]]:
    rings = [poly.exterior, *poly.interiors]
    out = []
    for ring in rings:
        arr = np.asarray(ring.coords, dtype=float)
        lng, lat = frame.to_map(arr[:, 0], arr[:, 1])
        out.append([[round(float(a), 7), round(float(b), 7)] for a, b in zip(lng, lat)])
    return out


def geojson_to_pixel_rings(geo_json: dict[str, Any], frame: Frame) -> list[np.ndarray]:
    """The outer rings of a drawn GeoJSON Feature/Polygon as (N, 2) pixel xy arrays."""
    geom = geo_json.get("geometry", geo_json) if isinstance(geo_json, dict) else None
    if not geom or geom.get("type") not in ("Polygon", "MultiPolygon"):
        raise InputError(f"expected a drawn polygon or rectangle, got {geom and geom.get('type')!r}")
    polys = [geom["coordinates"]] if geom["type"] == "Polygon" else geom["coordinates"]
    rings = []
    for poly in polys:
        arr = np.asarray(poly[0], dtype=float)
        x, y = frame.to_pixel(arr[:, 0], arr[:, 1])
        rings.append(np.stack([x, y], axis=1))
    return rings


def box_from_rings(rings: Sequence[np.ndarray]) -> tuple[float, float, float, float]:
    """The xyxy pixel box around drawn rings (a drawn rectangle is one ring)."""
    pts = np.concatenate([np.asarray(r, float) for r in rings])
    return float(pts[:, 0].min()), float(pts[:, 1].min()), float(pts[:, 0].max()), float(pts[:, 1].max())


def rasterize_polygon(points: Iterable[Sequence[float]], height: int, width: int,
                      window: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """A boolean (height, width) mask of the polygon with pixel-xy vertices ``points``; with
    ``window`` (x0, y0, x1, y1) only that part of it (so a polygon on a big scene costs its box)."""
    pts = np.asarray(list(points), dtype=float)
    if pts.ndim != 2 or pts.shape[0] < 3 or pts.shape[1] != 2:
        raise InputError("a polygon needs at least 3 (x, y) vertices")
    if not np.isfinite(pts).all():
        raise InputError("polygon vertices must be finite numbers")
    geom = mapping(shape({"type": "Polygon", "coordinates": [pts.tolist() + [pts[0].tolist()]]}).buffer(0))
    if geom.get("type") == "GeometryCollection" or not geom.get("coordinates"):
        raise InputError("the polygon has no area (its vertices are on one line or repeated)")
    x0, y0, x1, y1 = window if window is not None else (0, 0, width, height)
    if x1 <= x0 or y1 <= y0:
        return np.zeros((max(0, y1 - y0), max(0, x1 - x0)), bool)
    return rio_features.rasterize([(geom, 1)], out_shape=(y1 - y0, x1 - x0), fill=0, dtype=np.uint8,
                                  transform=Affine.translation(x0, y0)).astype(bool)


def points_window(points: Iterable[Sequence[float]], height: int, width: int) -> tuple[int, int, int, int]:
    """The (x0, y0, x1, y1) pixel box of ``points`` clipped to the image (whole pixels, exclusive)."""
    pts = np.asarray(list(points), dtype=float).reshape(-1, 2)
    if not len(pts) or not np.isfinite(pts).all():
        return 0, 0, 0, 0
    x0, y0 = (max(0, int(np.floor(v))) for v in pts.min(axis=0))
    x1, y1 = min(width, int(np.ceil(pts[:, 0].max())) + 1), min(height, int(np.ceil(pts[:, 1].max())) + 1)
    return x0, y0, max(x0, x1), max(y0, y1)

"""Building the ipyleaflet map and placing an image on it.

Small plain images go on a ``projections.Simple`` map (one map unit = one pixel) as one image
overlay. Georeferenced images and big ones are served as tiles cut on demand
(:mod:`.scenetiles`) on the Web Mercator map: georeferenced ones at their true place, with an
optional OpenStreetMap basemap (without internet its tiles simply do not load and nothing else
depends on them), big plain ones at a stand-in place with no basemap.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Sequence

import ipyleaflet
import ipywidgets as w
import numpy as np
from rasterio._err import CPLE_BaseError  # GDAL's errors: rasterio.errors does not export them
from rasterio.errors import RasterioError

from text2seg_widgets.errors import InputError
from text2seg_widgets.widgets.geometry import Frame, geojson_to_pixel_rings
from text2seg_widgets.widgets.layers import MaskLayers
from text2seg_widgets.widgets.overlay import LoadedImage, detail_window, png_data_url
from text2seg_widgets.widgets.scenetiles import SceneTiles

__all__ = ["MapView", "build_map", "place_image", "update_detail", "check_height", "VIEW_PX", "BOX_COLOR"]

#: the outline colour of the draw control's rectangle
BOX_COLOR = "#00aaff"

#: the view size, in CSS pixels, used to choose the initial zoom
VIEW_PX = (800, 560)


def check_height(height: str) -> str:
    """``height`` if it is an absolute CSS length (``600px``, ``40em``, ``70vh``); a percentage
    collapses when JupyterLab puts the output in scrolled mode, so it is refused."""
    text = str(height).strip()
    if not re.fullmatch(r"\d+(\.\d+)?(px|em|rem|vh)", text):
        raise InputError(f"map_height must be an absolute CSS length such as '600px' or '70vh', not "
                         f"{height!r} (a percentage collapses in JupyterLab's scrolled output)")
    return text


def build_map(*, geographic: bool, height: str = "600px") -> ipyleaflet.Map:
    """An empty map for plain (pixel-space) or georeferenced images."""
    common: dict[str, Any] = dict(zoom_snap=0.25, zoom_delta=0.5, scroll_wheel_zoom=True,
                                  double_click_zoom=False, attribution_control=False,
                                  layout=w.Layout(height=height, min_height=height, width="100%"))
    if geographic:
        m = ipyleaflet.Map(layers=(), center=(0.0, 0.0), zoom=2, min_zoom=1, max_zoom=22, **common)
    else:
        m = ipyleaflet.Map(crs=ipyleaflet.projections.Simple, layers=(), center=(0.0, 0.0), zoom=0,
                           min_zoom=-6, max_zoom=6, **common)
    m._t2s_geographic = geographic
    m.add_class("t2s-map")
    return m


def place_image(m: ipyleaflet.Map, overlay: ipyleaflet.ImageOverlay | None, image: LoadedImage | None,
                frame: Frame, *, max_side: int = 2048, basemap: bool = False) -> ipyleaflet.ImageOverlay | None:
    """Show ``image`` (downsampled to ``max_side``) at ``frame``'s place and fit the view to it.
    A tiled image (or none) gets no overlay: its tiles are the :class:`MapView`'s.

    Returns the overlay layer (reused when given); None when there is no image to show.
    """
    real = frame.geographic and getattr(frame, "real", True)
    if real and basemap and not any(getattr(l, "name", "") == "basemap" for l in m.layers):
        base = ipyleaflet.basemap_to_tiles(ipyleaflet.basemaps.OpenStreetMap.Mapnik)
        base.name = "basemap"
        m.add(base)
    bounds = frame.bounds()
    if image is None or image.tiled or image.rgb is None:
        if overlay is not None and overlay in m.layers:
            m.remove(overlay)
        overlay = None
    else:
        url = png_data_url(image.rgb, max_side=max_side)
        if overlay is None:
            overlay = ipyleaflet.ImageOverlay(url=url, bounds=bounds, name="image", pane="tilePane")
            m.add(overlay)
        else:
            overlay.url = url
            overlay.bounds = bounds
    m.center = frame.center()
    m.zoom = frame.fit_zoom(*VIEW_PX)
    return overlay


def update_detail(m: ipyleaflet.Map, detail: ipyleaflet.ImageOverlay | None, image: LoadedImage | None,
                  frame: Frame, max_side: int) -> ipyleaflet.ImageOverlay | None:
    """For a big image shown downsampled: overlay the visible part at screen resolution once the
    view is zoomed in past the base overlay's detail; remove it when zoomed back out.

    Pixel-space maps only (on a Simple map one zoom step doubles the screen pixels per image pixel).
    Returns the detail layer (or None when none is needed)."""
    needed = None
    if image is not None and image.rgb is not None and not frame.geographic and m.bounds and m.zoom is not None:
        base_scale = min(1.0, max_side / float(max(image.height, image.width)))
        (s, w), (n, e) = m.bounds
        view = (w, -n, e, -s)  # pixel x0, y0, x1, y1
        needed = detail_window(view, image.width, image.height, base_scale, 2.0 ** float(m.zoom))
    if needed is None:
        if detail is not None and detail in m.layers:
            m.remove(detail)
        return None
    x0, y0, x1, y1 = needed
    assert image is not None and image.rgb is not None  # a detail window is only computed for held pixels
    url = png_data_url(image.rgb[y0:y1, x0:x1], max_side=max_side)
    bounds = ((-float(y1), float(x0)), (-float(y0), float(x1)))
    if detail is None or detail not in m.layers:
        detail = ipyleaflet.ImageOverlay(url=url, bounds=bounds, name="image detail", pane="tilePane")
        m.add(detail)
    else:
        detail.url, detail.bounds = url, bounds
    return detail


class MapView:
    """The map of the current image: image overlays, mask layers, the draw control and its events.

    Browser events are converted to image pixels and passed on: ``on_click(x, y)`` for a map
    click, ``on_shape(rings)`` for a drawn shape, ``on_mask(kind, id)`` for a click on a mask.
    The draw toolbar is on the map only while :meth:`set_shapes` names shapes to draw (the active
    tool draws); otherwise no click can be a polygon corner. A georeferenced image after a plain
    one (or the reverse) replaces the map inside :attr:`widget`.
    """

    def __init__(self, *, on_click: Callable[[float, float], Any],
                 on_shape: Callable[[Sequence[np.ndarray]], Any],
                 on_mask: Callable[[str, int], Any], height: str = "600px",
                 max_display: int = 2048, basemap: bool = False, show_rejected: bool = False) -> None:
        self._on_click, self._on_shape, self._on_mask = on_click, on_shape, on_mask
        #: called after the browser moved or zoomed the view (the masks in view, window prefetch)
        self.on_view: list[Callable[[], Any]] = []
        self.tiles = SceneTiles()
        self.tile_layer: ipyleaflet.TileLayer | None = None
        self.height = check_height(height)
        self.max_display = int(max_display)
        self.basemap = basemap
        self.frame: Frame | None = None
        self.image: LoadedImage | None = None
        self.overlay: ipyleaflet.ImageOverlay | None = None
        self.detail: ipyleaflet.ImageOverlay | None = None
        self.shapes: tuple[str, ...] = ()
        self.map, self.layers = self._new_map(False, show_rejected)
        self._draw_key: tuple[str, ...] = ("rectangle",)
        self._draws: dict[tuple[str, ...], ipyleaflet.DrawControl] = {
            self._draw_key: self._make_draw(self._draw_key)}
        self.widget = w.Box([self.map], layout=w.Layout(width="100%", height=self.height,
                                                       min_height=self.height, flex="1 1 auto"))

    def _new_map(self, geographic: bool, show_rejected: bool) -> tuple[ipyleaflet.Map, MaskLayers]:
        m = build_map(geographic=geographic, height=self.height)
        layers = MaskLayers(m, self._on_mask, show_rejected=show_rejected)
        layers.view = self._view_info
        m.on_interaction(self._interaction)
        m.observe(self._view_changed, names="bounds")
        return m, layers

    def _make_draw(self, shapes: tuple[str, ...]) -> ipyleaflet.DrawControl:
        options = {"rectangle": {"shapeOptions": {"color": BOX_COLOR, "weight": 2, "fillOpacity": 0.05}},
                   "polygon": {"shapeOptions": {"color": "#ff8800", "weight": 2, "fillOpacity": 0.1}}}
        draw = ipyleaflet.DrawControl(
            rectangle=options["rectangle"] if "rectangle" in shapes else {},
            polygon=options["polygon"] if "polygon" in shapes else {},
            polyline={}, circlemarker={}, circle={}, marker={}, edit=False, remove=False)
        draw.on_draw(self._drawn)
        return draw

    @property
    def draw(self) -> ipyleaflet.DrawControl:
        """The draw control for the current shapes (the last one offered when there are none)."""
        return self._draws[self._draw_key]

    def set_shapes(self, shapes: Sequence[str]) -> None:
        """Offer these shapes ("rectangle", "polygon") on the draw toolbar; none: no toolbar.

        One draw control per set of shapes is made once and kept (never closed before
        :meth:`close`): ipyleaflet's front end removes *every* ``draw:created`` listener of the
        map when a draw control's view goes away, so a control closed after its successor was
        added would leave the successor deaf.
        """
        shapes = tuple(shapes)
        if shapes == self.shapes:
            return
        if self.draw in self.map.controls:
            self.map.remove(self.draw)
        self.shapes = shapes
        if shapes:
            if shapes not in self._draws:
                self._draws[shapes] = self._make_draw(shapes)
            self._draw_key = shapes
            self.map.add(self.draw)

    def _view_info(self) -> tuple[tuple[int, int, int, int], float] | None:
        """(visible pixel window, image pixels per screen pixel), or None while unknown."""
        window = self.visible_window(min_side=1)
        return None if window is None else (window, self.scale)

    def _unhook(self) -> None:
        self.map.on_interaction(self._interaction, remove=True)
        self.map.unobserve(self._view_changed, names="bounds")

    def show(self, image: LoadedImage | None, frame: Frame) -> None:
        """Place ``image`` (None: file missing) at ``frame`` and forget the previous image's masks."""
        if frame.geographic != getattr(self.map, "_t2s_geographic", False):
            old = self.map
            self._unhook()
            self.map, self.layers = self._new_map(frame.geographic, self.layers.show_rejected)
            if self.shapes:
                self.map.add(self.draw)
            self.overlay = self.detail = self.tile_layer = None
            self.widget.children = (self.map,)
            old.close()
        self.image, self.frame = image, frame
        self._show_tiles(image)
        self.overlay = place_image(self.map, self.overlay, image, frame, max_side=self.max_display,
                                   basemap=self.basemap)
        self.detail = update_detail(self.map, self.detail, None, frame, self.max_display)
        self.layers.set_frame(frame)

    def _show_tiles(self, image: LoadedImage | None) -> None:
        """Put ``image``'s tile layer on the map (a tiled image), removing the previous one."""
        layer = None
        if image is not None and image.tiled and image.path is not None:
            layer = self.tiles.tiled(image.path, image.window).layer
        if self.tile_layer is not None and self.tile_layer is not layer and self.tile_layer in self.map.layers:
            self.map.remove(self.tile_layer)
        if layer is not None and layer not in self.map.layers:
            self.map.add(layer)
        self.tile_layer = layer

    @property
    def scale(self) -> float:
        """Image pixels per screen pixel at the current zoom (1.0 when unknown)."""
        bounds = getattr(self.map, "bounds", None)
        if self.frame is None or self.map.zoom is None or not bounds:
            return 1.0
        zoom = float(self.map.zoom)
        if not self.frame.geographic:
            return 2.0 ** -zoom
        (s, w), (n, e) = bounds
        try:
            xs, _ = self.frame.to_pixel(np.array([w, e]), np.array([(s + n) / 2] * 2))
        except (RasterioError, CPLE_BaseError):  # a view GDAL cannot project
            return 1.0
        screen = 256.0 * 2 ** zoom * abs(e - w) / 360.0
        return float(abs(xs[1] - xs[0]) / max(screen, 1e-9))

    def close(self) -> None:
        self._unhook()
        self.tiles.close()
        for draw in self._draws.values():
            draw.on_draw(self._drawn, remove=True)
            draw.close()
        self.map.close()
        self.widget.close()

    # -- events --------------------------------------------------------------------------------
    def _view_changed(self, _change: Any = None) -> None:
        """The browser moved or zoomed the map: refine a big image's visible part."""
        if self.frame is not None:
            self.detail = update_detail(self.map, self.detail, self.image, self.frame, self.max_display)
            self.layers.refresh_view()
            for hook in self.on_view:
                hook()

    def _interaction(self, **event: Any) -> None:
        if event.get("type") != "click" or self.frame is None:
            return
        lat, lng = event.get("coordinates", (None, None))
        if lat is None or lng is None:
            return
        x, y = self.frame.to_pixel(np.array([lng]), np.array([lat]))
        self._on_click(float(x[0]), float(y[0]))

    def _drawn(self, control: Any, action: str, geo_json: dict[str, Any]) -> None:
        if action != "created" or self.frame is None:
            return
        try:
            self._on_shape(geojson_to_pixel_rings(geo_json, self.frame))
        finally:
            control.clear()

    def visible_window(self, min_side: int = 32) -> tuple[int, int, int, int] | None:
        """The visible part of the image as a pixel window (x0, y0, x1, y1), or None when the view
        is unknown, off the image, or smaller than ``min_side``."""
        bounds = getattr(self.map, "bounds", None)
        if not bounds or self.frame is None:
            return None
        (s, west), (n, east) = bounds
        (fs, fw), (fn, fe) = self.frame.bounds()  # the view clipped to the image: no far-away warps
        s, n, west, east = max(s, fs), min(n, fn), max(west, fw), min(east, fe)
        if s >= n or west >= east:
            return None
        try:
            xs, ys = self.frame.to_pixel(np.array([west, east, west, east]), np.array([s, s, n, n]))
        except (RasterioError, CPLE_BaseError):  # a view GDAL cannot project: nothing to show there
            return None
        w_, h_ = self.frame.width, self.frame.height
        x0, x1 = int(max(0, np.floor(xs.min()))), int(min(w_, np.ceil(xs.max())))
        y0, y1 = int(max(0, np.floor(ys.min()))), int(min(h_, np.ceil(ys.max())))
        if x1 - x0 < min_side or y1 - y0 < min_side:
            return None
        return x0, y0, x1, y1

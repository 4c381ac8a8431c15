"""Building the ipyleaflet map and placing an image on it.

Plain images go on a ``projections.Simple`` map with no tile layer (one map unit = one pixel);
georeferenced ones on the default Web Mercator map at their true place, with an optional
OpenStreetMap basemap. Without internet the basemap tiles simply do not load and the image still
shows: nothing else depends on them.
"""

from __future__ import annotations

from typing import Any

import ipyleaflet
import ipywidgets as w

from text2seg_widgets.widgets.geometry import Frame
from text2seg_widgets.widgets.overlay import LoadedImage, detail_window, png_data_url

__all__ = ["build_map", "place_image", "update_detail", "VIEW_PX"]

#: the view size, in CSS pixels, used to choose the initial zoom
VIEW_PX = (800, 560)


def build_map(*, geographic: bool, height: str = "600px") -> ipyleaflet.Map:
    """An empty map for plain (pixel-space) or georeferenced images."""
    common: dict[str, Any] = dict(zoom_snap=0.25, zoom_delta=0.5, scroll_wheel_zoom=True,
                                  double_click_zoom=False, attribution_control=False,
                                  layout=w.Layout(height=height, width="100%"))
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

    Returns the overlay layer (reused when given); None when there is no image to show.
    """
    if frame.geographic and basemap and not any(isinstance(l, ipyleaflet.TileLayer) for l in m.layers):
        m.add(ipyleaflet.basemap_to_tiles(ipyleaflet.basemaps.OpenStreetMap.Mapnik))
    bounds = frame.bounds()
    if image is None:
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
    if image is not None and not frame.geographic and m.bounds and m.zoom is not None:
        base_scale = min(1.0, max_side / float(max(image.height, image.width)))
        (s, w), (n, e) = m.bounds
        view = (w, -n, e, -s)  # pixel x0, y0, x1, y1
        needed = detail_window(view, image.width, image.height, base_scale, 2.0 ** float(m.zoom))
    if needed is None:
        if detail is not None and detail in m.layers:
            m.remove(detail)
        return None
    x0, y0, x1, y1 = needed
    url = png_data_url(image.rgb[y0:y1, x0:x1], max_side=max_side)
    bounds = ((-float(y1), float(x0)), (-float(y0), float(x1)))
    if detail is None or detail not in m.layers:
        detail = ipyleaflet.ImageOverlay(url=url, bounds=bounds, name="image detail", pane="tilePane")
        m.add(detail)
    else:
        detail.url, detail.bounds = url, bounds
    return detail

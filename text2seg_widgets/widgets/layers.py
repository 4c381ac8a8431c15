"""Mask layers on the map: GeoJSON layers per (class, status), a selection layer, a legend.

Masks are grouped by class and status (never one layer per mask). A group with many masks is
split into fixed blocks of :data:`BLOCK` ids, so that accepting one of 500 candidates re-sends
two blocks of at most ``BLOCK`` features instead of the whole image's masks. Each outline is
traced once per simplification and cached by its RLE, from the mask's box only (never an
image-sized array).

On a scene (longer side above :data:`~.scenetiles.SCENE_SIDE`), or with more than
:data:`MAX_DRAWN` masks, only the masks in and around the view are sent, at most :data:`MAX_DRAWN` (annotations first, then by score), outlines simplified
to the zoom (about one screen pixel) and masks under two screen pixels left out; panning and
zooming re-send what changed. The store and the selection stay exact in scene pixels.
"""

from __future__ import annotations

import hashlib
import html
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import ipyleaflet

from text2seg_widgets.core import rle_bbox
from text2seg_widgets.imagery.instances import scene_rle_crop
from text2seg_widgets.widgets.geometry import Frame, mask_to_geometry
from text2seg_widgets.widgets.scenetiles import SCENE_SIDE

__all__ = ["MaskItem", "MaskLayers", "legend_html", "STATUSES", "BLOCK", "SELECTED_PANE", "MAX_DRAWN"]

#: masks per GeoJSON layer within one (class, status) group; blocks follow ids, so they are stable
BLOCK = 64
#: the most masks drawn at once on a scene (zoom in to see the others)
MAX_DRAWN = 1500

#: Display statuses: proposed candidates, accepted annotations, rejected candidates (hidden by default).
STATUSES = ("proposed", "accepted", "rejected")


@dataclass(frozen=True)
class MaskItem:
    """One drawable mask: ``kind`` is "candidate" or "annotation"."""

    kind: str
    id: int
    class_name: str
    status: str
    rle: dict[str, Any]
    score: float = 1.0
    branch: str = ""

    digest: str = field(default="", compare=False)
    #: ``kind:id``, the item's name in the layers (made once: displays of 10,000 masks read it often)
    key: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not self.digest:
            object.__setattr__(self, "digest", _rle_digest(self.rle))
        object.__setattr__(self, "key", f"{self.kind}:{self.id}")


def _style(color: str, status: str, opacity: float = 1.0) -> dict[str, Any]:
    """The look of a (class colour, status) group; ``opacity`` scales it (the panel's slider)."""
    style: dict[str, Any]
    if status == "proposed":
        style = {"color": color, "weight": 2, "opacity": 0.9, "dashArray": "5 4",
                 "fillColor": color, "fillOpacity": 0.15}
    elif status == "rejected":
        style = {"color": "#888888", "weight": 1, "opacity": 0.6, "dashArray": "2 4",
                 "fillColor": "#888888", "fillOpacity": 0.05}
    else:
        style = {"color": color, "weight": 2, "opacity": 1.0, "fillColor": color, "fillOpacity": 0.4}
    if opacity != 1.0:
        style["opacity"] = round(float(style["opacity"]) * opacity, 3)
        style["fillOpacity"] = round(float(style["fillOpacity"]) * opacity, 3)
    return style


#: the Leaflet pane of the selection outline: above the overlay pane (z-index 400) that holds the
#: mask layers, so the outline stays on top without re-stacking layers; the pane itself lets the
#: pointer through (its interactive paths still take clicks), so it never hides the masks below
SELECTED_PANE = "t2s-selected"
SELECTED_PANE_STYLE = {"zIndex": 450, "pointerEvents": "none"}

SELECTED_STYLE = {"color": "#ffff00", "weight": 4, "opacity": 1.0, "fillColor": "#ffff00", "fillOpacity": 0.25}


class MaskLayers:
    """Owns the GeoJSON layers of the current image and keeps them in step with the store."""

    def __init__(self, map_: ipyleaflet.Map, on_click: Callable[[str, int], None],
                 show_rejected: bool = False) -> None:
        self.map = map_
        self._on_click = on_click
        self.show_rejected = show_rejected
        self.frame: Frame | None = None
        self.layers: dict[tuple[str, str, int], ipyleaflet.GeoJSON] = {}
        self._geoms: dict[str, dict[str, Any] | None] = {}
        self._sent: dict[tuple[str, str, int], tuple[str, ...]] = {}
        self.map.panes = {**self.map.panes, SELECTED_PANE: dict(SELECTED_PANE_STYLE)}
        self.selected = ipyleaflet.GeoJSON(data=_collection([]), name="selected", pane=SELECTED_PANE)
        self.map.add(self.selected)
        self._highlighted: tuple[str, str] | None = None
        self.items: dict[str, MaskItem] = {}
        self._colors: dict[str, str] = {}
        self._boxes: dict[str, list[float]] = {}
        #: (visible pixel window, image pixels per screen pixel) or None; set by the map view
        self.view: Callable[[], tuple[tuple[int, int, int, int], float] | None] = lambda: None
        #: masks left out of the last redraw (outside the view, too small, or over MAX_DRAWN)
        self.left_out = 0
        #: the keys of the masks drawn by the last redraw
        self.drawn_keys: set[str] = set()
        self.opacity = 1.0
        self.hidden_classes: set[str] = set()
        self.visible = True

    def set_frame(self, frame: Frame | None) -> None:
        """A new image: forget cached outlines and remove every mask layer."""
        self.frame = frame
        self._geoms.clear()
        for layer in self.layers.values():
            self.map.remove(layer)
        self.layers.clear()
        self._sent.clear()
        self._boxes.clear()
        self.items = {}
        self.highlight(None)

    def geometry(self, item: MaskItem, tolerance: float = 0.75) -> dict[str, Any] | None:
        """The cached map outline of ``item`` simplified by ``tolerance`` pixels (traced on first use
        from the mask's box)."""
        if self.frame is None:
            return None
        ck = f"{item.digest}/{tolerance:g}"  # the same mask (a candidate and its annotation) is traced once
        if ck not in self._geoms:
            crop, x0, y0 = scene_rle_crop(item.rle)
            self._geoms[ck] = (mask_to_geometry(crop, self.frame, tolerance=tolerance, offset=(x0, y0))
                               if crop.size else None)
        return self._geoms[ck]

    def box(self, item: MaskItem) -> list[float]:
        """The xywh box of ``item``'s mask (cached)."""
        if item.digest not in self._boxes:
            self._boxes[item.digest] = rle_bbox(item.rle)
        return self._boxes[item.digest]

    def _by_view(self) -> bool:
        """Whether only the masks in view are drawn: on a scene, or with more masks than MAX_DRAWN."""
        return self.frame is not None and (max(self.frame.width, self.frame.height) > SCENE_SIDE
                                           or len(self.items) > MAX_DRAWN)

    def _drawn(self) -> tuple[list[MaskItem], float]:
        """The items to draw now and the outline tolerance (module docs)."""
        shown = [it for it in self.items.values() if self.visible and it.class_name not in self.hidden_classes
                 and (it.status != "rejected" or self.show_rejected)]
        view = self.view() if self._by_view() else None
        if view is None:
            shown.sort(key=lambda it: (it.kind != "annotation", -it.score, it.id))
            self.left_out = len(self.items) - min(len(shown), MAX_DRAWN)
            return (shown[:MAX_DRAWN] if len(shown) > MAX_DRAWN else shown), 0.75
        (vx0, vy0, vx1, vy1), scale = view
        tolerance = max(0.75, 2.0 ** round(math.log2(max(scale, 1e-9))) * 0.75)
        mx, my = (vx1 - vx0) / 2.0, (vy1 - vy0) / 2.0
        keep = []
        for it in shown:
            x, y, w, h = self.box(it)
            if x + w < vx0 - mx or x > vx1 + mx or y + h < vy0 - my or y > vy1 + my:
                continue
            if max(w, h) < 2 * scale and it.kind != "annotation":
                continue
            keep.append(it)
        keep.sort(key=lambda it: (it.kind != "annotation", -it.score, it.id))
        self.left_out = len(self.items) - min(len(keep), MAX_DRAWN)
        return keep[:MAX_DRAWN], tolerance

    def update(self, items: Iterable[MaskItem], colors: dict[str, str]) -> int:
        """Redraw from ``items``; returns how many layers were re-sent to the browser."""
        self.items = {it.key: it for it in items}
        self._colors = dict(colors)
        return self._redraw()

    def refresh_view(self) -> int:
        """The view moved: on a scene, redraw the masks in view (nothing to do on small images)."""
        return self._redraw() if self._by_view() else 0

    def set_style(self, *, visible: bool | None = None, opacity: float | None = None,
                  hidden_classes: Iterable[str] | None = None) -> int:
        """Show or hide all masks, set their opacity (0..1), hide some classes; redraws."""
        if visible is not None:
            self.visible = bool(visible)
        if opacity is not None:
            self.opacity = min(1.0, max(0.0, float(opacity)))
        if hidden_classes is not None:
            self.hidden_classes = set(hidden_classes)
        return self._redraw()

    def _redraw(self) -> int:
        drawn, tolerance = self._drawn()
        self.drawn_keys = {it.key for it in drawn}
        groups: dict[tuple[str, str, int], list[MaskItem]] = {}
        for it in drawn:
            groups.setdefault((it.class_name, it.status, it.id // BLOCK), []).append(it)
        sent = 0
        colors = self._colors
        for gkey in set(self.layers) | set(groups):
            members = groups.get(gkey, [])
            color = colors.get(gkey[0], "#ff00ff")
            signature = (color, f"{tolerance:g}", f"{self.opacity:g}", *sorted(f"{m.key}/{m.digest}" for m in members))
            if self._sent.get(gkey) == signature:
                continue
            self._draw_group(gkey, members, color, tolerance)
            self._sent[gkey] = signature
            sent += 1
        return sent

    def features(self, class_name: str, status: str) -> list[dict[str, Any]]:
        """Every feature drawn for (class, status), across its blocks."""
        return [f for (c, st, _), layer in sorted(self.layers.items()) if (c, st) == (class_name, status)
                for f in layer.data["features"]]

    def groups(self) -> set[tuple[str, str]]:
        """The (class, status) pairs that have at least one drawn feature."""
        return {(c, st) for (c, st, _), layer in self.layers.items() if layer.data["features"]}

    def _draw_group(self, gkey: tuple[str, str, int], members: list[MaskItem], color: str,
                    tolerance: float = 0.75) -> None:
        # The style goes into each feature (as ipyleaflet's own `style` trait would put it) so that
        # ipyleaflet does not deep-copy the whole collection on every change.
        style = _style(color, gkey[1], self.opacity)
        feats = []
        for m in members:
            geom = self.geometry(m, tolerance)
            if geom is not None:
                feats.append({"type": "Feature", "geometry": geom,
                              "properties": {"kind": m.kind, "id": m.id, "class_name": m.class_name,
                                             "status": m.status, "score": round(m.score, 3), "style": style}})
        layer = self.layers.get(gkey)
        if layer is None:
            layer = ipyleaflet.GeoJSON(data=_collection(feats), hover_style={"weight": 3, "fillOpacity": 0.5},
                                       name=f"{gkey[0]} ({gkey[1]}) {gkey[2]}")
            layer.on_click(self._clicked)
            self.map.add(layer)
            self.layers[gkey] = layer
        else:
            layer.data = _collection(feats)

    def _clicked(self, **event: Any) -> None:
        props = (event.get("feature") or {}).get("properties") or event.get("properties") or {}
        if "kind" in props and "id" in props:
            self._on_click(str(props["kind"]), int(props["id"]))

    def highlight(self, item: MaskItem | None) -> None:
        """Outline ``item`` (None: nothing) in the selection layer, which stays on the map in its
        own pane (see :data:`SELECTED_PANE`); nothing is sent when the outline is unchanged."""
        geom = self.geometry(item) if item is not None else None
        shown = None if geom is None or item is None else (item.key, item.digest)
        if shown == self._highlighted:
            return
        feats = [] if geom is None or item is None else [
            {"type": "Feature", "geometry": geom,
             "properties": {"kind": item.kind, "id": item.id, "style": SELECTED_STYLE}}]
        self.selected.data = _collection(feats)
        self._highlighted = shown


def _collection(features: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": features}


def _rle_digest(rle: dict[str, Any]) -> str:
    counts = rle.get("counts", "")
    raw = counts.encode() if isinstance(counts, str) else bytes(str(counts), "ascii")
    return hashlib.blake2b(raw, digest_size=8).hexdigest()


def legend_html(classes: Iterable[tuple[str, str]], current: str | None = None) -> str:
    """A small legend: one swatch per (name, colour), the current class in bold, keys 1..9."""
    rows = []
    for i, (name, color) in enumerate(classes):
        key = f"{i + 1}" if i < 9 else "&nbsp;"
        label = html.escape(name)
        label = f"<b>{label}</b>" if name == current else label
        rows.append(f"<div><span style='display:inline-block;width:12px;height:12px;background:{color};"
                    f"margin-right:4px;border:1px solid #333'></span>{key} {label}</div>")
    rows.append("<div style='color:#666'>dashed: proposed &middot; solid: accepted &middot; "
                "yellow: selected</div>")
    return "<div class='t2s-legend' style='font-size:12px'>" + "".join(rows) + "</div>"

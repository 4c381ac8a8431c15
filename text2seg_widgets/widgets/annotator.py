"""The Annotator: an ipyleaflet map of the current image beside a review panel.

Every action is a plain method (``select``, ``accept_selected``, ``click``, ``box``, ``undo``...)
that writes to the project store at once and then redraws from the store, so the widget never
holds work that is not saved. Map clicks, GeoJSON clicks, drawn shapes, buttons and keys only
call these methods; tests drive the same methods without a browser.
"""

from __future__ import annotations

import html
import logging
from typing import Any, Callable, Sequence

import ipyleaflet
import ipywidgets as w
import numpy as np

from text2seg_widgets.errors import InputError, Text2SegError
from text2seg_widgets.widgets import storeview as rec
from text2seg_widgets.widgets.actions import ActionsMixin
from text2seg_widgets.widgets.geometry import Frame, geojson_to_pixel_rings, box_from_rings
from text2seg_widgets.widgets.layers import MaskItem, MaskLayers, legend_html
from text2seg_widgets.widgets.mapview import build_map, place_image, update_detail
from text2seg_widgets.widgets.overlay import LoadedImage, load_image
from text2seg_widgets.widgets.panel import SidePanel
from text2seg_widgets.widgets.embeddings import EmbeddingKeeper
from text2seg_widgets.widgets.refine import RefineSession
from text2seg_widgets.widgets.runner import BackgroundRunner
from text2seg_widgets.widgets.shortcuts import event_to_key

__all__ = ["Annotator"]

log = logging.getLogger(__name__)


class Annotator(ActionsMixin):
    """Review and correct a project's candidates image by image.

    Args:
        project: an open :class:`text2seg_widgets.store.Project`.
        models: a :class:`~text2seg_widgets.models.modelset.ModelSet` (or None: review only; text
            prompts and SAM tools then say which weights they need).
        image_id: the image to open first (default: the first unreviewed, else the first image).
        pipeline_config: defaults for text-prompt runs (the settings panel overrides branches and
            thresholds).
        basemap: add an OpenStreetMap basemap under georeferenced images (needs internet in the
            browser; without it the image still shows on a blank background).
        max_display: long side, in pixels, of the image sent to the browser.
    """

    def __init__(self, project: Any, models: Any = None, *, image_id: int | None = None,
                 pipeline_config: Any = None, basemap: bool = False, max_display: int = 2048,
                 map_height: str = "600px", show_rejected: bool = False) -> None:
        self.project = project
        self.models = models
        self.pipeline_config = pipeline_config
        self.basemap = basemap
        self.max_display = int(max_display)
        self.map_height = map_height
        self.selection: tuple[str, int] | None = None
        self.mode = "select"
        self.image_id: int | None = None
        self.image: LoadedImage | None = None
        self.frame: Frame | None = None
        self.session: RefineSession | None = None
        self.last_error: str | None = None
        self.last_refine_seconds: float | None = None
        self._syncing = False
        self.closed = False
        self._last_key: tuple[Any, Any] = (None, None)
        self.keeper = EmbeddingKeeper(models.segmenter) if getattr(models, "segmenter", None) else None
        self.runner = BackgroundRunner()
        classes = rec.class_list(project)
        self.current_class: str | None = classes[0][0] if classes else None
        self.panel = SidePanel([c[0] for c in classes])
        self.map = build_map(geographic=False, height=map_height)
        self.layers = MaskLayers(self.map, self._mask_clicked, show_rejected=show_rejected)
        self._overlay: ipyleaflet.ImageOverlay | None = None
        self._detail: ipyleaflet.ImageOverlay | None = None
        self._draw = self._make_draw_control()
        self.map.add(self._draw)
        self.map.on_interaction(self._map_event)
        self.map.observe(self._view_changed, names="bounds")
        self._init_branch_boxes()
        self.panel.bind(self)
        self.widget = w.HBox([self.map, self.panel.widget], layout=w.Layout(width="100%"))
        self.widget.add_class("t2s-annotator")
        self._keys = self._bind_keys()
        first = image_id if image_id is not None else rec.first_image_id(project)
        if first is None:
            self._say("This project has no images yet: add some with project.add_image(path), "
                      "then call annotator.refresh().", error=True)
            self.refresh()
        else:
            self.show_image(first)

    def _init_branch_boxes(self) -> None:
        runnable = self.runnable_branches()
        for name, box in self.panel.branches.items():
            box.disabled = name not in runnable
            box.value = name in runnable and (name != "concept" or runnable == ("concept",))
            if name not in runnable:
                box.description = f"{name} (no model)"

    # -- lifetime --------------------------------------------------------------------------------
    def close(self, timeout: float | None = None) -> None:
        """Stop and join the background work (prompt run, embedding prefetch), disconnect every
        browser event and close the widgets. Saved work is untouched; closing twice is harmless."""
        if self.closed:
            return
        self.closed = True
        self.runner.close(timeout)
        if self.keeper is not None:
            closer = getattr(self.keeper, "close", None)
            (closer or self.keeper.join)(timeout)
        self.panel.unbind()
        self._unhook_map(self.map, self._draw)
        if self._keys is not None:
            self._keys.on_dom_event(self._key_event, remove=True)
            self._keys.close()
        self.widget.close()

    def __enter__(self) -> "Annotator":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _unhook_map(self, m: ipyleaflet.Map, draw: ipyleaflet.DrawControl) -> None:
        m.on_interaction(self._map_event, remove=True)
        m.unobserve(self._view_changed, names="bounds")
        draw.on_draw(self._drawn, remove=True)

    # -- display ---------------------------------------------------------------------------------
    def _ipython_display_(self) -> None:  # pragma: no cover - needs a front end
        from IPython.display import display

        display(self.widget)

    def show_image(self, image_id: int) -> None:
        """Open ``image_id``: load its pixels (a missing file is reported, its masks still shown)."""
        record = self.project.image(image_id)
        self.image_id = int(record.id)
        self.selection = None
        self.session = None
        try:
            self.image = load_image(record.path, record.window)
        except (InputError, OSError) as exc:
            self.image = None
            self._say(str(exc), error=True)
        else:
            self._say(f"image {record.id}: {html.escape(str(record.path))}")
        self.frame = rec.frame_of(record, self.image)
        if self.frame.geographic != getattr(self.map, "_t2s_geographic", False):
            self._replace_map(self.frame.geographic)
        self._overlay = place_image(self.map, self._overlay, self.image, self.frame,
                                    max_side=self.max_display, basemap=self.basemap)
        self._detail = update_detail(self.map, self._detail, None, self.frame, self.max_display)
        self.layers.set_frame(self.frame)
        self.refresh()

    def _replace_map(self, geographic: bool) -> None:
        old, old_draw = self.map, self._draw
        self.map = build_map(geographic=geographic, height=self.map_height)
        self.layers = MaskLayers(self.map, self._mask_clicked, show_rejected=self.layers.show_rejected)
        self._overlay = self._detail = None
        self._draw = self._make_draw_control()
        self.map.add(self._draw)
        self.map.on_interaction(self._map_event)
        self.map.observe(self._view_changed, names="bounds")
        self.widget.children = (self.map, self.panel.widget)
        self._unhook_map(old, old_draw)
        old.close()

    def _view_changed(self, _change: Any = None) -> None:
        """The browser moved or zoomed the map: refine a big image's visible part."""
        if self.frame is not None:
            self._detail = update_detail(self.map, self._detail, self.image, self.frame, self.max_display)

    def items(self) -> list[MaskItem]:
        """The current image's masks: candidates still proposed (and rejected), and annotations."""
        return rec.mask_items(self.project, self.image_id) if self.image_id is not None else []

    def refresh(self) -> None:
        """Redraw layers, list, progress and legend from the store."""
        items = self.items()
        colors = dict(rec.class_list(self.project))
        self.layers.update(items, colors)
        if self.selection is not None and f"{self.selection[0]}:{self.selection[1]}" not in self.layers.items:
            self.selection = None
        self.layers.highlight(self._selected_item())
        self._syncing = True
        try:
            self.panel.items.options = [(rec.item_label(it), (it.kind, it.id)) for it in items]
            self.panel.items.value = self.selection
            names = [c for c, _ in rec.class_list(self.project)]
            if list(self.panel.class_picker.options) != names:
                self.panel.class_picker.options = names
            if self.current_class in names:
                self.panel.class_picker.value = self.current_class
        finally:
            self._syncing = False
        self.panel.legend.value = legend_html(rec.class_list(self.project), self.current_class)
        self.panel.progress.value = rec.progress_html(self.project, self.image_id, items)

    def _selected_item(self) -> MaskItem | None:
        if self.selection is None:
            return None
        return self.layers.items.get(f"{self.selection[0]}:{self.selection[1]}")

    def _say(self, text: str, error: bool = False) -> None:
        self.last_error = text if error else None
        color = "#b00020" if error else "#333"
        self.panel.message.value = f"<div style='color:{color};font-size:12px'>{text}</div>"
        (log.warning if error else log.info)("%s", text)

    def _ui(self, action: Callable[..., Any], *args: Any) -> Any:
        """Run an action from a UI event: user errors become a message, never a traceback."""
        if self.closed:
            return None
        try:
            return action(*args)
        except Text2SegError as exc:
            self._say(html.escape(str(exc)), error=True)
        except Exception as exc:  # keep the widget alive; the log has the traceback
            log.exception("action %s failed", getattr(action, "__name__", action))
            self._say(f"{type(exc).__name__}: {html.escape(str(exc))}", error=True)
        return None

    # -- map events ---------------------------------------------------------------------------
    def _make_draw_control(self) -> ipyleaflet.DrawControl:
        dc = ipyleaflet.DrawControl(
            rectangle={"shapeOptions": {"color": "#00aaff", "weight": 2, "fillOpacity": 0.05}},
            polygon={"shapeOptions": {"color": "#ff8800", "weight": 2, "fillOpacity": 0.1}},
            polyline={}, circlemarker={}, circle={}, marker={}, edit=False, remove=False)
        dc.on_draw(self._drawn)
        return dc

    def _map_event(self, **event: Any) -> None:
        if event.get("type") != "click" or self.mode == "select" or self.frame is None:
            return
        lat, lng = event.get("coordinates", (None, None))
        x, y = self.frame.to_pixel(np.array([lng]), np.array([lat]))
        self._ui(self.click, float(x[0]), float(y[0]), self.mode == "positive")

    def _mask_clicked(self, kind: str, ident: int) -> None:
        if self.mode == "select":
            self._ui(self.select, (kind, ident))

    def _drawn(self, control: Any, action: str, geo_json: dict[str, Any]) -> None:
        if action != "created" or self.frame is None:
            return
        try:
            rings = geojson_to_pixel_rings(geo_json, self.frame)
            if (geo_json.get("properties") or {}).get("style", {}).get("color") == "#00aaff" or \
                    _is_rectangle(rings):
                self._ui(self.box, *box_from_rings(rings))
            else:
                subtract = self.panel.polygon_mode.value == "subtract"
                self._ui(self.polygon, rings[0].tolist(), subtract)
        finally:
            control.clear()

    def _bind_keys(self) -> Any:
        try:
            from ipyevents import Event
        except ImportError:  # pragma: no cover - ipyevents is a dependency
            return None
        ev = Event(source=self.widget, watched_events=["keydown"], prevent_default_action=False)
        ev.on_dom_event(self._key_event)
        return ev

    def _key_event(self, event: dict[str, Any]) -> None:
        target = str(event.get("target", {}).get("tagName", "") if isinstance(event.get("target"), dict) else "")
        if target.upper() in ("INPUT", "TEXTAREA"):
            return
        stamp = (event.get("key"), event.get("timeStamp"))
        if stamp[1] is not None and stamp == self._last_key:
            return  # the same DOM event delivered twice (ipyevents can attach one listener per view)
        self._last_key = stamp
        key = event_to_key(event)
        if key:
            self._ui(self.handle_key, key)

    # -- background work ------------------------------------------------------------------------
    def _prefetch_next(self) -> None:
        """Encode the next image in the background (called once this image is encoded)."""
        if self.keeper is None or self.image_id is None:
            return
        nxt = rec.next_image_id(self.project, self.image_id)
        if nxt is None or nxt == self.image_id:
            return
        nrec = self.project.image(nxt)
        self.keeper.prefetch(nxt, lambda: load_image(nrec.path, nrec.window).rgb)


def _is_rectangle(rings: Sequence[np.ndarray]) -> bool:
    """A drawn rectangle: one ring of 4 corners (5 with the closing point) on two xs and two ys."""
    if len(rings) != 1:
        return False
    pts = np.round(np.asarray(rings[0], float), 3)
    if pts.shape[0] not in (4, 5):
        return False
    return len(np.unique(pts[:, 0])) == 2 and len(np.unique(pts[:, 1])) == 2

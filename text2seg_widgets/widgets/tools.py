"""Correction tools: SAM clicks and boxes against the cached embedding, manual polygons.

:class:`Tools` turns a click, a box or a polygon (in image pixels) into a mask written to the
store. Nothing is overwritten by surprise: every box and every polygon makes a new annotation of
the current class, unless the explicit refine switch (:attr:`AnnotatorState.refine`, key ``e``)
is on, when a box changes the selected mask; + / - points are the refine tools (they change the
selected mask, or start a new one when nothing is selected). The message says which happened. A
mask decoded while the selection changed is added as its own annotation. SAM prompts are decoded
on a window around them (:mod:`text2seg_widgets.imagery.windows`), so they work the same on a
tile and a 20,000-pixel scene. Map events arrive already converted to pixels (see :class:`~text2seg_widgets.widgets.mapview.MapView`).

The active tool (:data:`MODES`) decides what a map event does, never the shape drawn: in
``box`` any drawn shape is a SAM box of its bounds, in ``polygon-add`` / ``polygon-cut`` any
drawn shape adds / cuts its pixels (there the rectangle button draws a rectangle-shaped polygon,
never a SAM box, and the message says "polygon"); map clicks are SAM points only in the
``positive`` / ``negative`` tools. The draw toolbar exists only in the drawing tools, so a polygon
corner can never be taken for a point.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from text2seg_widgets.core import rle_bbox
from text2seg_widgets.errors import InputError
from text2seg_widgets.imagery.instances import crop_to_scene_rle, scene_rle_crop
from text2seg_widgets.widgets.display import Display
from text2seg_widgets.widgets.geometry import box_from_rings, points_window, rasterize_polygon
from text2seg_widgets.widgets.mapview import MapView
from text2seg_widgets.widgets.panel import SidePanel
from text2seg_widgets.widgets.refine import RefineSession, session_window
from text2seg_widgets.widgets.state import AnnotatorState

if TYPE_CHECKING:
    from text2seg_widgets.store import Project

__all__ = ["Tools", "POINTS_NEED_SAM", "NO_SEGMENTER", "MODES", "DRAW_SHAPES"]

log = logging.getLogger(__name__)

#: the map tools (see the module doc)
MODES = ("select", "box", "polygon-add", "polygon-cut", "positive", "negative")
#: the shapes the draw toolbar offers in each drawing tool (the other tools have no toolbar)
DRAW_SHAPES = {"box": ("rectangle",), "polygon-add": ("polygon", "rectangle"),
               "polygon-cut": ("polygon", "rectangle")}
#: seconds a prompt waits for the background encode of its own window (one encode: ~1 s here)
PROMPT_WAIT = 30.0

POINTS_NEED_SAM = ("clicks need a SAM checkpoint (this segmenter, {name}, takes boxes only): fetch one with "
                   "`text2seg-widgets weights fetch sam-vit-b` and load it; the box tool still works")
NO_SEGMENTER = ("SAM tools need a segmenter: pass models=load_models('offline') (LiteMedSAM: boxes) or a "
                "SAM checkpoint (clicks and boxes); the polygon tool works without one")


class Tools:
    """Clicks, boxes and polygons on the current image.

    Args:
        project: the open project store.
        state: the shared :class:`AnnotatorState`.
        display: redraws and messages.
        panel: the side panel (its tool buttons mirror the tool).
        view: the map (its draw toolbar follows the tool).
        keeper: the :class:`EmbeddingKeeper` of the segmenter, or None (no SAM tools).
        busy: True while a text-prompt run holds the segmenter.
        prefetch_next: starts encoding the next image once this one is encoded.
        after_edit: redraw and say what changed (the review part's ``after_edit``).
    """

    def __init__(self, project: "Project", state: AnnotatorState, display: Display, panel: SidePanel,
                 view: MapView, keeper: Any, *, busy: Callable[[], bool], prefetch_next: Callable[[], None],
                 after_edit: Callable[[str], None]) -> None:
        self.project = project
        self.state = state
        self.display = display
        self.panel = panel
        self.view = view
        self.keeper = keeper
        self._busy = busy
        self._prefetch_next = prefetch_next
        self._after_edit = after_edit

    # -- modes ---------------------------------------------------------------------------------
    def set_mode(self, mode: str) -> None:
        """Make ``mode`` (one of :data:`MODES`) the active tool."""
        if mode not in MODES:
            raise InputError(f"unknown tool {mode!r}; use one of {', '.join(MODES)}")
        self.state.mode = mode
        self.view.set_shapes(DRAW_SHAPES.get(mode, ()))
        if self.panel.tool.value != mode:
            with self.display.syncing():
                self.panel.tool.value = mode

    # -- map events ----------------------------------------------------------------------------
    def map_click(self, x: float, y: float) -> int | None:
        """A click on the map at pixel (x, y): a SAM point in the point tools; in the select tool a
        click on empty map (no drawn mask under it) clears the selection (masks take their own
        clicks); in the drawing tools clicks are corners."""
        st = self.state
        if st.mode == "select":
            if st.selection is not None and not self.mask_at(x, y):
                st.select(None)
                self.display.show_selection()
                self.display.say("selection cleared (a click on the empty map); the next box makes a new mask")
            return None
        if st.mode not in ("positive", "negative"):
            return None
        return self.click(x, y, st.mode == "positive")

    def mask_at(self, x: float, y: float) -> list[str]:
        """The keys of the drawn masks that cover pixel (x, y)."""
        layers = self.view.layers
        found = []
        for key, item in layers.items.items():
            bx, by, bw, bh = layers.box(item)
            if not (bx <= x < bx + bw and by <= y < by + bh):
                continue
            crop, cx, cy = scene_rle_crop(item.rle)
            if crop.size and crop[int(y) - cy, int(x) - cx]:
                found.append(key)
        return found

    def toggle_refine(self, on: bool | None = None) -> bool:
        """Switch refine mode (boxes and clicks change the selected mask) on, off, or over."""
        st = self.state
        st.refine = (not st.refine) if on is None else bool(on)
        st.session = None
        if self.panel.refine.value != st.refine:
            with self.display.syncing():
                self.panel.refine.value = st.refine
        self.display.say("refine on: a box changes the selected mask" if st.refine else
                         "refine off: every box makes a new annotation")
        return st.refine

    def mask_click(self, kind: str, ident: int) -> bool:
        """A click on a mask selects it in the select tool only; True when it did."""
        return self.state.mode == "select"

    def shape_drawn(self, rings: Sequence[np.ndarray]) -> int | None:
        """A shape drawn on the map (pixel rings): what it does is the active tool's choice."""
        mode = self.state.mode
        if mode == "box":
            return self.box(*box_from_rings(rings))
        if mode in ("polygon-add", "polygon-cut"):
            return self.polygon(np.asarray(rings[0]).tolist(), subtract=mode == "polygon-cut")
        self.display.say(f"a shape was drawn in the {mode} tool and ignored: choose box, polygon adds or "
                         "polygon cuts first")
        return None

    # -- SAM -----------------------------------------------------------------------------------
    def click(self, x: float, y: float, positive: bool = True) -> int:
        """A positive/negative point: it refines the selected mask (the point tools are the refine
        tools), or with nothing selected starts a new annotation that the next clicks refine.
        Returns the annotation id."""
        self._check_inside(x, y)
        session = self._session("click")
        session.add_point(x, y, positive)
        try:
            return self._refine(session, "click")
        except InputError:
            session.points.pop()
            session.labels.pop()
            raise

    def box(self, x0: float, y0: float, x1: float, y1: float) -> int:
        """A box prompt: a new annotation of the current class, every time; with
        :attr:`AnnotatorState.refine` on it refines the selected mask instead."""
        self.display.require_image()
        x0, x1 = sorted((float(x0), float(x1)))
        y0, y1 = sorted((float(y0), float(y1)))
        w, h = self.state.frame.width, self.state.frame.height
        if x1 <= 0 or y1 <= 0 or x0 >= w or y0 >= h or x1 - x0 < 1 or y1 - y0 < 1:
            raise InputError(f"the box ({x0:.0f}, {y0:.0f}, {x1:.0f}, {y1:.0f}) does not cover any of the "
                             f"{w} x {h} image")
        session = self._session("box")
        session.set_box(np.array([max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)]))
        return self._refine(session, "box")

    def _check_inside(self, x: float, y: float) -> None:
        self.display.require_image()
        w, h = self.state.frame.width, self.state.frame.height
        if not (np.isfinite(x) and np.isfinite(y)) or not (0 <= x < w and 0 <= y < h):
            raise InputError(f"the click at ({x:.0f}, {y:.0f}) is outside the {w} x {h} image; click on the image")

    def _session(self, tool: str) -> RefineSession:
        """The session a ``tool`` prompt goes to: clicks (the point tools are the refine tools) and,
        with refine on, boxes go to the selected mask's; otherwise a box starts a new mask."""
        st = self.state
        item = self.display.selected_item()
        target = (item.kind, item.id) if item is not None else None
        if item is not None and (tool == "click" or st.refine):
            if st.session is None or st.session.target != target:
                x, y, w, h = rle_bbox(item.rle)
                st.session = RefineSession.for_mask(target, np.array([x, y, x + w, y + h]) if w and h else None)
            return st.session
        st.session = RefineSession.for_mask(None, None)
        return st.session

    def _refine(self, session: RefineSession, tool: str) -> int:
        st = self.state
        image = st.image
        if image is None:
            raise InputError("the image pixels are not available (file missing?); SAM tools need them")
        if self.keeper is None:
            raise InputError(NO_SEGMENTER)
        if self._busy():
            raise InputError("a text-prompt run is in progress; the SAM tools are back when it finishes")
        if session.points and not getattr(self.keeper.segmenter, "supports_points", True):
            raise InputError(POINTS_NEED_SAM.format(name=getattr(self.keeper.segmenter, "name", "?")))
        image_id, target = st.image_id, session.target
        width, height = st.frame.width, st.frame.height
        t0 = time.perf_counter()
        try:
            win = session_window(session, width, height, self.keeper.segmenter.input_size)
            key = (image_id, win.rasterio)
            # background encodes give the CPU to this prompt (one of its own window is waited for)
            self.keeper.stop_prefetch(keep=key, timeout=PROMPT_WAIT)
            session.use_window(win)
            pixels = image.read(win)
            with self.keeper.lock:  # the held embedding cannot change between ensure and decode
                self.keeper.ensure(key, pixels)
                result = session.predict(self.keeper.segmenter)
        except InputError as exc:
            if session.points and "point" in str(exc).lower():
                name = getattr(self.keeper.segmenter, "name", "?")
                raise InputError(POINTS_NEED_SAM.format(name=name)) from exc
            raise
        st.last_refine_seconds = time.perf_counter() - t0
        self._prefetch_next()  # this image is encoded: the next one may be now
        if not result.mask.any():
            st.pending_actions += 1
            raise InputError(f"SAM returned an empty mask for this {tool}; try another point or a box")
        rle = crop_to_scene_rle(result.mask, win.x0, win.y0, height, width)
        note = ""
        if st.image_id != image_id:
            raise InputError(f"the {tool}'s mask arrived after image {image_id} was left; nothing was written")
        if target is not None and st.selection != target:
            target, note = None, " (the selection changed meanwhile, so it was not written over it)"
        ann = self._write_mask(target, rle, source=self._model_source())
        session.target = ("annotation", ann)
        st.select(("annotation", ann), keep_refine=True)
        what = f"new annotation {ann}" if target is None else f"refined {target[0]} {target[1]} (now annotation {ann})"
        self._after_edit(f"{tool}: {what}{note}; kernel time {1000 * st.last_refine_seconds:.0f} ms")
        return ann

    def _model_source(self) -> str:
        """What a SAM-made annotation records as its source: ``sam:<model name>``."""
        return f"sam:{getattr(self.keeper.segmenter, 'name', 'sam')}" if self.keeper is not None else "sam"

    def _write_mask(self, target: tuple[str, int] | None, mask: Any, source: str) -> int:
        """Store ``mask`` (array or scene RLE): a new annotation (``target`` None), or the target's
        new mask (a proposed candidate is accepted first). One user action, plus any attempts that
        wrote nothing."""
        st = self.state
        actions = 1 + st.pending_actions
        if target is None:
            if st.current_class is None:
                raise InputError("the project has no classes: add one with project.add_class(name)")
            ident = self.project.add_annotation(self.display.require_image(), mask, st.current_class, source=source,
                                                actions=actions)
        else:
            kind, ident = target
            if kind == "candidate":
                ident = self.project.accept(ident)
            self.project.update_annotation_mask(ident, mask, actions=actions)
        st.pending_actions = 0
        return ident

    # -- polygons ------------------------------------------------------------------------------
    def polygon(self, points: Sequence[Sequence[float]], subtract: bool = False) -> int | None:
        """A manual polygon (pixel xy): a new mask of the current class, or with ``subtract`` cut it
        out of the selected mask. Returns the annotation id (None when the cut removed everything).
        Only the polygon's box (or the cut mask's box) is rasterised."""
        self.display.require_image()
        st = self.state
        height, width = st.frame.height, st.frame.width
        pts = [(float(x), float(y)) for x, y in points]
        target: tuple[str, int] | None
        if not subtract:
            box = points_window(pts, height, width)
            poly = rasterize_polygon(pts, height, width, window=box)
            if not poly.any():
                raise InputError("the polygon does not cover any pixel of the image")
            target, mask = None, crop_to_scene_rle(poly, box[0], box[1], height, width)
        else:
            item = self.display.require_selection()
            crop, cx, cy = scene_rle_crop(item.rle)
            cut = rasterize_polygon(pts, height, width, window=(cx, cy, cx + crop.shape[1], cy + crop.shape[0]))
            if not cut.any():
                raise InputError("the polygon does not overlap the selected mask; nothing to cut")
            kept = crop & ~cut
            target = (item.kind, item.id)
            if not kept.any():
                if item.kind == "annotation":
                    self.project.delete_annotation(item.id)
                    st.select(None)
                    self._after_edit(f"the cut removed all of annotation {item.id}: deleted")
                    return None
                raise InputError("the cut would leave nothing of the candidate; reject it instead")
            mask = crop_to_scene_rle(kept, cx, cy, height, width)
        ann = self._write_mask(target, mask, source="manual")
        st.select(("annotation", ann))
        self._after_edit(f"polygon {'cut from' if subtract else 'added as'} annotation {ann}")
        return ann


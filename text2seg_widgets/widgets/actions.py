"""The Annotator's actions: review, SAM-assisted correction, navigation, history, keys.

Each public method does one user action, writes it to the project store straight away, and
redraws from the store. Bad input raises :class:`~text2seg_widgets.errors.InputError` with a
message for the user (the UI shows it; nothing saved is lost).
"""

from __future__ import annotations

import html
import logging
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from text2seg_widgets.errors import InputError
from text2seg_widgets.widgets import storeview as sv
from text2seg_widgets.widgets.geometry import rasterize_polygon
from text2seg_widgets.widgets.layers import MaskItem, legend_html
from text2seg_widgets.widgets.prompting import PromptMixin
from text2seg_widgets.widgets.refine import RefineSession
from text2seg_widgets.widgets.shortcuts import KEYMAP, normalize_key

if TYPE_CHECKING:  # pragma: no cover
    from text2seg_widgets.widgets.annotator import Annotator

__all__ = ["ActionsMixin", "POINTS_NEED_SAM"]

log = logging.getLogger(__name__)

POINTS_NEED_SAM = ("clicks need a SAM checkpoint (this segmenter, {name}, takes boxes only): fetch one with "
                   "`text2seg-widgets weights fetch sam-vit-b` and load it; the box tool still works")
NO_SEGMENTER = ("SAM tools need a segmenter: pass models=load_models('offline') (LiteMedSAM: boxes) or a "
                "SAM checkpoint (clicks and boxes); the polygon tool works without one")


class ActionsMixin(PromptMixin):
    """Mixed into :class:`Annotator`; see there for the attributes used."""

    # -- selection -------------------------------------------------------------------------
    def select(self: "Annotator", target: Any) -> MaskItem:
        """Select a mask: a ("candidate"|"annotation", id) pair, a MaskItem, or a store record."""
        kind, ident = _target_key(target)
        item = self.layers.items.get(f"{kind}:{ident}")
        if item is None:
            raise InputError(f"{kind} {ident} is not on the current image (image {self.image_id})")
        self.selection = (kind, ident)
        self.session = None
        self._show_selection()
        return item

    def _show_selection(self: "Annotator") -> None:
        self.layers.highlight(self._selected_item())
        self._syncing = True
        try:
            self.panel.items.value = self.selection
        finally:
            self._syncing = False

    def clear_selection(self: "Annotator") -> None:
        """Nothing selected: the next click or box starts a new mask."""
        self.selection = None
        self.session = None
        self._show_selection()
        self._say("selection cleared: the next click or box makes a new mask")

    def _step(self: "Annotator", delta: int) -> MaskItem | None:
        keys = [(it.kind, it.id) for it in self.layers.items.values() if it.status == "proposed"]
        if not keys:
            keys = [(it.kind, it.id) for it in self.layers.items.values()]
        if not keys:
            self._say("no masks on this image")
            return None
        pos = keys.index(self.selection) + delta if self.selection in keys else (0 if delta > 0 else -1)
        return self.select(keys[pos % len(keys)])

    def select_next(self: "Annotator") -> MaskItem | None:
        return self._step(1)

    def select_previous(self: "Annotator") -> MaskItem | None:
        return self._step(-1)

    def _require_selection(self: "Annotator") -> MaskItem:
        item = self._selected_item()
        if item is None:
            raise InputError("select a mask first: click it on the map or in the list")
        return item

    # -- review ----------------------------------------------------------------------------
    def accept_selected(self: "Annotator") -> int:
        """Accept the selected candidate; returns the annotation id (the same one when repeated)."""
        item = self._require_selection()
        if item.kind == "annotation":
            self._say(f"annotation {item.id} is already accepted")
            return item.id
        ann = self.project.accept(item.id)
        self.selection = ("annotation", ann)
        self._after_edit(f"accepted {html.escape(item.class_name)} (annotation {ann})")
        return ann

    def reject_selected(self: "Annotator") -> None:
        item = self._require_selection()
        if item.kind == "annotation":
            raise InputError(f"annotation {item.id} is already accepted; use Delete to remove it")
        if item.status == "rejected":
            self._say(f"candidate {item.id} is already rejected")
            return
        self.project.reject(item.id)
        self._after_edit(f"rejected candidate {item.id}")

    def relabel_selected(self: "Annotator", class_name: str) -> int:
        """Give the selected mask ``class_name`` (a proposed candidate is accepted as that class)."""
        self._check_class(class_name)
        item = self._require_selection()
        if item.kind == "annotation":
            self.project.relabel(item.id, class_name)
            ann = item.id
        else:
            ann = self.project.accept(item.id, class_name=class_name)
            self.selection = ("annotation", ann)
        self._after_edit(f"relabelled as {html.escape(class_name)} (annotation {ann})")
        return ann

    def delete_selected(self: "Annotator") -> None:
        item = self._require_selection()
        if item.kind != "annotation":
            raise InputError("only annotations can be deleted; reject a candidate instead")
        self.project.delete_annotation(item.id)
        self.selection = None
        self._after_edit(f"deleted annotation {item.id}")

    def accept_above(self: "Annotator", min_score: float) -> list[int]:
        self._require_image()
        ids = self.project.accept_above(self.image_id, float(min_score))
        self._after_edit(f"accepted {len(ids)} candidate(s) with score >= {float(min_score):.2f}")
        return ids

    def _after_edit(self: "Annotator", message: str) -> None:
        self.session = None if self.session is None or self.selection != self.session.target else self.session
        self.refresh()
        self._say(message)

    def _check_class(self: "Annotator", class_name: str) -> None:
        names = [n for n, _ in sv.class_list(self.project)]
        if class_name not in names:
            raise InputError(f"unknown class {class_name!r}; choose one of {', '.join(names) or '(none)'}")

    def _require_image(self: "Annotator") -> None:
        if self.image_id is None:
            raise InputError("no image is open: add images with project.add_image(path), then refresh()")

    # -- SAM-assisted correction ------------------------------------------------------------------
    def click(self: "Annotator", x: float, y: float, positive: bool = True) -> int:
        """A positive/negative point on the selected mask (or a new one); returns the annotation id."""
        self._check_inside(x, y)
        session = self._session()
        session.add_point(x, y, positive)
        try:
            return self._refine(session, "click")
        except InputError:
            session.points.pop()
            session.labels.pop()
            raise

    def box(self: "Annotator", x0: float, y0: float, x1: float, y1: float) -> int:
        """A box prompt: refines the selected mask, or creates a new mask of the current class."""
        self._require_image()
        x0, x1 = sorted((float(x0), float(x1)))
        y0, y1 = sorted((float(y0), float(y1)))
        w, h = self.frame.width, self.frame.height
        if x1 <= 0 or y1 <= 0 or x0 >= w or y0 >= h or x1 - x0 < 1 or y1 - y0 < 1:
            raise InputError(f"the box ({x0:.0f}, {y0:.0f}, {x1:.0f}, {y1:.0f}) does not cover any of the "
                             f"{w} x {h} image")
        session = self._session()
        session.set_box(np.array([max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)]))
        return self._refine(session, "box")

    def _check_inside(self: "Annotator", x: float, y: float) -> None:
        self._require_image()
        w, h = self.frame.width, self.frame.height
        if not (np.isfinite(x) and np.isfinite(y)) or not (0 <= x < w and 0 <= y < h):
            raise InputError(f"the click at ({x:.0f}, {y:.0f}) is outside the {w} x {h} image; click on the image")

    def _session(self: "Annotator") -> RefineSession:
        item = self._selected_item()
        target = (item.kind, item.id) if item is not None else None
        if self.session is None or self.session.target != target:
            self.session = RefineSession.for_mask(target, None if item is None else _mask_of(item))
        return self.session

    def _refine(self: "Annotator", session: RefineSession, tool: str) -> int:
        if self.image is None:
            raise InputError("the image pixels are not available (file missing?); SAM tools need them")
        if self.keeper is None:
            raise InputError(NO_SEGMENTER)
        if self.runner.busy:
            raise InputError("a text-prompt run is in progress; the SAM tools are back when it finishes")
        self.keeper.ensure(self.image_id, self.image.rgb)
        self._prefetch_next()
        try:
            result = session.predict(self.keeper.segmenter)
        except InputError as exc:
            if session.points and "point" in str(exc).lower():
                raise InputError(POINTS_NEED_SAM.format(name=getattr(self.keeper.segmenter, "name", "?"))) from exc
            raise
        self.last_refine_seconds = result.seconds
        if not result.mask.any():
            raise InputError(f"SAM returned an empty mask for this {tool}; try another point or a box")
        ann = self._write_mask(session.target, result.mask, source="sam")
        session.target = ("annotation", ann)
        self.selection = ("annotation", ann)
        self._after_edit(f"{tool}: mask updated in {1000 * result.seconds:.0f} ms (annotation {ann})")
        return ann

    def _write_mask(self: "Annotator", target: tuple[str, int] | None, mask: np.ndarray, source: str) -> int:
        if target is None:
            if self.current_class is None:
                raise InputError("the project has no classes: add one with project.add_class(name)")
            return self.project.add_annotation(self.image_id, mask, self.current_class, source=source)
        kind, ident = target
        if kind == "candidate":
            ident = self.project.accept(ident)
        self.project.update_annotation_mask(ident, mask)
        return ident

    def polygon(self: "Annotator", points: Sequence[Sequence[float]], subtract: bool = False) -> int | None:
        """A manual polygon (pixel xy): a new mask of the current class, or with ``subtract`` cut it
        out of the selected mask. Returns the annotation id (None when the cut removed everything)."""
        self._require_image()
        poly = rasterize_polygon(points, self.frame.height, self.frame.width)
        if not poly.any():
            raise InputError("the polygon does not cover any pixel of the image")
        if not subtract:
            target = None
            mask = poly
        else:
            item = self._require_selection()
            mask = _mask_of(item) & ~poly
            target = (item.kind, item.id)
            if not mask.any():
                if item.kind == "annotation":
                    self.project.delete_annotation(item.id)
                    self.selection = None
                    self._after_edit(f"the cut removed all of annotation {item.id}: deleted")
                    return None
                raise InputError("the cut would leave nothing of the candidate; reject it instead")
        ann = self._write_mask(target, mask, source="manual")
        self.selection = ("annotation", ann)
        self.session = None
        self._after_edit(f"polygon {'cut from' if subtract else 'added as'} annotation {ann}")
        return ann

    # -- navigation and history ---------------------------------------------------------------------
    def next_image(self: "Annotator") -> int | None:
        """Mark this image done and open the next unreviewed one; returns its id (None at the end)."""
        self._require_image()
        current = self.image_id
        self.project.set_state(current, sv.DONE_STATE)
        nxt = sv.next_image_id(self.project, current)
        if nxt is None:
            self.refresh()
            self._say("all images are reviewed; export the project (see the quickstart notebook)")
            return None
        self.show_image(nxt)
        return nxt

    def undo(self: "Annotator") -> str | None:
        return self._history(self.project.undo(), "undone")

    def redo(self: "Annotator") -> str | None:
        return self._history(self.project.redo(), "redone")

    def _history(self: "Annotator", description: Any, verb: str) -> Any:
        self.session = None
        self.refresh()
        self._say(f"{verb}: {html.escape(str(description))}" if description else f"nothing to be {verb}")
        return description

    # -- modes, classes, keys -------------------------------------------------------------------
    def set_mode(self: "Annotator", mode: str) -> None:
        if mode not in ("select", "positive", "negative"):
            raise InputError(f"unknown mode {mode!r}; use select, positive or negative")
        self.mode = mode
        if self.panel.mode.value != mode:
            self.panel.mode.value = mode

    def mode_positive(self: "Annotator") -> None:
        self.set_mode("positive")

    def mode_negative(self: "Annotator") -> None:
        self.set_mode("negative")

    def mode_select(self: "Annotator") -> None:
        self.set_mode("select")

    def set_class(self: "Annotator", class_name: str) -> None:
        """The class given to new masks (and offered for relabelling)."""
        self._check_class(class_name)
        self.current_class = class_name
        if self.panel.class_picker.value != class_name:
            self._syncing = True
            try:
                self.panel.class_picker.value = class_name
            finally:
                self._syncing = False
        self.panel.legend.value = legend_html(sv.class_list(self.project), class_name)

    def handle_key(self: "Annotator", key: str) -> str | None:
        """Run the action bound to ``key`` (see :data:`KEYMAP`); returns the action's name."""
        key = normalize_key(key)
        if len(key) == 1 and key.isdigit() and key != "0":
            names = [n for n, _ in sv.class_list(self.project)]
            index = int(key) - 1
            if index >= len(names):
                raise InputError(f"there is no class {key} (the project has {len(names)})")
            if self._selected_item() is not None:
                self.relabel_selected(names[index])
            self.set_class(names[index])
            return f"class {names[index]}"
        if key not in KEYMAP:
            return None
        name = KEYMAP[key][0]
        getattr(self, name)()
        return name


def _target_key(target: Any) -> tuple[str, int]:
    if isinstance(target, MaskItem):
        return target.kind, int(target.id)
    if isinstance(target, tuple) and len(target) == 2:
        return str(target[0]), int(target[1])
    kind = "candidate" if hasattr(target, "candidate") and hasattr(target, "status") else \
        "annotation" if hasattr(target, "rle") and hasattr(target, "source") else None
    if kind is None:
        raise InputError(f"cannot select {target!r}: give a candidate or annotation record, or (kind, id)")
    return kind, int(target.id)


def _mask_of(item: MaskItem) -> np.ndarray:
    from text2seg_widgets.core import rle_to_mask

    return rle_to_mask(item.rle)

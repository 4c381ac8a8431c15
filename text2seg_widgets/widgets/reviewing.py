"""Review actions: select masks, accept, reject, relabel, delete, accept above a score.

Each method does one user action, writes it to the project store straight away and redraws
through the :class:`~text2seg_widgets.widgets.display.Display`. Bad input raises
:class:`~text2seg_widgets.errors.InputError` with a message for the user.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

from text2seg_widgets.errors import InputError
from text2seg_widgets.widgets.display import Display
from text2seg_widgets.widgets.layers import MaskItem
from text2seg_widgets.widgets.state import AnnotatorState
from text2seg_widgets.widgets.storeview import plural

if TYPE_CHECKING:
    from text2seg_widgets.store import Project

__all__ = ["ReviewActions", "target_key"]


class ReviewActions:
    """Selection and review of the current image's masks.

    Args:
        project: the open project store.
        state: the shared :class:`AnnotatorState`.
        display: redraws and messages.
    """

    def __init__(self, project: "Project", state: AnnotatorState, display: Display) -> None:
        self.project = project
        self.state = state
        self.display = display

    # -- selection -------------------------------------------------------------------------
    def select(self, target: Any) -> MaskItem:
        """Select a mask: a ("candidate"|"annotation", id) pair, a MaskItem, or a store record."""
        kind, ident = target_key(target)
        item = self.display.layers.items.get(f"{kind}:{ident}")
        if item is None:
            raise InputError(f"{kind} {ident} is not on the current image (image {self.state.image_id})")
        self.state.select((kind, ident))
        self.display.show_selection()
        return item

    def clear_selection(self) -> None:
        """Nothing selected: the next click or box starts a new mask."""
        self.state.select(None)
        self.display.show_selection()
        self.display.say("selection cleared: the next click or box makes a new mask")

    def step(self, delta: int) -> MaskItem | None:
        """Select the next (``delta`` 1) or previous (-1) proposed candidate (any mask if none)."""
        items = self.display.layers.items.values()
        keys = [(it.kind, it.id) for it in items if it.status == "proposed"] or \
            [(it.kind, it.id) for it in items]
        if not keys:
            self.display.say("no masks on this image")
            return None
        sel = self.state.selection
        pos = keys.index(sel) + delta if sel in keys else (0 if delta > 0 else -1)
        return self.select(keys[pos % len(keys)])

    # -- review ----------------------------------------------------------------------------
    def accept_selected(self) -> int:
        """Accept the selected candidate; returns the annotation id (the same one when repeated)."""
        item = self.display.require_selection()
        if item.kind == "annotation":
            self.display.say(f"annotation {item.id} is already accepted")
            return item.id
        ann = self.project.accept(item.id)
        self.state.select(("annotation", ann))
        self.after_edit(f"accepted {html.escape(item.class_name)} (annotation {ann})")
        return ann

    def reject_selected(self) -> None:
        item = self.display.require_selection()
        if item.kind == "annotation":
            raise InputError(f"annotation {item.id} is already accepted; use Delete to remove it")
        if item.status == "rejected":
            self.display.say(f"candidate {item.id} is already rejected")
            return
        self.project.reject(item.id)
        self.after_edit(f"rejected candidate {item.id}")

    def relabel_selected(self, class_name: str) -> int:
        """Give the selected mask ``class_name`` (a proposed candidate is accepted as that class)."""
        self.display.check_class(class_name)
        item = self.display.require_selection()
        if item.kind == "annotation":
            self.project.relabel(item.id, class_name)
            ann = item.id
        else:
            ann = self.project.accept(item.id, class_name=class_name)
            self.state.select(("annotation", ann))
        self.after_edit(f"relabelled as {html.escape(class_name)} (annotation {ann})")
        return ann

    def delete_selected(self) -> None:
        item = self.display.require_selection()
        if item.kind != "annotation":
            raise InputError("only annotations can be deleted; reject a candidate instead")
        self.project.delete_annotation(item.id)
        self.state.select(None)
        self.after_edit(f"deleted annotation {item.id}")

    def accept_above(self, min_score: float) -> list[int]:
        ids = self.project.accept_above(self.display.require_image(), float(min_score))
        self.after_edit(f"accepted {plural(len(ids), 'candidate')} with score >= {float(min_score):.2f}")
        return ids

    def after_edit(self, message: str) -> None:
        """Redraw after a store change; keep the SAM session only while its target is selected."""
        st = self.state
        if st.session is not None and st.selection != st.session.target:
            st.session = None
        self.display.refresh()
        self.display.say(message)


def target_key(target: Any) -> tuple[str, int]:
    if isinstance(target, MaskItem):
        return target.kind, int(target.id)
    if isinstance(target, tuple) and len(target) == 2:
        return str(target[0]), int(target[1])
    kind = "candidate" if hasattr(target, "candidate") and hasattr(target, "status") else \
        "annotation" if hasattr(target, "rle") and hasattr(target, "source") else None
    if kind is None:
        raise InputError(f"cannot select {target!r}: give a candidate or annotation record, or (kind, id)")
    return kind, int(target.id)

"""Keyboard shortcuts: one table maps keys to Annotator action names; the help panel reads it.

Keys are written as the browser's ``KeyboardEvent.key`` with optional ``ctrl+``/``shift+``
prefixes (``"a"``, ``"ctrl+z"``, ``"Delete"``). ``1``..``9`` pick the class with that number.
"""

from __future__ import annotations

import html
from typing import Any, Mapping

__all__ = ["KEYMAP", "normalize_key", "event_to_key", "help_html"]

#: key -> (action name on the Annotator, description for the help panel)
KEYMAP: dict[str, tuple[str, str]] = {
    "a": ("accept_selected", "accept the selected mask"),
    "r": ("reject_selected", "reject the selected candidate"),
    "n": ("next_image", "next image: marks this one done when no candidate is left on it"),
    "d": ("finish_reject_rest", "done: reject the candidates left, mark done, open the next"),
    "x": ("skip_image", "skip this image (left out of exports), open the next"),
    ",": ("go_previous", "previous image in the list (no state change)"),
    ".": ("go_next", "next image in the list (no state change)"),
    "q": ("toggle_order", "previous/next follow the image list or the review queue"),
    "j": ("select_next", "select the next candidate"),
    "k": ("select_previous", "select the previous candidate"),
    "ctrl+z": ("undo", "undo (opens the image it changes)"),
    "z": ("undo", "undo"),
    "ctrl+y": ("redo", "redo"),
    "ctrl+shift+z": ("redo", "redo"),
    "y": ("redo", "redo"),
    "s": ("mode_select", "tool: select masks"),
    "b": ("mode_box", "tool: draw a box (SAM)"),
    "o": ("mode_polygon_add", "tool: draw a polygon that adds a mask"),
    "c": ("mode_polygon_cut", "tool: draw a polygon that cuts from the selected mask"),
    "p": ("mode_positive", "tool: positive SAM points"),
    "m": ("mode_negative", "tool: negative SAM points"),
    "e": ("toggle_refine", "refine on/off: boxes change the selected mask (off: every box makes a new mask)"),
    "h": ("toggle_masks", "hide/show all masks"),
    "Escape": ("clear_selection", "clear the selection (next click or box makes a new mask)"),
    "Delete": ("delete_selected", "delete the selected annotation"),
    "Backspace": ("delete_selected", "delete the selected annotation"),
}


def normalize_key(key: str) -> str:
    """``"Ctrl+Z"`` -> ``"ctrl+z"``; single letters lower-cased, named keys kept as they are."""
    parts = key.split("+") if len(key) > 1 else [key]
    *mods, base = parts
    mods = sorted(m.lower() for m in mods if m)
    base = base.lower() if len(base) == 1 else base
    return "+".join([*mods, base])


def event_to_key(event: Mapping[str, Any]) -> str | None:
    """An ipyevents keydown dict -> a normalised key string, or None for a bare modifier."""
    key = str(event.get("key", ""))
    if not key or key in ("Control", "Shift", "Alt", "Meta"):
        return None
    mods = []
    if event.get("ctrlKey") or event.get("metaKey"):
        mods.append("ctrl")
    if event.get("shiftKey") and mods:  # shift alone only changes the letter's case
        mods.append("shift")
    return normalize_key("+".join([*mods, key]))


def help_html() -> str:
    rows = "".join(f"<tr><td><kbd>{html.escape(k)}</kbd></td><td>{html.escape(desc)}</td></tr>"
                   for k, (_, desc) in KEYMAP.items())
    rows += "<tr><td><kbd>1</kbd>..<kbd>9</kbd></td><td>choose class (relabels the selected mask)</td></tr>"
    return ("<div style='font-size:12px'><b>Keyboard</b> (pointer over the map, buttons or lists; the text boxes keep their keys)"
            f"<table>{rows}</table>"
            "<b>Mouse</b>: the tool decides. <i>select</i>: click a mask; click the empty map to deselect. "
            "<i>box</i>: draw with the toolbar on the map; SAM makes a new mask, every time. <i>polygon "
            "adds / cuts</i>: draw a polygon that becomes a mask / is cut from the selected one. "
            "<i>+ point / - point</i>: clicks refine the selected mask (or start a new one). With <i>refine "
            "selected</i> on (e), a box changes the selected mask instead of making a new one.</div>")

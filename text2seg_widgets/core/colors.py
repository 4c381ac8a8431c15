"""Class colours by convention: the ONE table that says water is blue, trees green, fields
yellow-green, buildings red, roads orange, in saturated shades that stay visible on aerial imagery
(the grey of map legends vanishes on pavement, and two dark greens on vegetation read as one).

:func:`class_color` gives a class its conventional colour from the words of its name (``"lake"``,
``"low vegetation"``, ``"Buildings"``); when that colour is already taken by another class it
takes the next shade of the same hue; a name the table does not know gets the next free colour of
a distinct fallback palette. A colour the project (or user) sets explicitly always wins: callers
only ask this module when no colour was given. Used by the store when a class is created without
a colour, and by :class:`text2seg_widgets.pipeline.ClassSet` for its display colours.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["CONVENTIONAL_COLORS", "FALLBACK_PALETTE", "class_color", "conventional_color"]

#: (words, shades): a class whose name contains one of ``words`` gets the first free shade.
CONVENTIONAL_COLORS: tuple[tuple[frozenset[str], tuple[str, ...]], ...] = (
    (frozenset({"water", "lake", "river", "sea", "ocean", "pond", "reservoir", "canal", "stream",
                "wetland"}), ("#00b4ff", "#80dcff", "#0050c8")),
    (frozenset({"vegetation", "tree", "forest", "park", "shrub", "woodland", "orchard"}),
     ("#00e05a", "#7dffb0", "#007a30")),
    (frozenset({"grass", "field", "crop", "farmland", "agriculture", "agricultural", "meadow"}),
     ("#d4ff00", "#f0ff80", "#9cb800")),
    (frozenset({"building", "roof", "house", "urban", "residential"}),
     ("#ff1744", "#ff8a80", "#b00020")),
    (frozenset({"road", "street", "highway", "parking", "pavement", "impervious", "railway"}),
     ("#ff9100", "#ffc46b", "#b35c00")),
    (frozenset({"bare", "soil", "sand", "barren", "desert", "rock"}),
     ("#e040fb", "#f48fff", "#8e24aa")),
    (frozenset({"car", "vehicle", "truck", "boat", "ship"}), ("#ffea00", "#fff59d", "#c7b800")),
    (frozenset({"snow", "ice", "glacier", "cloud"}), ("#7c4dff", "#b39dff", "#4a148c")),
    (frozenset({"background", "clutter"}), ("#000000", "#303030", "#202020")),
)

#: Distinct colours for names the table does not know (no pure blue/green/red/grey first, so
#: they do not read as water, vegetation, buildings or roads).
FALLBACK_PALETTE = ("#f58231", "#911eb4", "#46f0f0", "#f032e6", "#bcf60c", "#fabebe",
                    "#008080", "#e6beff", "#9a6324", "#800000", "#aaffc3", "#808000",
                    "#ffd8b1", "#000075", "#ffe119", "#4363d8", "#3cb44b", "#e6194b")

_WORD = re.compile(r"[a-z]+")


def _words(name: str) -> set[str]:
    words = set(_WORD.findall(name.lower()))
    return words | {w[:-1] for w in words if w.endswith("s") and len(w) > 3} | \
        {w[:-2] for w in words if w.endswith("es") and len(w) > 4}


def conventional_color(name: str) -> tuple[str, ...] | None:
    """The shades the convention gives ``name`` (first = the usual one), or ``None``."""
    words = _words(name)
    for keys, shades in CONVENTIONAL_COLORS:
        if words & keys:
            return shades
    return None


def class_color(name: str, taken: Iterable[str] = ()) -> str:
    """``#rrggbb`` for a class named ``name`` that was given no colour, avoiding ``taken``
    (the colours other classes already have) while a free shade or palette colour is left."""
    used = {c.lower() for c in taken}
    shades = conventional_color(name)
    for color in shades or ():
        if color not in used:
            return color
    for color in FALLBACK_PALETTE:
        if color not in used:
            return color
    return (shades or FALLBACK_PALETTE)[0]

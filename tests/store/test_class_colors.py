"""Class colours follow convention by name unless the project sets one (one table:
text2seg_widgets.core.colors), in the store and in class sets."""

from __future__ import annotations

from pathlib import Path

import pytest

from text2seg_widgets.core.colors import class_color
from text2seg_widgets.pipeline.classes import ClassSet
from text2seg_widgets.store import Project

BLUE, GREEN, RED, ORANGE = "#00b4ff", "#00e05a", "#ff1744", "#ff9100"
FIELD = "#d4ff00"


@pytest.mark.parametrize("name, color", [
    ("water", BLUE), ("Lake", BLUE), ("rivers", BLUE), ("vegetation", GREEN),
    ("low vegetation", GREEN), ("Trees", GREEN), ("grass", FIELD), ("forest", GREEN),
    ("field", FIELD), ("agriculture", FIELD), ("building", RED), ("roofs", RED), ("houses", RED),
    ("road", ORANGE), ("street", ORANGE), ("bare soil", "#e040fb"), ("car", "#ffea00"), ("background", "#000000"),
    ("solar panel", "#f58231")])
def test_conventional_colour_by_name(name: str, color: str) -> None:
    assert class_color(name) == color


def test_store_uses_the_convention_unless_a_colour_is_set(tmp_path: Path, project_at) -> None:
    p = Project.create(project_at, classes=["water", "building", "tree", "grass",
                                                {"name": "road", "color": "#123456"}, "mystery"])
    assert [(c.name, c.color) for c in p.classes] == [
        ("water", BLUE), ("building", RED), ("tree", GREEN), ("grass", FIELD),
        ("road", "#123456"), ("mystery", "#f58231")]
    assert p.add_class("lake").color == "#80dcff"  # water's colour is taken: next blue shade
    assert p.add_class("street").color == ORANGE
    assert p.add_class("roof", color="#00ff00").color == "#00ff00"
    p.close()


def test_class_sets_use_the_same_table() -> None:
    colors = ClassSet.parse("water,trees,building,road,foo").colors
    assert colors == [(0x00, 0xb4, 0xff), (0x00, 0xe0, 0x5a), (0xff, 0x17, 0x44),
                      (0xff, 0x91, 0x00), (0xf5, 0x82, 0x31)]

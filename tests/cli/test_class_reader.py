"""The command line reads --classes with the one class reader (ClassSet.from_arg)."""

from __future__ import annotations

import pytest

from text2seg_widgets.errors import InputError


def test_segment_and_pseudo_label_use_the_same_reader(tmp_path):
    from text2seg_widgets.cli.segment import parse_classes

    cs = parse_classes("urban: building, houses; water: lake", background=True)
    assert cs.to_dict() == {"urban": ["building", "houses"], "water": ["lake"],
                            "background": ["background", "bare ground", "grass"]}
    with pytest.raises(InputError, match="more than one ':'"):
        parse_classes("a: b: c", background=False)

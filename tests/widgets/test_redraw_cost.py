"""What a redraw costs: masks read without decoding candidate records, MaskItems kept when their
row did not change, the candidate list re-sent only when it changed, the selection layer kept in
its own pane (never removed and re-added)."""

from __future__ import annotations

from typing import Any

import pytest

from text2seg_widgets.store import Project
from text2seg_widgets.widgets.layers import SELECTED_PANE, MaskItem


def reference_items(project: Project, image_id: int) -> list[MaskItem]:
    """The drawable masks built from the full records (the slow path the light query replaces)."""
    cands = project.candidates(image_id)
    proposed = sorted((c for c in cands if c.status == "proposed"), key=lambda c: (-c.candidate.score, c.id))
    items = [MaskItem("candidate", c.id, c.class_name, "proposed", c.candidate.rle, c.candidate.score,
                      c.candidate.branch) for c in proposed]
    items += [MaskItem("annotation", a.id, a.class_name, "accepted", a.rle, a.score, a.source)
              for a in project.annotations(image_id)]
    items += [MaskItem("candidate", c.id, c.class_name, "rejected", c.candidate.rle, c.candidate.score,
                       c.candidate.branch) for c in cands if c.status == "rejected"]
    return items


def test_mask_rows_are_the_drawable_masks_of_an_image(project: Project) -> None:
    image_id = project.images()[0].id
    cands = sorted(project.candidates(image_id), key=lambda c: -c.candidate.score)
    ann = project.accept(cands[0].id)
    project.reject(cands[1].id)
    rows = project.mask_rows(image_id)
    assert [(r.kind, r.id, r.class_name, r.status) for r in rows] == [
        ("candidate", cands[1].id, "road", "rejected"), ("candidate", cands[2].id, "building", "proposed"),
        ("candidate", cands[3].id, "road", "proposed"), ("annotation", ann, "building", "accepted")]
    by_id = {r.id: r for r in rows if r.kind == "candidate"}
    for c in cands[1:]:
        r = by_id[c.id]
        assert {"size": [r.height, r.width], "counts": r.counts} == c.candidate.rle
        assert (r.score, r.branch) == (c.candidate.score, c.candidate.branch)
    assert project.mask_rows(project.images()[1].id) == []


class Counting:
    """Counts calls of one Project method (the class attribute is restored by monkeypatch)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
        self.calls = 0
        original = getattr(Project, name)

        def counted(this: Any, *args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            return original(this, *args, **kwargs)
        monkeypatch.setattr(Project, name, counted)


def test_a_redraw_decodes_no_candidate_record_and_keeps_unchanged_items(
        project: Project, open_app, monkeypatch: pytest.MonkeyPatch) -> None:
    app = open_app(project)
    before = {it.key: it for it in app.items()}
    assert app.items() == reference_items(project, app.image_id)
    decoded = Counting(monkeypatch, "candidates")
    app.select_next()
    accepted = app.selection
    ann = app.accept_selected()
    app.select_next()
    app.reject_selected()
    app.undo()
    app.redo()
    assert decoded.calls == 0  # refreshes read the light rows only
    items = app.items()
    assert items == reference_items(project, app.image_id)
    kept = [it for it in items if it.key in before and before[it.key] == it]
    assert len(kept) == 2 and all(before[it.key] is it for it in kept)  # the same objects, not rebuilt
    assert f"annotation:{ann}" in {it.key for it in items} and accepted == ("candidate", before_top(before))


def before_top(items: dict[str, MaskItem]) -> int:
    """The id of the best-scoring proposed candidate (the first select_next picks it)."""
    return max((it for it in items.values() if it.status == "proposed"), key=lambda it: it.score).id


def test_the_candidate_list_is_sent_only_when_it_changes(project: Project, open_app) -> None:
    app = open_app(project)
    sent: list[Any] = []
    app.panel.items.observe(lambda ch: sent.append(ch["new"]), names="options")
    app.refresh()
    app.select_next()
    app.set_class("road")
    app.display.say("hello")
    app.refresh()
    assert sent == []  # nothing changed in the list: no labels re-sent
    app.accept_selected()
    assert len(sent) == 1 and any("\u2713" in label for label, _ in sent[0])


def test_the_selection_layer_stays_on_the_map_in_its_own_pane(project: Project, open_app) -> None:
    app = open_app(project)
    m = app.map
    selected = app.layers.selected
    assert selected.pane == SELECTED_PANE and m.panes[SELECTED_PANE]["pointerEvents"] == "none"
    assert int(m.panes[SELECTED_PANE]["zIndex"]) > 400  # above Leaflet's overlay pane (the masks)
    changes: list[Any] = []
    m.observe(lambda ch: changes.append(ch), names="layers")
    for _ in range(4):  # accepting creates new accepted-layer blocks: they must not move the selection
        app.select_next()
        app.accept_selected()
        assert app.layers.selected.data["features"]
    assert all(selected in ch["old"] and selected in ch["new"] for ch in changes)
    assert len(changes) >= 1  # (new class layers were added meanwhile)
    data = selected.data
    app.select(app.selection)  # selecting the same mask again sends nothing
    assert selected.data is data

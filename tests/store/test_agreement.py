"""Consensus images and honeypots on both databases: independent replicas, pinned agreement
numbers (instance F1 at IoU >= 0.5, pixel IoU), resolving by merge or pick, honeypot accuracy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from text2seg_widgets import InputError
from text2seg_widgets.cli import main
from text2seg_widgets.export import export_coco
from text2seg_widgets.store import Project
from tests.store.helpers import rect, write_png

H, W = 64, 80


def _team(location, tmp_path: Path, images: int = 10) -> Project:
    p = Project.create(location, classes=["building", "road"], user="boss")
    for i in range(images):
        p.add_image(write_png(tmp_path / f"img{i}.png", H, W, seed=i))
    p.set_member("boss", "manager")
    for name in ("anna", "ben"):
        p.set_member(name, "annotator")
    p.set_member("rita", "reviewer")
    return p


def _label(p: Project, image_id: int, user: str, masks: list[tuple[str, tuple[int, int, int, int]]]) -> None:
    for cls, (y0, x0, y1, x1) in masks:
        p.add_annotation(image_id, rect(H, W, y0, x0, y1, x1), cls, user=user)
    p.finish_image(image_id, rest="reject", user=user)


ANNA = [("building", (0, 0, 20, 20)), ("building", (30, 30, 40, 40))]
BEN = [("building", (0, 0, 20, 18)), ("road", (50, 0, 60, 80))]


def test_consensus_replicas_agreement_and_resolving(project_at, tmp_path: Path) -> None:
    p = _team(project_at, tmp_path)
    with pytest.raises(InputError, match="at least two annotators"):
        p.assign(["anna"], overlap=0.2, user="boss")
    spread = p.assign(["anna", "ben"], overlap=0.2, user="boss")
    replicas = p.catalog.replicas()
    assert [(r.replica_of, r.replica) for r in replicas] == [(3, "anna"), (3, "ben"), (8, "ben"),
                                                             (8, "anna")]
    assert spread["anna"][:2] == [replicas[0].id, replicas[3].id]
    assert sorted(len(v) for v in spread.values()) == [6, 6]  # 2 consensus + 4 work each
    assert [r.id for r in p.images()] == list(range(1, 11))  # replicas are not project images
    # each annotator sees their own replicas only
    p.user = "anna"
    anna_list = [s.id for s in p.image_summaries()]
    assert replicas[0].id in anna_list and replicas[1].id not in anna_list
    first, second = (r for r in replicas if r.replica == "anna")
    ben_first, ben_second = (r for r in replicas if r.replica == "ben")
    _label(p, first.id, "anna", ANNA)
    assert p.agreement_measures.to_resolve() == {}
    with pytest.raises(InputError, match="not finished by every annotator"):
        p.resolve_consensus(3, user="rita")
    assert p.annotations(ben_first.id) == []  # anna's masks are on her replica only
    _label(p, ben_first.id, "ben", BEN)
    assert p.image(first.id).review == ""  # replicas are compared, not reviewed
    assert p.agreement_measures.to_resolve() == {3: ["anna", "ben"]}
    agreement = p.stats()["consensus"]
    assert agreement["images"] == 1
    assert agreement["by_class"]["building"] == {"f1": 0.6667, "pixel_iou": 0.72, "matched": 1,
                                                 "instances": [2, 1], "images": 1}
    assert agreement["by_class"]["road"] == {"f1": 0.0, "pixel_iou": 0.0, "matched": 0,
                                             "instances": [0, 1], "images": 1}
    assert agreement["by_pair"]["anna|ben"]["f1"] == 0.5
    assert agreement["by_pair"]["anna|ben"]["pixel_iou"] == round(360 / 1300, 4)
    # merge: every instance of anna, plus ben's unmatched road (his building matched anna's)
    with pytest.raises(Exception, match="only managers or reviewers"):
        p.resolve_consensus(3, user="anna")
    assert p.resolve_consensus(3, user="rita") == 3
    merged = p.image(3)
    assert (merged.state, merged.review, merged.review_note) == (
        "done", "approved", "consensus: merged anna, ben")
    assert sorted((a.class_name, a.area) for a in p.annotations(3)) == [
        ("building", 100), ("building", 400), ("road", 800)]
    assert p.stats()["images"]["by_state"]["done"] == 1  # replicas are not counted
    # pick: the second consensus image takes ben's masks only
    _label(p, second.id, "anna", ANNA)
    _label(p, ben_second.id, "ben", BEN)
    with pytest.raises(InputError, match="zoe did not label image 8"):
        p.resolve_consensus(8, pick="zoe", user="rita")
    assert p.resolve_consensus(8, pick="ben", user="rita") == 2
    assert sorted(a.class_name for a in p.annotations(8)) == ["building", "road"]
    p.user = "rita"
    assert str(p.undo()).startswith("resolve consensus on image 8")
    assert p.annotations(8) == [] and p.image(8).state == "unreviewed"
    p.redo()
    # exports hold the resolved images, never the replicas
    manifest = export_coco(p, tmp_path / "coco", images="none")
    coco = json.loads((tmp_path / "coco" / "annotations.json").read_text())
    assert sorted(i["text2seg_image_id"] for i in coco["images"]) == [3, 8]
    assert len(coco["annotations"]) == 5
    assert len(manifest["left_out"]) == 8
    assert p.integrity_check() == "ok"
    p.close()
    result = CliRunner().invoke(main, ["project", "stats", str(project_at)])
    assert result.exit_code == 0, result.output
    assert "agreement between annotators on 2 consensus image(s)" in result.output
    assert "building: F1 0.67, pixel IoU 0.72 (2 image(s))" in result.output


def test_go_to_by_name_finds_my_replica_and_nobody_elses(project_at, tmp_path: Path) -> None:
    p = _team(project_at, tmp_path)
    p.assign(["anna", "ben"], overlap=0.2, user="boss")
    anna3, ben3 = (next(r.id for r in p.catalog.replicas(3) if r.replica == who) for who in ("anna", "ben"))
    p.user = "anna"
    assert p.find_image("img2.png").id == anna3  # the copy she labels, not the project's image
    assert p.find_image("img2").id == anna3
    assert p.find_image(3).id == 3 and p.find_image(anna3).id == anna3  # an id is that image
    assert p.find_image("img4.png").id == 5  # no replica: the project's image
    with pytest.raises(InputError, match=f"no image with id {ben3}"):
        p.find_image(ben3)  # ben's replica is not in her list
    p.user = "ben"
    assert p.find_image("img2.png").id == ben3
    p.user = "boss"  # nobody's replica: the project's image
    assert p.find_image("img2.png").id == 3
    p.close()


def test_honeypots_measure_each_annotator_against_the_truth(project_at, tmp_path: Path) -> None:
    p = _team(project_at, tmp_path, images=4)
    truth = [("building", (0, 0, 20, 20)), ("road", (50, 0, 60, 80))]
    for image_id in (1, 2):  # imported ground truth, finished
        p.add_annotations([{"image_id": image_id, "mask": rect(H, W, *box), "class_name": cls}
                           for cls, box in truth], user="boss")
        p.set_state(image_id, "done", user="boss")
    with pytest.raises(InputError, match="only 2 finished image"):
        p.assign(["anna", "ben"], honeypots=3, user="boss")
    spread = p.assign(["anna", "ben"], honeypots=1, user="boss")
    pots = {r.replica: r for r in p.catalog.replicas()}
    assert {n: pots[n].replica_of for n in pots} == {"anna": 1, "ben": 2}
    assert spread == {"anna": [pots["anna"].id, 3], "ben": [pots["ben"].id, 4]}
    assert p.annotations(pots["anna"].id) == []  # the truth does not come along
    p.user = "anna"
    assert p.next_assigned().id == 3
    _label(p, pots["anna"].id, "anna", truth)  # exactly right
    _label(p, pots["ben"].id, "ben", [("building", (0, 0, 20, 8))])  # IoU 0.4: a miss
    pots_stats = p.stats()["honeypots"]["by_annotator"]
    assert (pots_stats["anna"]["f1"], pots_stats["anna"]["pixel_iou"]) == (1.0, 1.0)
    assert pots_stats["ben"]["f1"] == 0.0
    assert pots_stats["ben"]["by_class"]["building"]["pixel_iou"] == 0.4
    assert pots_stats["ben"]["pixel_iou"] == round(160 / 1200, 4)
    p.close()

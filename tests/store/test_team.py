"""Team rules on both databases: roles checked by the store, assignment and leases, Next that
never gives one image to two people, the review stage, per-person undo, approved-only export."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from text2seg_widgets import InputError
from text2seg_widgets.cli import main
from text2seg_widgets.export import export_coco
from text2seg_widgets.store import ConflictError, Project
from text2seg_widgets.store.backup import restore_backup
from text2seg_widgets.store.people import NotAllowedError
from tests.store.helpers import rect, write_png


def _team(location, tmp_path: Path, images: int = 7) -> Project:
    p = Project.create(location, classes=["building", "road"], user="boss")
    for i in range(images):
        p.add_image(write_png(tmp_path / f"img{i}.png", seed=i))
    p.set_member("boss", "manager")
    for name in ("anna", "ben", "carl"):
        p.set_member(name, "annotator")
    p.set_member("rita", "reviewer")
    return p


def test_roles_are_checked_by_the_store(project_at, tmp_path: Path) -> None:
    p = Project.create(project_at, classes=["building"], user="solo")
    image = p.add_image(write_png(tmp_path / "a.png"))
    p.remove_class("building", user="anyone")  # no members: everyone may do everything
    p.add_class("building")
    with pytest.raises(InputError, match="first member of a project must be a manager"):
        p.set_member("anna", "annotator")
    p.set_member("boss", "manager")
    p.set_member("anna", "annotator", user="boss")
    with pytest.raises(NotAllowedError, match="only managers may add members"):
        p.set_member("anna", "manager", user="anna")
    with pytest.raises(NotAllowedError, match="anna is an annotator: only managers may add, "
                                              "change or remove classes"):
        p.remove_class("building", user="anna")
    with pytest.raises(NotAllowedError, match="not a member of this project"):
        p.add_annotation(image.id, rect(64, 80, 0, 0, 9, 9), "building", user="mallory")
    assert [c.name for c in p.classes] == ["building"] and p.annotations() == []
    ann = p.add_annotation(image.id, rect(64, 80, 0, 0, 9, 9), "building", user="anna")
    assert p.annotation(ann).user == "anna"
    assert p.history(1)[0]["user"] == "anna"
    with pytest.raises(InputError, match="only manager"):
        p.remove_member("boss", user="boss")
    p.close()


def test_assignment_is_balanced_and_next_never_shares_an_image(project_at, tmp_path: Path) -> None:
    p = _team(project_at, tmp_path, images=7)
    with pytest.raises(NotAllowedError):
        p.assign(["anna", "ben"], user="anna")
    with pytest.raises(InputError, match="zoe are not members"):
        p.assign(["anna", "zoe"], user="boss")
    spread = p.assign(["anna", "ben"], image_ids=[1, 2, 3, 4, 5], user="boss")
    assert spread == {"anna": [1, 3, 5], "ben": [2, 4]}
    assert p.assign(["anna", "ben"], image_ids=[1, 2], user="boss") == {"anna": [], "ben": []}
    first = p.next_assigned("anna")
    assert first is not None and first.id == 1
    assert p.next_assigned("anna").id == 1  # the image she holds, until she moves on
    assert p.next_assigned("anna", after=1).id == 3
    # carl has no assignment: he takes the unassigned pool (6, 7), one at a time, with a lease
    assert p.next_assigned("carl").id == 6
    assert p.next_assigned("rita").id == 7  # reviewers may annotate too
    assert p.next_assigned("boss") is None
    # a write on an image someone else holds is refused, and changes nothing
    with pytest.raises(ConflictError, match="being labelled by carl"):
        p.add_annotation(6, rect(64, 80, 0, 0, 9, 9), "road", user="anna")
    assert p.annotations(6) == []
    held = {(image_id, user) for image_id, user, _ in p.assignments.leases()}
    assert held == {(3, "anna"), (6, "carl"), (7, "rita")}
    assert p.integrity_check() == "ok"
    p.close()


def test_an_expired_lease_goes_back_to_the_pool(project_at, tmp_path: Path) -> None:
    p = _team(project_at, tmp_path, images=1)
    p.people.lease_ttl_s = 0.3
    assert p.next_assigned("anna").id == 1
    assert p.next_assigned("ben") is None  # held by anna
    time.sleep(0.5)  # anna closed her laptop
    assert p.next_assigned("ben").id == 1
    with pytest.raises(ConflictError, match="being labelled by ben"):
        p.add_annotation(1, rect(64, 80, 0, 0, 9, 9), "road", user="anna")
    p.close()


def test_people_asking_at_once_get_different_images(project_at, tmp_path: Path) -> None:
    first = _team(project_at, tmp_path, images=12)
    first.close()
    got: dict[str, list[int]] = {}
    errors: list[BaseException] = []

    def work(name: str) -> None:
        try:
            with Project.open(project_at, user=name) as mine:
                taken = []
                while (rec := mine.next_assigned(after=taken[-1] if taken else None)) is not None:
                    taken.append(rec.id)
                    mine.skip_image(rec.id, reason="checked")
                got[name] = taken
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in ("anna", "ben", "carl")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    handed = [i for ids in got.values() for i in ids]
    assert sorted(handed) == list(range(1, 13))  # every image once, to exactly one person
    with Project.open(project_at) as p:
        assert p.integrity_check() == "ok"
        assert {r.state_user for r in p.images()} <= {"anna", "ben", "carl"}


def test_review_stage_return_with_comment_then_approve(project_at, tmp_path: Path) -> None:
    p = _team(project_at, tmp_path, images=2)
    p.assign(["anna"], user="boss")
    rec = p.next_assigned("anna")
    p.add_annotation(rec.id, rect(64, 80, 2, 2, 20, 20), "building", user="anna")
    p.finish_image(rec.id, user="anna")
    assert p.image(rec.id).review == "pending"
    assert [r.id for r in p.review_queue()] == [rec.id]
    with pytest.raises(NotAllowedError, match="only managers or reviewers may approve"):
        p.approve_image(rec.id, user="anna")
    with pytest.raises(InputError, match="say why"):
        p.return_image(rec.id, "  ", user="rita")
    p.return_image(rec.id, "the north roof is missing", user="rita")
    back = p.image(rec.id)
    assert (back.state, back.review, back.review_note, back.reviewed_by) == (
        "in progress", "returned", "the north roof is missing", "rita")
    assert p.review_queue() == []
    # it comes back to anna first, with the comment
    again = p.next_assigned("anna", after=None)
    assert again.id == rec.id and again.review_note == "the north roof is missing"
    p.add_annotation(rec.id, rect(64, 80, 30, 2, 40, 20), "building", user="anna")
    p.finish_image(rec.id, user="anna")
    assert p.image(rec.id).review == "pending"
    with pytest.raises(InputError, match="not waiting for review"):
        p.approve_image(2, user="rita")
    p.approve_image(rec.id, "good", user="rita")
    assert p.image(rec.id).review == "approved"
    assert [e["verdict"] for e in p.review_stage.events(rec.id)] == ["returned", "approved"]
    # the reviewer's undo takes back her own verdict, not anna's work
    p.user = "rita"
    assert str(p.undo()) == f"approve image {rec.id}: good"
    assert p.image(rec.id).review == "pending"
    p.redo()
    p.user = "anna"  # her newest action is finishing; the verdict since makes that undo unsafe
    with pytest.raises(ConflictError, match=f"cannot undo 'mark image {rec.id} done'"):
        p.undo()
    assert p.image(rec.id).review == "approved"
    # exports can take approved images only
    p.set_member("anna", "annotator", user="boss")
    manifest = export_coco(p, tmp_path / "coco", states=("approved",), images="none")
    coco = json.loads((tmp_path / "coco" / "annotations.json").read_text())
    assert [i["id"] for i in coco["images"]] == [rec.id] and len(coco["annotations"]) == 2
    assert {e["text2seg_image_id"]: e["reason"] for e in manifest["left_out"]} == {2: "unreviewed"}
    assert p.integrity_check() == "ok"
    p.close()


def test_team_commands(project_at, tmp_path: Path) -> None:
    p = Project.create(project_at, classes=["building"])
    for i in range(3):
        p.add_image(write_png(tmp_path / f"img{i}.png", seed=i))
    p.close()
    run = CliRunner()
    loc = str(project_at)

    def cli(*args: str, user: str = "boss") -> str:
        result = run.invoke(main, ["--user", user, *args])
        assert result.exit_code == 0, result.output
        return result.output

    assert "roles are not checked" in cli("project", "members", "list", loc)
    cli("project", "members", "add", loc, "boss", "--role", "manager")
    cli("project", "members", "add", loc, "anna")
    cli("project", "members", "add", loc, "rita", "--role", "reviewer")
    assert cli("project", "members", "list", loc).splitlines() == [
        "anna: annotator", "boss: manager", "rita: reviewer"]
    denied = run.invoke(main, ["--user", "anna", "project", "assign", loc, "--annotators", "anna"])
    assert denied.exit_code == 1 and "only managers may assign images" in denied.output
    assert "anna: 3 new image(s)" in cli("project", "assign", loc, "--annotators", "anna")
    assert cli("project", "next", loc, user="anna").startswith("1\t")
    with Project.open(project_at, user="anna") as q:
        q.finish_image(1)
    assert "1\timg0.png\tfinished by anna" in cli("project", "review", loc, user="rita")
    cli("project", "review", loc, "1", "--return", "--comment", "redo the roofs", user="rita")
    assert "returned: redo the roofs" in cli("project", "next", loc, user="anna")


def test_only_a_manager_restores_a_team_backup(tmp_path: Path, monkeypatch) -> None:
    p = _team(tmp_path / "p", tmp_path, images=1)
    backup = p.backup()
    p.close()
    with pytest.raises(NotAllowedError, match="only managers may restore"):
        restore_backup(tmp_path / "p", backup, user="anna")
    monkeypatch.setenv("TEXT2SEG_USER", "ben")
    with pytest.raises(NotAllowedError, match="ben is annotator"):
        restore_backup(tmp_path / "p", backup)
    assert restore_backup(tmp_path / "p", backup, user="boss").backup == backup

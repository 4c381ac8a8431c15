"""Two people on one PostgreSQL team project, each in JupyterLab with their own Chromium and
their own kernel (Debian's headless Chromium; the test's own PostgreSQL server).

anna (annotator) and rita (manager: she annotates and reviews) open the project: each gets a
different image. anna finishes hers; rita approves it from her review queue, and the approval
shows in anna's image list without anna doing anything (LISTEN/NOTIFY). anna finishes the next;
rita returns it with a comment; it shows as returned in anna's list, and *Next assigned* brings it
back to her with the comment. Screenshots: ``test-output/browser/<test name>/``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from text2seg_widgets.store import Project

from .lab import LabPage, launch_chromium, write_notebook

pytestmark = [pytest.mark.browser, pytest.mark.slow]

OPEN = '''
from text2seg_widgets.store import Project
from text2seg_widgets.widgets import Annotator

project = Project.open({url!r}, user={user!r})
app = Annotator(project, map_height="420px")
app
'''


def _image_list(ui: LabPage) -> str:
    return ui.page.locator(".t2s-annotator .t2s-images select").first.inner_text().replace("\xa0", " ")


def _wait_list(ui: LabPage, text: str) -> None:
    try:
        ui.page.wait_for_function(
            "t => { const s = document.querySelector('.t2s-annotator .t2s-images select');"
            " return s && s.innerText.replace(/\\u00a0/g, ' ').includes(t); }", arg=text,
            timeout=60_000)
    except Exception as exc:
        raise AssertionError(f"the image list never showed {text!r}: {_image_list(ui)!r}") from exc


def _open_image_id(ui: LabPage) -> int:
    label = ui.page.locator(".t2s-annotator .t2s-images select").first.evaluate(
        "s => s.selectedIndex >= 0 ? s.options[s.selectedIndex].text : ''")
    return int(label.split()[0])


def test_two_people_one_project(tmp_path: Path, pg_cluster, rs_samples: Path, lab_server,
                                playwright_session, shots: Path) -> None:
    url = pg_cluster.new_url("lab")
    tiles = sorted((rs_samples / "epfl_roads" / "images").glob("*.png"))[:4]
    setup = Project.create(url, classes=["road"], user="rita")
    for tile in tiles:
        setup.add_image(tile)
    setup.set_member("rita", "manager")
    setup.set_member("anna", "annotator")
    setup.assign(["anna"], image_ids=[1, 2])  # 3 and 4 stay in the pool
    setup.close()
    for user in ("anna", "rita"):
        write_notebook(lab_server.root / f"{user}.ipynb", [OPEN.format(url=url, user=user)])
    contexts = [launch_chromium(playwright_session, tmp_path / f"chromium-{u}") for u in ("anna", "rita")]
    try:
        anna, rita = (LabPage(c.pages[0] if c.pages else c.new_page(), shots / u)
                      for c, u in zip(contexts, ("anna", "rita")))
        for ui, user in ((anna, "anna"), (rita, "rita")):
            (shots / user).mkdir(parents=True, exist_ok=True)
            ui.open(lab_server.notebook_url(f"{user}.ipynb"))
            ui.run_all()
            ui.wait_cells_done()
            assert not ui.errors(), ui.errors()
            ui.wait_annotator()
        anna.wait_text("t2s-team-who", "anna: annotator; 2 image(s) assigned")
        rita.wait_text("t2s-team-who", "rita: manager")
        assert (_open_image_id(anna), _open_image_id(rita)) == (1, 3)  # different images
        anna.shot("anna_first")

        anna.click("t2s-next")  # no candidates: image 1 is done, waits for review; 2 opens
        anna.wait_text("t2s-message", "image 1 done")
        assert _open_image_id(anna) == 2
        rita.wait_text("t2s-review-queue", "1 image(s) wait for review")
        rita.click("t2s-review-next")
        rita.wait_text("t2s-message", "image 1 waits for your verdict")
        rita.click("t2s-approve")
        rita.wait_text("t2s-message", "image 1 approved")
        _wait_list(anna, "1 done [approved]")  # anna did nothing: the change came to her
        anna.shot("anna_sees_approval")

        anna.click("t2s-next")  # image 2 done; nothing assigned is left, the pool gives 4
        anna.wait_text("t2s-message", "image 2 done")
        rita.wait_text("t2s-review-queue", "1 image(s) wait for review")
        rita.click("t2s-review-next")
        rita.page.locator(".t2s-annotator .t2s-review-comment input").fill("the east road is missing")
        rita.click("t2s-return")
        rita.wait_text("t2s-message", "image 2 returned")
        rita.shot("rita_returned")
        _wait_list(anna, "2 in progress [returned]")
        anna.click("t2s-team-next")
        anna.wait_text("t2s-review-note", "the east road is missing")
        assert _open_image_id(anna) == 2
        anna.shot("anna_gets_it_back")
    finally:
        for c in contexts:
            c.close()
    with Project.open(url) as p:
        assert p.image(1).review == "approved" and p.image(2).review == "returned"
        assert p.review_stage.events(2)[-1]["comment"] == "the east road is missing"
        assert p.integrity_check() == "ok"

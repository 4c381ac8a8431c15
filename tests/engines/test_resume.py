"""Resumability: a `pseudo-label` process killed after its first stored image, then run again."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.engines.helpers import CLI_OPTIONS, candidates_by_path, make_settings, new_project
from text2seg_widgets.engines import LocalEngine
from text2seg_widgets.engines.settings import BatchSettings
from text2seg_widgets.engines.work import ImageJob, plan_tiles
from text2seg_widgets.store import DB_NAME, Project

_START_LIMIT_S = 600  # generous: the machine may be busy; the test never asserts on time


def _processed(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM processed").fetchone()[0])
    except sqlite3.OperationalError:  # tables not created yet, or busy
        return 0


def _kill_after_first_image(folder: Path, images: list[Path]) -> int:
    """Start the CLI on ``images`` and SIGKILL it as soon as one image is marked processed."""
    cmd = [sys.executable, "-c", "from text2seg_widgets.cli import main; main()", "pseudo-label", str(folder),
           *map(str, images), *CLI_OPTIONS, "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=Path(__file__).parents[2])
    deadline = time.monotonic() + _START_LIMIT_S
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            if _processed(folder / DB_NAME) >= 1:
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.02)
    finally:
        if proc.poll() is None and time.monotonic() >= deadline:
            proc.kill()
        out, err = proc.communicate()
    assert proc.returncode == -signal.SIGKILL, (
        f"the run was not killed mid-way (exit {proc.returncode}); stderr:\n{err.decode()[-2000:]}")
    return _processed(folder / DB_NAME)


def test_killed_run_resumes_without_duplicates_or_gaps(tmp_path, reference, engine_models):
    images = reference.images
    folder = tmp_path / "project"
    done_before = _kill_after_first_image(folder, images)
    assert 1 <= done_before < len(images), "the run finished before it could be killed"
    with Project.open(folder) as project:
        (run,) = project.runs()
        assert run["finished_at"] is None
        processed_ids = project.processed_images(run["id"])
        stored = {image_id: len(project.candidates(image_id)) for image_id in processed_ids}
        assert all(n > 0 for n in stored.values())
        unprocessed = [im for im in project.images() if im.id not in processed_ids]
        assert not any(project.candidates(im.id) for im in unprocessed)  # nothing half-written
        engine = LocalEngine(make_settings(), models=engine_models, progress=False)
        report = engine.run(project)
        assert report.resumed and report.run_id == run["id"] and len(project.runs()) == 1
        assert report.images_skipped == done_before and report.images_done == len(images) - done_before
        settings = make_settings()
        remaining_tiles = sum(len(plan_tiles(ImageJob.from_record(im), settings)) for im in unprocessed)
        assert engine.runner.calls == remaining_tiles  # the stored images were not run again
        assert project.processed_images(run["id"]) == {im.id for im in project.images()}
    # every image has exactly the candidates of an uninterrupted run: no duplicates, none missing
    assert candidates_by_path(folder) == reference.candidates_by_path()


def test_run_id_resume_and_fresh(tmp_path, sample_images, engine_models):
    folder = new_project(tmp_path / "p", sample_images[:1])
    with Project.open(folder) as project:
        first = LocalEngine(make_settings(), models=engine_models, progress=False).run(project)
        again = LocalEngine(make_settings(), models=engine_models, progress=False).run(project, resume=first.run_id)
        assert again.resumed and again.images_done == 0
        n = len(project.candidates())
        fresh = LocalEngine(make_settings(replace=True), models=engine_models, progress=False).run(project, fresh=True)
        assert not fresh.resumed and fresh.run_id != first.run_id and fresh.images_done == 1
        # replace=True swapped the proposals of the earlier run for the new ones
        assert len(project.candidates()) == n and {c.run_id for c in project.candidates()} == {fresh.run_id}


@pytest.mark.parametrize("bad", [{"tile_size": 0}, {"overlap": 700}, {"stretch": "sqrt"}, {"tile_batch": 0}])
def test_bad_settings_are_refused(bad):
    from text2seg_widgets.errors import InputError

    with pytest.raises(InputError):
        make_settings(**bad)


def test_settings_round_trip_through_a_dict():
    settings = make_settings(tile_batch=3, config={"box_threshold": 0.4})
    again = BatchSettings.from_dict(settings.to_dict())
    assert again.to_dict() == settings.to_dict()
    assert again.config.branches == ("detector", "heatmap") and again.classes.names == ["building", "road"]

"""The Annotator owns its threads: close() stops and joins them and unhooks every event."""

from __future__ import annotations

import threading

from text2seg_widgets.core.workers import live_workers
from text2seg_widgets.store import Project
from text2seg_widgets.widgets import Annotator
from text2seg_widgets.widgets.runner import BackgroundRunner


def test_runner_work_runs_on_an_owned_non_daemon_worker() -> None:
    release = threading.Event()
    seen: dict[str, object] = {}

    def work() -> str:
        seen["thread"] = threading.current_thread()
        release.wait(30)
        return "result"

    results: list[tuple[object, object]] = []
    with BackgroundRunner() as runner:
        runner.submit(work, lambda r, e: results.append((r, e)))
        assert runner.busy
        assert "t2s-prompt-run" in [w.name for w in live_workers()]
        release.set()
        runner.wait(timeout=30)
    thread = seen["thread"]
    assert isinstance(thread, threading.Thread) and not thread.daemon
    assert results == [("result", None)]
    assert not runner.busy and "t2s-prompt-run" not in [w.name for w in live_workers()]


def test_closing_the_runner_joins_a_running_job_and_drops_its_result() -> None:
    release = threading.Event()
    results: list[object] = []
    runner = BackgroundRunner()
    runner.submit(lambda: release.wait(30), lambda r, e: results.append(r))
    threading.Timer(0.2, release.set).start()
    runner.close()
    assert not runner.busy and results == []  # a closed owner applies nothing afterwards
    assert runner.drain() == 0


def test_close_joins_the_prompt_run_and_the_prefetch_and_unhooks_events(project: Project, open_app) -> None:
    from text2seg_widgets.models.modelset import ModelSet
    from text2seg_widgets.models.tiny import tiny_sam_segmenter

    seg = tiny_sam_segmenter(seed=1)
    app = open_app(project, ModelSet(segmenter=seg))
    release = threading.Event()
    app.runner.submit(lambda: release.wait(30), lambda r, e: None)
    closed: list[str] = []
    keeper = app.keeper
    original = keeper.close if hasattr(keeper, "close") else keeper.join

    def spy(*args, **kwargs):
        closed.append("keeper")
        return original(*args, **kwargs)

    if hasattr(keeper, "close"):
        keeper.close = spy  # type: ignore[method-assign]
    else:
        keeper.join = spy  # type: ignore[method-assign]
    threading.Timer(0.2, release.set).start()
    app.close()
    assert closed == ["keeper"]
    assert not app.runner.busy
    assert [w.name for w in live_workers() if w.name.startswith("t2s-prompt")] == []
    # after close, browser events reach nothing: no selection, no store change
    before = [(c.id, c.status) for c in project.candidates(app.image_id)]
    app.panel.accept.click()
    app.panel.next.click()
    assert [(c.id, c.status) for c in project.candidates(app.image_id)] == before
    assert project.image(app.image_id).state == "unreviewed"
    app.close()  # twice is harmless


def test_annotator_is_a_context_manager(project: Project) -> None:
    with Annotator(project) as app:
        assert app.image_id == project.images()[0].id
    assert app.closed

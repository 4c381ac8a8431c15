"""Workers are owned: stoppable, joinable, never daemon, and swept by stop_all."""

from __future__ import annotations

import threading
import time

from text2seg_widgets.core.workers import Worker, live_workers, stop_all


def _loop(seen: list[int]):
    def target(stop: threading.Event) -> None:
        while not stop.is_set():
            seen.append(1)
            time.sleep(0.01)
    return target


def test_worker_is_non_daemon_and_stops_on_close():
    seen: list[int] = []
    w = Worker(_loop(seen), name="t2s-test-loop").start()
    assert w._thread.daemon is False
    time.sleep(0.05)
    assert w in live_workers()
    assert w.close(timeout=5) is True
    assert not w.is_alive() and seen
    assert w not in live_workers()


def test_stop_all_sweeps_forgotten_workers_and_a_failing_target_is_logged(caplog):
    w = Worker(_loop([]), name="t2s-forgotten").start()

    def boom(stop: threading.Event) -> None:
        raise RuntimeError("model failed")

    bad = Worker(boom, name="t2s-boom").start()
    assert bad.join(timeout=5)
    assert "t2s-boom" in caplog.text and "model failed" in caplog.text
    assert "t2s-forgotten" in stop_all(timeout=5)
    assert not w.is_alive()
    assert stop_all() == []


def test_join_of_unstarted_worker_is_true():
    assert Worker(lambda stop: None, name="t2s-never").join(timeout=0) is True

"""Run slow work (a text-prompt pipeline run) in a background worker without freezing the notebook.

The work runs on a :class:`~text2seg_widgets.core.workers.Worker` (a non-daemon thread owned by
the runner, stopped and joined by :meth:`BackgroundRunner.close`); its result is handed back to
the kernel's own thread (through the running asyncio loop of the kernel, when there is one) so
that the project store is only written from the thread that owns it. Without a running loop
(plain Python, tests), results wait in a queue until :meth:`BackgroundRunner.wait` or
:meth:`BackgroundRunner.drain` applies them. Once closed, the runner applies nothing more.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from typing import Any, Callable

from text2seg_widgets.core.workers import Worker

__all__ = ["BackgroundRunner"]

log = logging.getLogger(__name__)

Done = Callable[[Any, BaseException | None], None]


class BackgroundRunner:
    """One job at a time; ``busy`` is True while a job runs. A context manager."""

    def __init__(self) -> None:
        try:
            self._loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None
        self._pending: queue.Queue[tuple[Done, Any, BaseException | None]] = queue.Queue()
        self._worker: Worker | None = None
        self.closed = False

    @property
    def busy(self) -> bool:
        return self._worker is not None and self._worker.is_alive()

    def submit(self, work: Callable[[], Any], done: Done) -> Worker:
        """Start ``work()`` on a worker; ``done(result, error)`` runs on the kernel thread."""
        if self.closed:
            raise RuntimeError("this runner is closed")
        if self.busy:
            raise RuntimeError("a run is already in progress; wait for it to finish")

        def target(stop: threading.Event) -> None:
            result: Any = None
            error: BaseException | None = None
            try:
                result = work()
            except Exception as exc:  # handed to `done`, which reports it in the UI
                log.warning("background run failed: %s", exc, exc_info=True)
                error = exc
            if not stop.is_set():
                self._hand_back(done, result, error)

        self._worker = Worker(target, name="t2s-prompt-run").start()
        return self._worker

    def _hand_back(self, done: Done, result: Any, error: BaseException | None) -> None:
        # Always queue the result; a running kernel loop is asked to drain the queue, and wait()
        # drains it too, so a loop that reports itself running but never turns again (nested
        # loops left behind by other libraries) cannot swallow a result.
        self._pending.put((done, result, error))
        loop = self._loop
        if loop is not None and loop.is_running() and not loop.is_closed():
            loop.call_soon_threadsafe(self._safe_drain)

    def _safe_drain(self) -> None:
        try:
            self.drain()
        except Exception:
            log.exception("applying a background result failed")

    def drain(self) -> int:
        """Apply queued results on the calling thread; returns how many were applied."""
        n = 0
        while not self.closed:
            try:
                done, result, error = self._pending.get_nowait()
            except queue.Empty:
                break
            done(result, error)
            n += 1
        return n

    def wait(self, timeout: float | None = None) -> None:
        """Block until the running job ends, then apply its result here if it was queued."""
        if self._worker is not None:
            self._worker.join(timeout)
        self.drain()

    def close(self, timeout: float | None = None) -> bool:
        """Stop and join the running job (a model call in progress is waited for, never killed);
        its result is dropped. True when no job is left running."""
        self.closed = True
        ended = True
        if self._worker is not None:
            ended = self._worker.close(timeout)
            if not ended:
                log.warning("the prompt run did not end within %s s", timeout)
        while not self._pending.empty():
            self._pending.get_nowait()
        return ended

    def __enter__(self) -> "BackgroundRunner":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

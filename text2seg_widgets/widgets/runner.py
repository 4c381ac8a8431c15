"""Run slow work (a text-prompt pipeline run) in a thread without freezing the notebook.

The work runs in a daemon thread; its result is handed back to the kernel's own thread (through
the running asyncio loop of the kernel, when there is one) so that the project store is only
written from the thread that owns it. Without a running loop (plain Python, tests), results wait
in a queue until :meth:`BackgroundRunner.wait` or :meth:`BackgroundRunner.drain` applies them.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from typing import Any, Callable

__all__ = ["BackgroundRunner"]

log = logging.getLogger(__name__)

Done = Callable[[Any, BaseException | None], None]


class BackgroundRunner:
    """One job at a time; ``busy`` is True while a job runs."""

    def __init__(self) -> None:
        try:
            self._loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None
        self._pending: queue.Queue[tuple[Done, Any, BaseException | None]] = queue.Queue()
        self._thread: threading.Thread | None = None

    @property
    def busy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def submit(self, work: Callable[[], Any], done: Done) -> threading.Thread:
        """Start ``work()`` in a thread; ``done(result, error)`` runs on the kernel thread."""
        if self.busy:
            raise RuntimeError("a run is already in progress; wait for it to finish")

        def target() -> None:
            result: Any = None
            error: BaseException | None = None
            try:
                result = work()
            except BaseException as exc:  # handed to `done`, which reports it in the UI
                log.warning("background run failed: %s", exc, exc_info=True)
                error = exc
            self._hand_back(done, result, error)

        self._thread = threading.Thread(target=target, name="t2s-prompt-run", daemon=True)
        self._thread.start()
        return self._thread

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
        while True:
            try:
                done, result, error = self._pending.get_nowait()
            except queue.Empty:
                return n
            done(result, error)
            n += 1

    def wait(self, timeout: float | None = None) -> None:
        """Block until the running job ends, then apply its result here if it was queued."""
        if self._thread is not None:
            self._thread.join(timeout)
        self.drain()

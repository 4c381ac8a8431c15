"""Background threads that are owned, stoppable and joined.

Every thread this package starts is a :class:`Worker`: a *non-daemon* thread with a stop event.
Its owner calls :meth:`Worker.stop` and :meth:`Worker.join` (usually from its own ``close()``),
so no thread outlives the object that started it.

Why non-daemon: at interpreter exit Python ends daemon threads with ``pthread_exit`` wherever they
are; a daemon thread inside a torch call is then unwound through C++ frames, and Ray's terminate
handler (loaded once anything imports ray) turns that into ``abort()``. A non-daemon thread is
joined by the interpreter *before* finalisation starts, so model code never runs during shutdown.
:func:`stop_all` (registered with :mod:`atexit`, and callable from tests) stops and joins every
live worker that its owner forgot.
"""

from __future__ import annotations

import atexit
import logging
import threading
import weakref
from typing import Any, Callable

__all__ = ["Worker", "live_workers", "stop_all"]

log = logging.getLogger(__name__)

_LIVE: "weakref.WeakSet[Worker]" = weakref.WeakSet()
_LOCK = threading.Lock()


class Worker:
    """Run ``target(stop_event)`` in a non-daemon thread named ``name``.

    ``target`` should return soon after ``stop_event`` is set (check it between units of work,
    never in the middle of a model call, which cannot be interrupted).
    """

    def __init__(self, target: Callable[[threading.Event], Any], *, name: str) -> None:
        self.name = name
        self.stop_event = threading.Event()
        self._target = target
        self._thread = threading.Thread(target=self._run, name=name, daemon=False)

    def _run(self) -> None:
        try:
            self._target(self.stop_event)
        except Exception:  # noqa: BLE001 - a worker reports, its owner decides
            log.exception("background worker %s failed", self.name)

    def start(self) -> "Worker":
        with _LOCK:
            _LIVE.add(self)
        self._thread.start()
        return self

    @property
    def stopping(self) -> bool:
        return self.stop_event.is_set()

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        """Ask the worker to finish; does not wait (see :meth:`join`)."""
        self.stop_event.set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread; True when it has ended (or never started)."""
        if self._thread.ident is None:
            return True
        if self._thread is threading.current_thread():
            return False
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def close(self, timeout: float | None = None) -> bool:
        self.stop()
        return self.join(timeout)


def live_workers() -> list[Worker]:
    """The workers whose threads are still running."""
    with _LOCK:
        return [w for w in list(_LIVE) if w.is_alive()]


def stop_all(timeout: float | None = None) -> list[str]:
    """Stop and join every live worker; returns the names of those that had to be stopped here."""
    names = []
    for worker in live_workers():
        names.append(worker.name)
        worker.close(timeout)
    if names:
        log.debug("stopped %d background worker(s) left running: %s", len(names), ", ".join(names))
    return names


atexit.register(stop_all)

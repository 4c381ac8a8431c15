"""Stopping a model call between two of its layers.

A background encode (the windows around a scene's view, the next image) takes about a second on
this CPU. When the annotator pans again or draws a box, it should give the cores back at once, not
at the end of its forward pass: a tile of the new view, or the box's own encode, is waiting.

:func:`interruptible` makes every torch module called *in this thread* raise :class:`Interrupted`
as it is entered once the given event is set. It works through one process-wide forward pre-hook,
installed on first use, that reads a thread-local event. Other threads, and this thread outside
the ``with`` block, are not affected (the hook returns at once when no event is set). A network
in eval mode under ``torch.no_grad`` changes nothing it holds in a forward pass, so abandoning
one leaves the model as it was.

Modules inside a ``torch.jit`` graph or a compiled region are not entered one by one and cannot
be stopped there; the adapters here run their encoders eagerly.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Any, Iterator

import torch

__all__ = ["Interrupted", "interruptible"]


class Interrupted(Exception):
    """A model call was abandoned because its owner asked it to stop."""


_LOCAL = threading.local()
_INSTALL = threading.Lock()
_HOOK: Any = None  # the RemovableHandle of the pre-hook, kept for the life of the process


def _check(module: torch.nn.Module, args: Any) -> None:
    stop: threading.Event | None = getattr(_LOCAL, "stop", None)
    if stop is not None and stop.is_set():
        raise Interrupted(f"stopped before {type(module).__name__}")


def _install() -> None:
    global _HOOK
    with _INSTALL:
        if _HOOK is None:
            _HOOK = torch.nn.modules.module.register_module_forward_pre_hook(_check)


@contextmanager
def interruptible(stop: threading.Event) -> Iterator[None]:
    """Within this block, model calls in this thread raise :class:`Interrupted` at the next
    module they enter once ``stop`` is set (also when it is set already). Blocks nest; the
    inner event rules until its block ends."""
    _install()
    before = getattr(_LOCAL, "stop", None)
    _LOCAL.stop = stop
    try:
        yield
    finally:
        _LOCAL.stop = before

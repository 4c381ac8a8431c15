"""interruptible(): a model call in one thread stops at the next module it enters once its event
is set; other threads, and the same thread outside the block, run as before."""

from __future__ import annotations

import threading

import pytest
import torch

from text2seg_widgets.models.interrupt import Interrupted, interruptible


class Counting(torch.nn.Module):
    """Adds one and counts its calls; ``stop_at`` sets an event when the count reaches it."""

    def __init__(self, log: list[int], index: int, stop_at: tuple[int, threading.Event] | None = None) -> None:
        super().__init__()
        self.log, self.index, self.stop_at = log, index, stop_at

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.log.append(self.index)
        if self.stop_at is not None and self.stop_at[0] == self.index:
            self.stop_at[1].set()
        return x + 1


def chain(n: int, log: list[int], stop_at: tuple[int, threading.Event] | None = None) -> torch.nn.Sequential:
    return torch.nn.Sequential(*(Counting(log, i, stop_at) for i in range(n)))


def test_the_call_stops_at_the_next_module_once_the_event_is_set() -> None:
    log: list[int] = []
    stop = threading.Event()
    net = chain(8, log, stop_at=(2, stop))  # layer 2 sets the event while it runs
    with interruptible(stop), pytest.raises(Interrupted, match="Counting"):
        net(torch.zeros(1))
    assert log == [0, 1, 2]  # layer 3 was never entered
    log.clear()
    assert float(net(torch.zeros(1))) == 8.0 and log == list(range(8))  # outside the block: whole


def test_an_event_set_before_the_call_stops_it_at_once_and_an_unset_one_changes_nothing() -> None:
    log: list[int] = []
    net = chain(4, log)
    done = threading.Event()
    done.set()
    with interruptible(done), pytest.raises(Interrupted):
        net(torch.zeros(1))
    assert log == []
    with interruptible(threading.Event()):
        assert float(net(torch.zeros(1))) == 4.0 and log == [0, 1, 2, 3]


def test_other_threads_are_not_stopped_and_blocks_nest() -> None:
    stop = threading.Event()
    stop.set()
    results: list[float] = []
    net = chain(5, [])
    with interruptible(stop):
        worker = threading.Thread(target=lambda: results.append(float(net(torch.zeros(1)))))
        worker.start()
        worker.join(30)
        with interruptible(threading.Event()):  # the inner event rules inside its block
            assert float(net(torch.zeros(1))) == 5.0
        with pytest.raises(Interrupted):  # and the outer one again after it
            net(torch.zeros(1))
    assert results == [5.0]

"""Joining or starting Ray, and sizing the actors: the parts every Ray-backed command shares.

Kept apart from :mod:`.ray_engine` so that other Ray users (the ``embed`` command's runner) import
these without the batch engine and its tile work, which keeps the module graph free of cycles.
"""

from __future__ import annotations

import logging
import math
import socket
from typing import Any

from text2seg_widgets.errors import InputError

__all__ = ["check_address", "worker_resources", "init_local"]

log = logging.getLogger(__name__)


def check_address(address: str, timeout: float = 3.0) -> None:
    """Raise :class:`InputError` quickly when a ``host:port`` Ray address does not answer
    (``ray.init`` itself would retry for a minute). ``auto`` is left to Ray."""
    if address == "auto":
        return
    target = address.split("://", 1)[-1]
    host, sep, port = target.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise InputError(f"Ray address {address!r} is not host:port (e.g. 10.0.0.5:6379 or "
                         "ray://10.0.0.5:10001); leave --ray-address out to run locally")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as exc:
        raise InputError(f"the Ray cluster at {address} does not answer ({exc}); start it with "
                         "`ray start --head` on that machine, check the address and port, or leave "
                         "--ray-address out to run on this machine") from exc


def worker_resources(total_cpus: float, total_gpus: float, device: str, workers: int | None,
                     cpus_per_worker: float | None = None) -> tuple[int, float, float]:
    """``(workers, cpus, gpus)`` per actor: one actor per GPU when the run uses GPUs, else
    ``workers`` actors sharing all CPUs but one (at least 0.25 CPU each)."""
    use_gpu = device.startswith("cuda") or (device == "auto" and total_gpus >= 1)
    if use_gpu:
        if total_gpus < 1:
            raise InputError(f"device {device!r} asks for a GPU but the Ray cluster has none; use --device cpu")
        n = int(workers or total_gpus)
        return n, float(cpus_per_worker or 1.0), 1.0
    n = int(workers or max(1, int(total_cpus // 4)))
    if n < 1:
        raise InputError(f"workers must be at least 1, got {workers}")
    cpus = cpus_per_worker or max(0.25, math.floor(4 * max(total_cpus - 1, 1) / n) / 4)
    return n, float(cpus), 0.0


def init_local(ray: Any, attempts: int = 2, **options: Any) -> None:
    """``ray.init(**options)`` on this machine; a start that times out (an overloaded machine: Ray
    waits a fixed 30 s for its own processes) is tried once more."""
    for attempt in range(1, attempts + 1):
        try:
            ray.init(logging_level=logging.WARNING, include_dashboard=False, **options)
            return
        except Exception as exc:  # noqa: BLE001 - Ray raises a bare Exception for this
            if "timed out during startup" not in str(exc) or attempt == attempts:
                raise
            log.warning("local Ray did not start in time (%s); trying again", exc)
            ray.shutdown()

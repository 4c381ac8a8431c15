"""Device and precision selection: CUDA, then MPS, then CPU; autocast on CUDA only."""

from __future__ import annotations

import contextlib
import logging
from typing import Iterator

import torch

from text2seg_widgets.errors import InputError

__all__ = ["resolve_device", "resolve_dtype", "autocast"]

log = logging.getLogger(__name__)


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``"auto"`` (or None) picks ``cuda`` when available, then ``mps``, else ``cpu``."""
    if device is None or str(device) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InputError(f"unknown device {str(device)!r}; use auto, cpu, cuda, cuda:N (N: a GPU "
                         "index) or mps") from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"device {str(device)!r} was requested but this machine has no CUDA "
                             "GPU that torch can use; use auto or cpu (CLI: --device auto)")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise InputError(f"device {str(device)!r} was requested but this machine has "
                             f"{torch.cuda.device_count()} CUDA GPU(s), numbered from 0; use "
                             "cuda:0 or auto")
    elif dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise InputError(f"device {str(device)!r} was requested but MPS (Apple GPU) is not "
                             "available here; use auto or cpu")
    elif dev.type != "cpu":
        raise InputError(f"device {str(device)!r} is not supported; use auto, cpu, cuda, cuda:N "
                         "or mps")
    return dev


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype | None:
    """The autocast dtype: ``"auto"`` gives bf16 (or fp16 where bf16 is unsupported) on CUDA and
    None (full fp32, no autocast) elsewhere. An explicit dtype on the CPU is ignored with a log line."""
    if dtype is None or dtype in ("float32", "fp32", torch.float32):
        return None
    if device.type != "cuda":
        if dtype != "auto":
            log.info("autocast dtype %s ignored on %s: running in float32", dtype, device)
        return None
    if dtype == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if isinstance(dtype, str):
        table = {"bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "fp16": torch.float16, "float16": torch.float16}
        if dtype not in table:
            raise InputError(f"unknown dtype {dtype!r}; use auto, float32, bf16 or fp16")
        return table[dtype]
    return dtype


@contextlib.contextmanager
def autocast(device: torch.device, dtype: torch.dtype | None) -> Iterator[None]:
    """``torch.autocast`` when a reduced dtype is set (CUDA), else a plain inference context."""
    with torch.inference_mode():
        if dtype is None:
            yield
        else:
            with torch.autocast(device_type=device.type, dtype=dtype):
                yield

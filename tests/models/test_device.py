"""Device and precision selection on this CPU-only machine."""

from __future__ import annotations

import pytest
import torch

from text2seg_widgets.models.device import autocast, resolve_device, resolve_dtype


def test_auto_is_cpu_here():
    assert not torch.cuda.is_available(), "these tests describe the CPU-only CI machine"
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device(None) == torch.device("cpu")
    assert resolve_dtype("auto", torch.device("cpu")) is None
    assert resolve_dtype("bf16", torch.device("cpu")) is None


def test_cuda_request_without_cuda_is_a_clear_error():
    with pytest.raises(ValueError, match="CUDA is not available"):
        resolve_device("cuda")


def test_autocast_on_cpu_is_plain_inference():
    with autocast(torch.device("cpu"), None):
        x = torch.ones(2, requires_grad=True) * 2
    assert x.dtype == torch.float32 and not x.requires_grad

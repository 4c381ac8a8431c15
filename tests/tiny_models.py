"""Shared fixtures with tiny random-weight models (built by ``text2seg_widgets.models.tiny``).

Import them into any test folder's ``conftest.py``::

    from tests.tiny_models import tiny_models, tiny_image, square_image, encoder_counter  # noqa: F401

The models are session-scoped (built once, a few seconds); their ``encoder_calls`` counters
therefore accumulate across tests: compare differences, or use ``encoder_counter`` (a forward
hook on the real encoder module) around the code under test. Their outputs are meaningless.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

import numpy as np
import pytest
import torch

from text2seg_widgets.models.modelset import ModelSet
from text2seg_widgets.models.tiny import tiny_model_set

__all__ = ["tiny_models", "tiny_image", "square_image", "encoder_counter", "synthetic_rgb", "count_forwards"]


def synthetic_rgb(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A deterministic (H, W, 3) uint8 scene: a textured background with a few bright rectangles."""
    rng = np.random.default_rng(seed)
    image = rng.integers(40, 90, size=(height, width, 3), dtype=np.uint8)
    for _ in range(4):
        h, w = rng.integers(height // 8, height // 3), rng.integers(width // 8, width // 3)
        y, x = rng.integers(0, height - h), rng.integers(0, width - w)
        image[y:y + h, x:x + w] = rng.integers(150, 255, size=3, dtype=np.uint8)
    return image


@contextmanager
def count_forwards(module: torch.nn.Module) -> Iterator[list[int]]:
    """Count forward calls of ``module`` inside the block: ``with count_forwards(m) as n: ...; n[0]``."""
    calls = [0]

    def hook(*_: object) -> None:
        calls[0] += 1

    handle = module.register_forward_hook(hook)
    try:
        yield calls
    finally:
        handle.remove()


@pytest.fixture(scope="session")
def tiny_models() -> ModelSet:
    """All five roles (tiny SAM + its mask generator, Grounding DINO, CLIP, SAM 3), random weights."""
    return tiny_model_set(seed=0, device="cpu")


@pytest.fixture(scope="session")
def tiny_image() -> np.ndarray:
    """A non-square 120 x 200 RGB image (H != W catches swapped axes)."""
    return synthetic_rgb(120, 200, seed=1)


@pytest.fixture(scope="session")
def square_image() -> np.ndarray:
    """A 256 x 256 RGB image."""
    return synthetic_rgb(256, 256, seed=2)


@pytest.fixture()
def encoder_counter() -> Callable[[torch.nn.Module], object]:
    """``encoder_counter(module)`` is :func:`count_forwards` as a fixture."""
    return count_forwards

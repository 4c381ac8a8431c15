"""Fixtures for the model adapter tests (shared with other folders through tests/tiny_models.py)."""

from __future__ import annotations

from tests.tiny_models import encoder_counter, square_image, tiny_image, tiny_models  # noqa: F401

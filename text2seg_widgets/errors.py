"""Exceptions raised by text2seg_widgets.

Every error a user can cause derives from :class:`Text2SegError` (a ``ValueError`` where the
cause is bad input) and carries a message that says what to do next.
"""

from __future__ import annotations

__all__ = [
    "Text2SegError",
    "InputError",
    "UnreviewedError",
    "MissingWeightsError",
    "MissingExtraError",
    "ChecksumError",
    "UnknownModelError",
]


class Text2SegError(Exception):
    """Base class of every error this package raises on purpose."""


class InputError(Text2SegError, ValueError):
    """Bad user input (image, classes, prompts, paths); the message says how to fix it."""


class UnreviewedError(InputError):
    """An image cannot be marked done while candidates on it are still proposed (unreviewed).

    ``image_id`` and ``count`` say which image and how many candidates are left."""

    def __init__(self, message: str, *, image_id: int | None = None, count: int = 0) -> None:
        super().__init__(message)
        self.image_id = image_id
        self.count = count


class UnknownModelError(InputError, KeyError):
    """A model or weight spec name that the registry does not know."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class MissingWeightsError(Text2SegError, FileNotFoundError):
    """A weight file is not in the cache and may not be downloaded (offline)."""


class ChecksumError(Text2SegError):
    """A downloaded or cached file does not match its recorded sha256."""


class MissingExtraError(Text2SegError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""


def require(module: str, extra: str):
    """Import ``module`` or raise :class:`MissingExtraError` naming ``pip install text2seg-widgets[extra]``."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingExtraError(
            f"'{module}' is needed for this feature but is not installed. "
            f"Install it with: pip install 'text2seg-widgets[{extra}]'"
        ) from exc

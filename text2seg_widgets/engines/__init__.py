"""Batch pseudo-labelling into a project: the local engine (default) and the Ray engine.

>>> from text2seg_widgets.engines import BatchSettings, LocalEngine           # doctest: +SKIP
>>> settings = BatchSettings(ClassSet.parse("building,road"), models="offline")
>>> report = LocalEngine(settings).run(Project.open("my-project"))

:class:`BatchSettings` says what to run; :class:`LocalEngine` runs it in this process,
:class:`~text2seg_widgets.engines.ray_engine.RayEngine` on Ray Data (``pip install
'text2seg-widgets[ray]'``). Both store candidates per image and mark each image processed in
the same transaction, so a killed run started again continues where it stopped.
Names load lazily, so importing this package pulls in neither torch nor ray.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["BatchSettings", "LocalEngine", "RayEngine", "RunReport", "ImageJob", "ImageResult",
           "build_manifest", "ENGINES", "make_engine"]

_LAZY = {
    "BatchSettings": "settings", "LocalEngine": "local", "RayEngine": "ray_engine", "RunReport": "runs",
    "ImageJob": "work", "ImageResult": "work", "build_manifest": "manifest",
}

#: ``--engine`` names.
ENGINES = ("local", "ray")


def make_engine(name: str, settings: Any, **options: Any) -> Any:
    """The engine called ``name`` (``local`` or ``ray``) for ``settings``; ``options`` go to its
    constructor (``workers``, ``address`` for Ray; ``models``, ``progress`` for both)."""
    from text2seg_widgets.errors import InputError

    if name == "local":
        from text2seg_widgets.engines.local import LocalEngine

        unknown = set(options) - {"models", "progress"}
        if unknown:
            raise InputError(f"option(s) {sorted(unknown)} only apply to --engine ray")
        return LocalEngine(settings, **options)
    if name == "ray":
        from text2seg_widgets.engines.ray_engine import RayEngine

        return RayEngine(settings, **options)
    raise InputError(f"unknown engine {name!r}; use one of {', '.join(ENGINES)}")


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"text2seg_widgets.engines.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'text2seg_widgets.engines' has no attribute {name!r}")

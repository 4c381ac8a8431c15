"""One display stretch per scene, so the same pixel value maps to the same colour in every tile.

:func:`compute_stretch` samples the scene once (an overview-backed decimated read when the file has
overviews, else a fixed grid of windows) and takes per-band percentiles of the valid pixels.
:meth:`Stretch.apply` maps any tile with those numbers to ``uint8``. The stretch is stored with a
run (``stretch.json``) and can be loaded back to reproduce the exact colours.

Methods: ``percentile`` (default ``(2, 98)``), ``minmax`` (the sample's min/max), ``none`` (values
clipped to 0..255, the identity for ``uint8``). ``auto`` picks ``none`` for ``uint8`` rasters,
which are already display-scaled (aerial RGB, PNG, JPEG), and ``percentile`` for everything else.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, Sequence

import numpy as np

from text2seg_widgets.errors import InputError

__all__ = ["Stretch", "compute_stretch", "load_stretch", "STRETCH_METHODS", "SampledRaster"]

logger = logging.getLogger(__name__)

STRETCH_METHODS = ("auto", "percentile", "minmax", "none")
#: Pixels per band the sample aims for (about 1 Mpx: percentiles are stable well below that).
_SAMPLE_SIDE = 1024
_GRID_WINDOW = 256


class SampledRaster(Protocol):
    """What :func:`compute_stretch` reads from a raster (a :class:`~text2seg_widgets.imagery.scene.Scene`
    has all of it). A Protocol, so this module never imports the scene module that uses it."""

    path: Path
    width: int
    height: int
    dtypes: tuple[str, ...]

    @property
    def has_overviews(self) -> bool: ...

    def read(self, window: Any = None, bands: Any = None, *, out_shape: tuple[int, int] | None = None
             ) -> np.ndarray: ...

    def valid_mask(self, window: Any = None, bands: Any = None, *,
                   out_shape: tuple[int, int] | None = None) -> np.ndarray: ...


@dataclass
class Stretch:
    """Linear per-band stretch: ``(value - low) / (high - low)`` clipped to 0..1, then times 255."""

    bands: list[int]
    low: list[float]
    high: list[float]
    method: str = "percentile"
    percentiles: list[float] = field(default_factory=lambda: [2.0, 98.0])
    n_samples: int = 0

    def __post_init__(self) -> None:
        if not (len(self.bands) == len(self.low) == len(self.high)):
            raise InputError("a stretch needs one low and one high value per band")

    def apply(self, data: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
        """``(n_bands, h, w)`` values -> ``(h, w, n_bands)`` uint8; invalid pixels become 0."""
        data = np.asarray(data)
        if data.ndim != 3 or data.shape[0] != len(self.low):
            raise InputError(f"expected ({len(self.low)}, h, w) band data, got shape {data.shape}")
        out = np.empty((data.shape[1], data.shape[2], data.shape[0]), np.uint8)
        identity = data.dtype == np.uint8 and all(lo == 0 and hi == 255 for lo, hi in zip(self.low, self.high))
        for i in range(data.shape[0]):
            if identity:  # the "none" stretch of uint8 data: a copy
                out[..., i] = data[i]
                continue
            lo, hi = float(self.low[i]), float(self.high[i])
            scale = 255.0 / (hi - lo) if hi > lo else 0.0
            band = (data[i].astype(np.float32) - np.float32(lo)) * np.float32(scale)
            if np.issubdtype(data.dtype, np.floating):
                band[~np.isfinite(band)] = 0.0
            np.rint(band, out=band)
            np.clip(band, 0, 255, out=band)
            out[..., i] = band
        if valid is not None:
            out[~np.asarray(valid, bool)] = 0
        return out

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Stretch":
        try:
            return cls(bands=[int(b) for b in data["bands"]], low=[float(v) for v in data["low"]],
                       high=[float(v) for v in data["high"]], method=str(data.get("method", "percentile")),
                       percentiles=[float(p) for p in data.get("percentiles", [2.0, 98.0])],
                       n_samples=int(data.get("n_samples", 0)))
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"not a valid stretch ({exc}); it needs 'bands', 'low' and 'high' lists") from exc

    def save(self, path: str | os.PathLike) -> Path:
        out = Path(path)
        out.write_text(json.dumps(self.to_dict(), indent=2))
        return out


def load_stretch(path: str | os.PathLike) -> Stretch:
    try:
        return Stretch.from_dict(json.loads(Path(path).read_text()))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read stretch file {path}: {exc}") from exc


def _sample(scene: SampledRaster, bands: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """``(n_bands, N)`` values of valid sampled pixels and the valid mask used."""
    w, h = scene.width, scene.height
    if max(w, h) <= _SAMPLE_SIDE or scene.has_overviews:
        f = min(1.0, _SAMPLE_SIDE / max(w, h))
        shape = (max(1, round(h * f)), max(1, round(w * f)))
        data = scene.read(bands=bands, out_shape=shape)
        valid = scene.valid_mask(bands=bands, out_shape=shape)
        return data[:, valid], valid
    n = max(1, min(4, _SAMPLE_SIDE // _GRID_WINDOW))
    side = min(_GRID_WINDOW, w, h)
    cols = np.linspace(0, w - side, n).round().astype(int)
    rows = np.linspace(0, h - side, n).round().astype(int)
    parts, masks = [], []
    for r in rows:
        for c in cols:
            window = (int(c), int(r), side, side)
            valid = scene.valid_mask(window, bands=bands)
            parts.append(scene.read(window, bands=bands)[:, valid])
            masks.append(valid)
    return np.concatenate(parts, axis=1), np.stack(masks)


def compute_stretch(scene: SampledRaster, bands: Sequence[int], *, method: str = "auto",
                    percentiles: Sequence[float] = (2.0, 98.0)) -> Stretch:
    """The stretch for ``bands`` of ``scene`` (see the module docs for the methods)."""
    if method not in STRETCH_METHODS:
        raise InputError(f"unknown stretch method {method!r}: use one of {', '.join(STRETCH_METHODS)}")
    bands = [int(b) for b in bands]
    if method == "auto":
        method = "none" if all(scene.dtypes[b - 1] == "uint8" for b in bands) else "percentile"
    if method == "none":
        return Stretch(bands, [0.0] * len(bands), [255.0] * len(bands), "none", [0.0, 100.0], 0)
    values, _ = _sample(scene, bands)
    values = values.astype(np.float64)
    finite = np.isfinite(values).all(axis=0)
    values = values[:, finite]
    pct = [0.0, 100.0] if method == "minmax" else [float(p) for p in percentiles]
    if values.shape[1] == 0:
        logger.warning("no valid pixels sampled in %s: using a 0..1 stretch", scene.path)
        return Stretch(bands, [0.0] * len(bands), [1.0] * len(bands), method, pct, 0)
    lows, highs = np.percentile(values, pct, axis=1)
    return Stretch(bands, [float(v) for v in lows], [float(v) for v in highs], method, pct,
                   int(values.shape[1]))

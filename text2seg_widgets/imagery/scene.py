"""A Scene: one raster file (GeoTIFF of any band count and dtype, PNG, JPEG) read lazily by window.

A Scene knows its size, CRS (``None`` when there is none), affine transform (the identity, i.e.
pixel space, when the file is not georeferenced), nodata value and valid-pixel mask, and reads
windows with rasterio: nothing is loaded until asked. ``read_rgb`` applies the scene's single
stretch (computed once, from a sample) to the chosen three bands, so every tile gets the same colours.

Windows are :class:`rasterio.windows.Window` or ``(col_off, row_off, width, height)`` tuples.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from types import TracebackType
from typing import Any, Sequence, Union

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import ColorInterp, MaskFlags, Resampling
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.windows import Window

from text2seg_widgets.errors import InputError
from text2seg_widgets.imagery.bands import BandSpec, resolve_bands
from text2seg_widgets.imagery.stretch import Stretch, compute_stretch

__all__ = ["Scene", "open_scene", "WindowLike", "as_window"]

logger = logging.getLogger(__name__)

WindowLike = Union[Window, Sequence[int], None]
_SUPPORTED_DTYPES = {"uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "float64"}


#: The most pixels a whole-image operation (an embedding of the whole image, a label array of the
#: whole image) takes on: 20000 x 20000 (1.2 GB of RGB, 0.4 GB of labels). Bigger images are
#: worked in windows or tiles; operations that cannot refuse with :func:`check_whole_image`.
MAX_WHOLE_IMAGE_PIXELS = 20000 * 20000


def check_whole_image(width: int, height: int, what: str, way_out: str) -> None:
    """:class:`InputError` naming the size, the memory it would take and ``way_out`` when a
    ``width`` x ``height`` image is too big for ``what`` (see :data:`MAX_WHOLE_IMAGE_PIXELS`)."""
    if width * height > MAX_WHOLE_IMAGE_PIXELS:
        raise InputError(f"{what}: the image is {width} x {height} pixels ({width * height / 1e6:.0f} "
                         f"million; up to {MAX_WHOLE_IMAGE_PIXELS / 1e6:.0f} million are handled whole, "
                         f"this one would need about {width * height * 4 / 1e9:.1f} GB of memory). {way_out}")


def as_window(window: WindowLike, width: int, height: int) -> Window:
    """A rasterio Window from a Window, a ``(col, row, width, height)`` tuple or None (everything)."""
    if window is None:
        return Window(0, 0, width, height)
    if isinstance(window, Window):
        return window
    try:
        col, row, w, h = (int(v) for v in window)
    except (TypeError, ValueError):
        raise InputError(f"a window is (col_off, row_off, width, height), got {window!r}") from None
    return Window(col, row, w, h)


class Scene:
    """An open raster. Use :func:`open_scene` (or the class itself) as a context manager."""

    def __init__(self, path: str | os.PathLike, *, bands: BandSpec = None,
                 stretch: Stretch | None = None) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(f"image {self.path} does not exist or is not a file")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                self._ds = rasterio.open(self.path)
        except RasterioError as exc:
            raise InputError(f"cannot open {self.path} as an image ({exc}); give a GeoTIFF, PNG or "
                             "JPEG file, and check that it is complete (not truncated or renamed)") from exc
        ds = self._ds
        bad = sorted(set(ds.dtypes) - _SUPPORTED_DTYPES)
        if bad:
            self.close()
            raise InputError(f"{self.path} has pixel type {bad[0]}; supported: {sorted(_SUPPORTED_DTYPES)}")
        self.width, self.height, self.count = int(ds.width), int(ds.height), int(ds.count)
        self.dtypes: tuple[str, ...] = tuple(ds.dtypes)
        self.crs: CRS | None = ds.crs if ds.crs else None
        georef = ds.transform != Affine.identity() or self.crs is not None or bool(ds.gcps[0])
        self.transform: Affine = ds.transform if georef else Affine.identity()
        self.is_georeferenced = bool(georef and self.crs is not None)
        self.nodata: float | None = None if ds.nodata is None else float(ds.nodata)
        self._mask_flags = ds.mask_flag_enums
        #: (256, 3) colour lookup of a single-band paletted image (PNG/GIF/TIFF with a colour table)
        self.palette: np.ndarray | None = None
        if self.count == 1 and ds.colorinterp[0] == ColorInterp.palette and self.dtypes[0] == "uint8":
            self.palette = np.zeros((256, 3), np.uint8)
            for value, rgba in ds.colormap(1).items():
                self.palette[int(value)] = rgba[:3]
        self.bands = resolve_bands(bands, self.count)
        self._stretch = stretch

    # -- properties ---------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int]:
        return (self.height, self.width)

    @property
    def res(self) -> tuple[float, float]:
        """Pixel size ``(x, y)`` in CRS units (1, 1 in pixel space)."""
        return (abs(self.transform.a), abs(self.transform.e))

    @property
    def has_overviews(self) -> bool:
        return bool(self._ds.overviews(1))

    @property
    def has_mask(self) -> bool:
        """Whether an alpha band or an internal mask marks some pixels invalid."""
        flags = self._mask_flags[0] if self._mask_flags else []
        return MaskFlags.per_dataset in flags or MaskFlags.alpha in flags

    @property
    def stretch(self) -> Stretch:
        """The one stretch of this scene for :attr:`bands` (computed on first use)."""
        if self._stretch is None or list(self._stretch.bands) != list(self.bands):
            self._stretch = compute_stretch(self, self.bands)
        return self._stretch

    @stretch.setter
    def stretch(self, value: Stretch) -> None:
        self._stretch = value

    def set_bands(self, bands: BandSpec) -> None:
        """Choose the three bands of :meth:`read_rgb` (preset, indices, or one band repeated)."""
        self.bands = resolve_bands(bands, self.count)

    # -- reading ------------------------------------------------------------------------
    def _check_window(self, window: WindowLike, boundless: bool) -> Window:
        win = as_window(window, self.width, self.height)
        if win.width <= 0 or win.height <= 0:
            raise InputError(f"window {win} is empty: give a positive width and height")
        if not boundless and (win.col_off < 0 or win.row_off < 0 or win.col_off + win.width > self.width
                              or win.row_off + win.height > self.height):
            raise InputError(f"window {win} lies outside the {self.width} x {self.height} scene; "
                             "clip it or read with boundless=True")
        return win

    def _band_list(self, bands: BandSpec | Sequence[int]) -> list[int]:
        if bands is None:
            return list(range(1, self.count + 1))
        if isinstance(bands, (str, int)):
            return list(resolve_bands(bands, self.count))
        out = [int(b) for b in bands]
        for b in out:
            if b < 1 or b > self.count:
                raise InputError(f"band index {b} is out of range: {self.path.name} has {self.count} "
                                 f"band(s), numbered 1..{self.count} (1-based)")
        return out

    def read(self, window: WindowLike = None, bands: BandSpec | Sequence[int] = None, *,
             boundless: bool = False, fill: float | None = None,
             out_shape: tuple[int, int] | None = None,
             resampling: Resampling = Resampling.bilinear) -> np.ndarray:
        """``(n_bands, h, w)`` raw values of ``window`` (all bands when ``bands`` is None)."""
        win = self._check_window(window, boundless)
        idx = self._band_list(bands)
        kwargs: dict[str, Any] = {"window": win}
        if out_shape is not None:
            kwargs.update(out_shape=(len(idx), int(out_shape[0]), int(out_shape[1])), resampling=resampling)
        if boundless:
            kwargs.update(boundless=True, fill_value=self.nodata if fill is None else fill)
        try:
            return self._ds.read(idx, **kwargs)
        except RasterioError as exc:
            raise InputError(f"cannot read {self.path} ({exc}); the file looks damaged or truncated: "
                             "re-download or re-export it") from exc

    def valid_mask(self, window: WindowLike = None, bands: BandSpec | Sequence[int] = None, *,
                   out_shape: tuple[int, int] | None = None, data: np.ndarray | None = None) -> np.ndarray:
        """``(h, w)`` bool: True where at least one of ``bands`` holds data (not nodata, not NaN,
        not masked by an alpha band or an internal mask). Pass ``data`` to reuse a read."""
        win = self._check_window(window, False)
        if data is None:
            data = self.read(win, bands, out_shape=out_shape, resampling=Resampling.nearest)
        valid: np.ndarray = np.ones(data.shape[1:], bool)
        if self.nodata is not None or np.issubdtype(data.dtype, np.floating):
            bad = np.zeros(data.shape, bool)
            if self.nodata is not None:
                bad |= data == self.nodata if not np.isnan(self.nodata) else np.isnan(data)
            if np.issubdtype(data.dtype, np.floating):
                bad |= ~np.isfinite(data)
            valid = np.asarray(~bad.all(axis=0))
        flags = self._mask_flags[0] if self._mask_flags else []
        if self.nodata is None and (MaskFlags.per_dataset in flags or MaskFlags.alpha in flags):
            kwargs: dict[str, Any] = {"window": win}
            if out_shape is not None:
                kwargs.update(out_shape=(int(out_shape[0]), int(out_shape[1])))
            try:
                valid &= self._ds.dataset_mask(**kwargs) > 0
            except RasterioError as exc:
                raise InputError(f"cannot read the mask of {self.path} ({exc})") from exc
        return valid

    def pixels(self, window: WindowLike = None) -> tuple[np.ndarray, np.ndarray]:
        """``(rgb, valid)`` of ``window`` at source resolution: the scene's bands through its one
        stretch (a paletted image: its colour table), nodata black. The ONE reader of project
        pixels: the tile loop, the Annotator's image and ``embed`` all see these exact bytes, so an
        embedding cached by one is a hit for the others."""
        data = self.read(window, self.bands)
        valid = self.valid_mask(window, self.bands, data=data)
        return self.to_rgb(data, valid), valid

    def read_rgb(self, window: WindowLike = None, *, bands: BandSpec = None, stretch: Stretch | None = None,
                 out_shape: tuple[int, int] | None = None) -> np.ndarray:
        """``(h, w, 3)`` uint8 of the chosen bands with the scene's stretch; nodata pixels are black.
        With no other choice than the window this is :meth:`pixels`."""
        if bands is None and stretch is None and out_shape is None:
            return self.pixels(window)[0]
        idx = list(resolve_bands(bands, self.count)) if bands is not None else list(self.bands)
        if self.palette is not None and stretch is None:  # colours come from the colour table
            data = self.read(window, [1], out_shape=out_shape, resampling=Resampling.nearest)
            return self.to_rgb(data, self.valid_mask(window, [1], data=data))
        if stretch is None:
            stretch = self.stretch if bands is None else compute_stretch(self, idx)
        data = self.read(window, idx, out_shape=out_shape)
        # a resampled read blends nodata into its neighbours: take the mask from a nearest read then
        valid = self.valid_mask(window, idx, out_shape=out_shape, data=None if out_shape else data)
        return stretch.apply(data, valid)

    def to_rgb(self, data: np.ndarray, valid: np.ndarray, stretch: Stretch | None = None) -> np.ndarray:
        """``(h, w, 3)`` uint8 of band data read from this scene: the colour table of a paletted
        image, else ``stretch`` (default: the scene's). Invalid pixels are black."""
        if self.palette is not None and data.shape[0] in (1, 3) and stretch is None:
            rgb = self.palette[data[0]]
            rgb[~np.asarray(valid, bool)] = 0
            return rgb
        return (stretch or self.stretch).apply(data, valid)

    # -- lifecycle ----------------------------------------------------------------------
    def close(self) -> None:
        self._ds.close()

    @property
    def closed(self) -> bool:
        return bool(self._ds.closed)

    def __enter__(self) -> "Scene":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        crs = self.crs.to_string() if self.crs is not None else "pixel space"
        return (f"Scene({self.path.name!r}, {self.width}x{self.height}, {self.count} band(s) "
                f"{self.dtypes[0]}, {crs}, nodata={self.nodata})")


def open_scene(path: str | os.PathLike, *, bands: BandSpec = None, stretch: Stretch | None = None) -> Scene:
    """Open ``path`` lazily as a :class:`Scene`; bad files raise :class:`InputError`."""
    return Scene(path, bands=bands, stretch=stretch)

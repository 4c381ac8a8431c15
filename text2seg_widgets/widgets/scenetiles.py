"""Big images and GeoTIFFs on the map as tiles cut on demand from the file and its overviews.

The tile server is localtileserver's app (rio-tiler) in a child process of the kernel
(:mod:`text2seg_widgets.imagery.tileserver` says why not its thread), its tiles cut by one route of
ours (:mod:`text2seg_widgets.imagery.tileroute`: the same pixels, a third of the CPU), reached from the browser
through jupyter-loopback's proxy of the Jupyter server (``<base>/localtileserver-proxy/<port>/``),
so it works in JupyterLab, JupyterHub and Binder without opening a port. The kernel never holds a
scene for display: the browser asks for the tiles in view, at the zoom in view.

What the server reads is a small VRT written here per image (:func:`display_vrt`): the image's
window, its three bands through the scene's ONE stretch (baked in as ``ScaleOffset`` /
``ScaleRatio``, so a tile costs a read, not a statistics pass), a paletted image through its colour
table, and its valid-pixel mask, so the map shows exactly the colours the pipeline sees. The source
file's overviews serve the zoomed-out views. A plain (not georeferenced) image gets a stand-in
Web Mercator transform (:func:`pixel_space_transform`): pixel ``(0, 0)`` at the projection's
origin and one pixel per screen pixel at zoom :data:`PIXEL_SPACE_ZOOM`, so its tiles line up with
its pixels exactly; no basemap is ever shown under such an image.

:class:`SceneTiles` owns the VRT folder and its tile clients; the tile server is shared by the
kernel's annotators and stopped (waited for) when the last one closes.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import ipyleaflet
from affine import Affine
from rasterio.crs import CRS

from text2seg_widgets.errors import InputError
from text2seg_widgets.imagery.scene import open_scene
from text2seg_widgets.imagery.tileserver import GDAL_CACHE_MB, TileServer
from text2seg_widgets.widgets.geometry import GeoFrame

__all__ = ["SceneTiles", "TiledImage", "DisplayVrt", "display_vrt", "pixel_space_transform", "shows_as_tiles",
           "native_zoom", "SCENE_SIDE", "PIXEL_SPACE_ZOOM", "WEB_MERCATOR"]

log = logging.getLogger(__name__)

#: images with a longer side than this are shown as tiles (and prompted on windows)
SCENE_SIDE = 2048
#: the zoom at which a plain image's pixel is one screen pixel (its stand-in transform)
PIXEL_SPACE_ZOOM = 18
WEB_MERCATOR = "EPSG:3857"
_HALF_WORLD = 20037508.342789244  # metres from the Web Mercator origin to the world's edge


def pixel_space_transform(zoom: int = PIXEL_SPACE_ZOOM) -> Affine:
    """The stand-in transform of a plain image: Web Mercator metres, origin at pixel (0, 0), one
    pixel per tile pixel at ``zoom`` (tiles then cut whole pixels, nothing is resampled)."""
    size = 2 * _HALF_WORLD / (256 * 2 ** zoom)
    return Affine(size, 0.0, 0.0, 0.0, -size, 0.0)


def native_zoom(transform: Affine, crs: Any, latitude: float) -> int:
    """The smallest Web Mercator zoom at which one screen pixel is at most one image pixel."""
    pixel = abs(float(transform.a))
    if CRS.from_user_input(crs).is_geographic:  # degrees; a projected CRS is taken as metres
        pixel *= 111_320.0 * max(math.cos(math.radians(latitude)), 1e-6)
    ground = 2 * math.pi * 6378137.0 * max(math.cos(math.radians(latitude)), 1e-6) / 256.0
    return max(0, min(24, math.ceil(math.log2(ground / max(pixel, 1e-9)))))


def shows_as_tiles(width: int, height: int, georeferenced: bool) -> bool:
    """Whether an image is shown as map tiles: every georeferenced one, and any bigger than
    :data:`SCENE_SIDE`."""
    return georeferenced or max(width, height) > SCENE_SIDE


def _band_xml(index: int, path: Path, src_band: int, window: tuple[int, int, int, int], dtype: str,
              scale: tuple[float, float] | None, lut: list[int] | None, color: str) -> str:
    col, row, w, h = window
    rect = (f"<SrcRect xOff='{col}' yOff='{row}' xSize='{w}' ySize='{h}'/>"
            f"<DstRect xOff='0' yOff='0' xSize='{w}' ySize='{h}'/>")
    extra = ""
    if scale is not None:
        extra += f"<ScaleOffset>{scale[0]!r}</ScaleOffset><ScaleRatio>{scale[1]!r}</ScaleRatio>"
    if lut is not None:
        extra += "<LUT>" + ",".join(f"{v}:{out}" for v, out in enumerate(lut)) + "</LUT>"
    kind = "ComplexSource" if extra else "SimpleSource"
    return (f"<VRTRasterBand dataType='Byte' band='{index}'><ColorInterp>{color}</ColorInterp>"
            f"<{kind}><SourceFilename relativeToVRT='0'>{escape(str(path))}</SourceFilename>"
            f"<SourceBand>{src_band}</SourceBand><SourceProperties RasterXSize='{w}' RasterYSize='{h}' "
            f"DataType='{dtype}'/>{rect}{extra}</{kind}></VRTRasterBand>")


@dataclass(frozen=True)
class DisplayVrt:
    """A written display VRT: its ``path``, where the map shows it (``frame``: the stand-in place
    of a plain image), and whether its source has overviews."""

    path: Path
    frame: GeoFrame
    has_overviews: bool


def display_vrt(path: str | Path, out: str | Path, *, window: tuple[int, int, int, int] | None = None
                ) -> DisplayVrt:
    """Write the display VRT of ``path`` (module docs) to ``out``."""
    path, out = Path(path).resolve(), Path(out)
    with open_scene(path) as scene:
        col, row, w, h = window if window is not None else (0, 0, scene.width, scene.height)
        if col < 0 or row < 0 or col + w > scene.width or row + h > scene.height:
            raise InputError(f"window {window} lies outside {path.name} ({scene.width} x {scene.height})")
        georeferenced, overviews = scene.is_georeferenced, scene.has_overviews
        if georeferenced:
            transform = scene.transform @ Affine.translation(col, row)
            crs: Any = scene.crs
        else:
            transform, crs = pixel_space_transform(), CRS.from_user_input(WEB_MERCATOR)
        dtype = {"uint8": "Byte", "int8": "Int8", "uint16": "UInt16", "int16": "Int16", "uint32": "UInt32",
                 "int32": "Int32", "float32": "Float32", "float64": "Float64"}[scene.dtypes[0]]
        bands = []
        for i, color in enumerate(("Red", "Green", "Blue")):
            if scene.palette is not None:
                lut = [int(v) for v in scene.palette[:, i]]
                bands.append(_band_xml(i + 1, path, 1, (col, row, w, h), dtype, None, lut, color))
                continue
            st = scene.stretch
            lo, hi = float(st.low[i]), float(st.high[i])
            identity = scene.dtypes[0] == "uint8" and lo == 0.0 and hi == 255.0
            ratio = 255.0 / (hi - lo) if hi > lo else 0.0
            scale = None if identity else (-lo * ratio, ratio)
            bands.append(_band_xml(i + 1, path, int(st.bands[i]), (col, row, w, h), dtype, scale, None, color))
        mask_band = ""
        if scene.nodata is not None or scene.has_mask:
            mask_band = ("<MaskBand><VRTRasterBand dataType='Byte'><SimpleSource>"
                         f"<SourceFilename relativeToVRT='0'>{escape(str(path))}</SourceFilename>"
                         f"<SourceBand>mask,{int(scene.bands[0])}</SourceBand>"
                         f"<SrcRect xOff='{col}' yOff='{row}' xSize='{w}' ySize='{h}'/>"
                         f"<DstRect xOff='0' yOff='0' xSize='{w}' ySize='{h}'/>"
                         "</SimpleSource></VRTRasterBand></MaskBand>")
    gt = ", ".join(repr(float(v)) for v in (transform.c, transform.a, transform.b, transform.f,
                                             transform.d, transform.e))
    xml = (f"<VRTDataset rasterXSize='{w}' rasterYSize='{h}'><SRS>{escape(crs.to_wkt())}</SRS>"
           f"<GeoTransform>{gt}</GeoTransform>{''.join(bands)}{mask_band}</VRTDataset>")
    out.write_text(xml)
    frame = GeoFrame(width=w, height=h, transform=transform, crs=crs, real=georeferenced)
    return DisplayVrt(path=out, frame=frame, has_overviews=overviews)


@dataclass(frozen=True)
class TiledImage:
    """One image served as tiles: the map layer, where it sits, and its native zoom."""

    layer: ipyleaflet.TileLayer
    frame: GeoFrame
    native_zoom: int
    vrt: Path


# GDAL's block cache in the kernel (and so in the tile server it starts): set when the widgets are
# imported, before GDAL reads its first block (GDAL reads the setting once); a value already set wins
os.environ.setdefault("GDAL_CACHEMAX", GDAL_CACHE_MB)


class _Server:
    """The kernel's one tile server (:class:`~text2seg_widgets.imagery.tileserver.TileServer`, a
    child process), counted: started by the first :class:`SceneTiles` that needs it, stopped (and
    waited for) when the last one closes."""

    lock = threading.Lock()
    users = 0
    server: TileServer | None = None

    @classmethod
    def acquire(cls) -> TileServer:
        with cls.lock:
            cls.users += 1
            if cls.server is None or not cls.server.alive:
                cls.server = TileServer()
            return cls.server

    @classmethod
    def release(cls) -> None:
        with cls.lock:
            cls.users -= 1
            if cls.users > 0:
                return
            cls.users = 0
            server, cls.server = cls.server, None
        if server is not None:
            server.stop()


class SceneTiles:
    """Serves the images an Annotator shows as tiles; :meth:`close` removes its VRTs and releases
    the tile server."""

    def __init__(self) -> None:
        self._dir: Path | None = None
        self._clients: dict[tuple[str, Any], TiledImage] = {}
        self._server: TileServer | None = None

    def tiled(self, path: str | Path, window: tuple[int, int, int, int] | None = None) -> TiledImage:
        """The tile layer of ``path`` (and ``window``), made once per image."""
        key = (str(Path(path).resolve()), None if window is None else tuple(int(v) for v in window))
        if key in self._clients:
            return self._clients[key]
        if self._dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix="t2s-tiles-"))
        shown = display_vrt(path, self._dir / f"image-{len(self._clients)}.vrt", window=window)
        frame = shown.frame
        if self._server is None:
            self._server = _Server.acquire()
        if max(frame.width, frame.height) > SCENE_SIDE and not shown.has_overviews:
            log.warning("%s has no overviews: zoomed-out views of it read the whole file; add them "
                        "with `rio overview --build 2^1..6 %s` (or gdaladdo)", Path(path).name, path)
        (south, west), (north, east) = frame.bounds()
        zoom = native_zoom(frame.transform, frame.crs, (south + north) / 2.0)
        layer = ipyleaflet.TileLayer(url=self._server.tile_url(str(shown.path)), max_native_zoom=zoom,
                                     max_zoom=zoom + 4, min_zoom=0, no_wrap=True, name="image",
                                     bounds=((south, west), (north, east)), attribution="", pane="tilePane")
        tiled = TiledImage(layer=layer, frame=frame, native_zoom=zoom, vrt=shown.path)
        self._clients[key] = tiled
        return tiled

    def direct_url(self, tiled: TiledImage) -> str:
        """The ``{z}/{x}/{y}`` URL of ``tiled``'s tiles at ``127.0.0.1`` (the layer's URL goes
        through the Jupyter server's proxy inside a kernel)."""
        if self._server is None:
            raise InputError("this SceneTiles is closed; show the image again")
        return self._server.direct_url(str(tiled.vrt))

    def close(self) -> None:
        for tiled in self._clients.values():
            tiled.layer.close()
        self._clients.clear()
        if self._server is not None:
            self._server = None
            _Server.release()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

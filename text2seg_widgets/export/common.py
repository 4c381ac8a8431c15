"""Pieces every exporter shares: which images to export, class indices, the label raster with
its overlap rule, windowed pixel reads, safe file stems.

Label raster convention (the same as :mod:`text2seg_widgets.imagery.labels`): ``uint8``,
``0`` = background, ``i`` = the i-th project class (1-based, in class-id order), ``255`` = ignore
(unlabelled). Overlap rule: annotations are painted in ascending ``(score, id)`` order, so where
masks overlap the pixel goes to the highest-scoring annotation, and between equal scores (hand-made
masks all score 1.0) to the newest one.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from text2seg_widgets.errors import InputError
from text2seg_widgets.export.atomic import Protected
from text2seg_widgets.store import IMAGE_STATES, AnnotationRecord, ImageRecord, Project

__all__ = ["IGNORE", "BACKGROUND", "DEFAULT_STATES", "select_images", "left_out", "class_index",
           "label_raster", "read_pixels", "pixel_reader", "write_pixels",
           "shifted_transform", "image_stem", "classes_table", "UNLABELLED_MODES",
           "protected_by", "EXPORT_STATES"]

IGNORE = 255
BACKGROUND = 0
#: Images exported unless told otherwise: the ones an annotator finished (every candidate on them
#: reviewed, see :mod:`text2seg_widgets.store.states`). Others are listed in the manifest's
#: ``left_out`` with the reason.
DEFAULT_STATES = ("done",)
#: ``ignore``: every pixel no annotation covers is 255. ``background``: in images marked ``done``
#: such pixels are 0 (the annotator saw the whole image), elsewhere still 255.
UNLABELLED_MODES = ("ignore", "background")
#: What ``states=`` may name: the image states, and ``approved`` (done and approved by a reviewer).
EXPORT_STATES = (*IMAGE_STATES, "approved")


def protected_by(project: Project) -> Protected:
    """What an export of ``project`` must never replace (see :class:`.atomic.Protected`)."""
    return Protected(project.folder, tuple(Path(r.path) for r in project.images()),
                     project.project_id)


def _selected(rec: ImageRecord, wanted: Iterable[str]) -> bool:
    return rec.state in wanted or ("approved" in wanted and rec.state == "done"
                                   and rec.review == "approved")


def select_images(project: Project, states: Iterable[str] | None = DEFAULT_STATES,
                  image_ids: Iterable[int] | None = None) -> list[ImageRecord]:
    """Images in any of ``states`` (``None``: all states), optionally only ``image_ids``.
    ``"approved"`` (see :data:`EXPORT_STATES`): done images a reviewer approved (team projects)."""
    wanted = tuple(IMAGE_STATES if states is None else states)
    for s in wanted:
        if s not in EXPORT_STATES:
            raise InputError(f"unknown image state {s!r}; use some of {', '.join(EXPORT_STATES)}")
    images = [r for r in project.images() if _selected(r, wanted)]
    if image_ids is not None:
        keep = {int(i) for i in image_ids}
        images = [r for r in images if r.id in keep]
    return images


def left_out(project: Project, selected: Iterable[ImageRecord],
             states: Iterable[str] | None = DEFAULT_STATES) -> list[dict[str, Any]]:
    """Every project image not in ``selected``, with why: ``"unreviewed"``, ``"in progress: 3
    candidates unreviewed"`` (``"in progress"`` when none is left), ``"skipped"`` (``"skipped:
    <reason>"`` when one was given), ``"done: not in the requested states"``, or ``"not
    requested"`` for an image in a requested state left out by ``image_ids``. This is the export
    manifest's ``left_out`` list."""
    chosen = {r.id for r in selected}
    wanted = set(IMAGE_STATES if states is None else states)
    proposed = {s.id: s.proposed for s in project.image_summaries()}
    out = []
    for rec in project.images():
        if rec.id in chosen:
            continue
        if _selected(rec, wanted):
            reason = "not requested"
        elif rec.state == "done" and "approved" in wanted:
            reason = f"done: review {rec.review or 'not asked'}"
        elif rec.state == "in progress":
            n = proposed.get(rec.id, 0)
            reason = f"in progress: {n} candidates unreviewed" if n else "in progress"
        elif rec.state == "skipped":
            reason = f"skipped: {rec.state_note}" if rec.state_note else "skipped"
        elif rec.state == "done":
            reason = "done: not in the requested states"
        else:
            reason = rec.state
        out.append({"text2seg_image_id": rec.id, "path": rec.path, "state": rec.state,
                    "reason": reason})
    return out


def class_index(project: Project) -> dict[str, int]:
    """Class name -> label value (1-based, class-id order)."""
    classes = project.classes
    if len(classes) > 254:
        raise InputError(f"{len(classes)} classes do not fit a uint8 label image (at most 254)")
    return {c.name: i for i, c in enumerate(classes, start=1)}


def classes_table(project: Project) -> list[dict[str, Any]]:
    """The ``classes.json`` rows: background, each class, ignore (index, name, colour, id)."""
    rows: list[dict[str, Any]] = [{"index": BACKGROUND, "name": "background", "color": "#000000",
                                   "class_id": None, "prompts": []}]
    for i, c in enumerate(project.classes, start=1):
        rows.append({"index": i, "name": c.name, "color": c.color, "class_id": c.id,
                     "prompts": list(c.prompts)})
    rows.append({"index": IGNORE, "name": "ignore", "color": "#ffffff", "class_id": None,
                 "prompts": []})
    return rows


def label_raster(image: ImageRecord, annotations: Sequence[AnnotationRecord],
                 index: dict[str, int], unlabelled: str = "ignore") -> np.ndarray:
    """The ``(height, width)`` uint8 label image of one image (overlap rule in the module doc)."""
    if unlabelled not in UNLABELLED_MODES:
        raise InputError(f"unlabelled must be one of {UNLABELLED_MODES}, got {unlabelled!r}")
    fill = BACKGROUND if unlabelled == "background" and image.state == "done" else IGNORE
    labels = np.full((image.height, image.width), fill, np.uint8)
    for ann in sorted(annotations, key=lambda a: (a.score, a.id)):
        labels[ann.mask()] = index[ann.class_name]
    return labels


@contextmanager
def pixel_reader(project: Project, image: ImageRecord) -> Iterator[Callable[..., np.ndarray]]:
    """Open the image once; yield ``read(window)`` giving ``(bands, h, w)`` pixels of a ``(col,
    row, w, h)`` window in the record's own pixels (None = all), read windowed with rasterio and
    padded with 0 outside the image (or outside the record's window of a bigger scene)."""
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning
    from rasterio.windows import Window

    path = project.image_path(image.id)  # InputError naming relink() when the file moved
    off_c, off_r = (image.window[0], image.window[1]) if image.window else (0, 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path) as src:
            # PNG/JPEG/striped files decode from the top for every window: read full-width strips
            # once and slice them (memory: one strip); tiled files read each window directly.
            striped = not src.profile.get("tiled", False)
            strip: dict[tuple[int, int], np.ndarray] = {}

            def raw(col: int, row: int, w: int, h: int) -> np.ndarray:
                if not striped:
                    return src.read(window=Window(off_c + col, off_r + row, w, h),
                                    boundless=True, fill_value=0)
                if (row, h) not in strip:
                    strip.clear()
                    strip[(row, h)] = src.read(window=Window(off_c, off_r + row, image.width, h),
                                               boundless=True, fill_value=0)
                band = strip[(row, h)]
                out = np.zeros((band.shape[0], h, w), band.dtype)
                part = band[:, :, max(col, 0):col + w]
                out[:, :, :part.shape[2]] = part
                return out

            def read(window: tuple[int, int, int, int] | None = None) -> np.ndarray:
                col, row, w, h = window or (0, 0, image.width, image.height)
                data = raw(col, row, w, h)
                data[:, max(0, min(h, image.height - row)):, :] = 0
                data[:, :, max(0, min(w, image.width - col)):] = 0
                return data

            yield read


def read_pixels(project: Project, image: ImageRecord,
                window: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """``(bands, h, w)`` pixels of one window (see :func:`pixel_reader`)."""
    with pixel_reader(project, image) as read:
        return read(window)


def write_pixels(path: Path, data: np.ndarray, *, crs: str | None = None,
                 transform: Any = None) -> Path:
    """Write ``(bands, h, w)`` pixels: an 8-bit 1/3/4-band PNG (with PIL) when ``path`` ends in
    .png, else a GeoTIFF with ``crs``/``transform`` (dtype kept)."""
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning

    if path.suffix.lower() == ".png" and data.dtype == np.uint8 and data.shape[0] in (1, 3, 4):
        from PIL import Image

        pixels = data[0] if data.shape[0] == 1 else np.ascontiguousarray(data.transpose(1, 2, 0))
        Image.fromarray(pixels).save(path, format="PNG", compress_level=1)
        return path
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path, "w", driver="GTiff", width=data.shape[2], height=data.shape[1],
                           count=data.shape[0], dtype=data.dtype, crs=crs,
                           transform=transform) as dst:
            dst.write(data)
    return path


def shifted_transform(transform: Sequence[float], col: int, row: int) -> Any:
    """The affine of a grid whose pixel (0, 0) is pixel (col, row) of ``transform``'s grid."""
    from affine import Affine

    a, b, c, d, e, f = transform[:6]
    return Affine(a, b, a * col + b * row + c, d, e, d * col + e * row + f)


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def image_stem(image: ImageRecord) -> str:
    """A unique, filesystem-safe file stem: ``<id>_<file stem>[_c<col>_r<row>]``."""
    stem = _UNSAFE.sub("_", Path(image.path).stem)[:80] or "image"
    if image.window:
        stem += f"_c{image.window[0]}_r{image.window[1]}"
    return f"{image.id:06d}_{stem}"

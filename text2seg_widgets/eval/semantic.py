"""Semantic evaluation of predictions against ground-truth labels, for every prediction source.

Prediction sources:

- a label map array (``H x W`` class indices of the mapping's classes, 255 = no prediction);
- a label file or a folder of label files (PNG/GeoTIFF), paired with the ground truth by file
  stem. Label GeoTIFFs written by this package (tag ``CLASS_NAMES``: 0 = background, i = i-th
  class) are decoded by class name; any other file is decoded with ``pred_mapping`` (default:
  the ground-truth mapping, i.e. the prediction uses the dataset's own encoding);
- a project (:class:`~text2seg_widgets.store.Project` or its folder): each image is paired with
  the ground-truth file of the same stem (windows of a scene are cropped from the scene's label),
  and its candidates (all review states by default: the pipeline's raw output) or its
  annotations are rasterised.

Rasterising instances (the overlap rule): masks are painted in ascending score, so where masks
overlap **the higher score wins**; at equal scores the later record (higher id) wins. Pixels no
mask covers get the mapping's ``background`` class when it has one (LoveDA, EPFL roads), else 255
("no prediction": a miss for the ground-truth class, see :mod:`.confusion`). Candidate class names
are matched to the mapping's classes by name or alias, ignoring case, spaces and hyphens.

``per_branch=True`` evaluates candidates of each ``candidate.branch`` alone, plus ``all`` (every
branch fused by the overlap rule), each with its own confusion matrix over all images.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Literal, Mapping, Sequence

import numpy as np

from text2seg_widgets.errors import InputError
from text2seg_widgets.eval.confusion import IGNORE_INDEX, ConfusionMatrix, EvalResult
from text2seg_widgets.eval.labels import LabelMapping, find_label_files, load_label, load_mapping, read_raster

if TYPE_CHECKING:
    from text2seg_widgets.store import Project

__all__ = ["rasterize", "evaluate", "evaluate_arrays", "evaluate_label_files", "evaluate_project",
           "is_project"]

logger = logging.getLogger(__name__)

Source = Literal["candidates", "annotations"]
Unknown = Literal["error", "ignore"]


def rasterize(items: Iterable[tuple[int, float, np.ndarray]], shape: tuple[int, int], *,
              fill: int = IGNORE_INDEX) -> np.ndarray:
    """``(class index, score, mask)`` items -> (H, W) uint8 label map; higher score wins overlaps."""
    out = np.full(shape, fill, dtype=np.uint8)
    ordered = sorted(enumerate(items), key=lambda pair: (pair[1][1], pair[0]))
    for _, (class_index, _, mask) in ordered:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != tuple(shape):
            raise InputError(f"mask size {mask.shape[1]}x{mask.shape[0]} differs from the image size "
                             f"{shape[1]}x{shape[0]} (width x height)")
        out[mask] = class_index
    return out


def evaluate_arrays(pairs: Iterable[tuple[str, np.ndarray, np.ndarray]], class_names: Sequence[str]) -> EvalResult:
    """``(name, gt, pred)`` class-index maps -> one result over all their pixels."""
    cm = ConfusionMatrix(class_names)
    for name, gt, pred in pairs:
        cm.update(gt, pred, name=name)
    if cm.images == 0:
        raise InputError("nothing to evaluate: no (ground truth, prediction) pairs were given")
    return cm.result()


def is_project(path: str | Path) -> bool:
    """Whether ``path`` is a project folder (or its database file)."""
    from text2seg_widgets.store import DB_NAME

    path = Path(path)
    return (path / DB_NAME).is_file() or (path.is_file() and path.name == DB_NAME)


def evaluate(pred: Any, gt: "str | Path | np.ndarray", mapping: "str | Path | LabelMapping", *,
             pred_mapping: "str | Path | LabelMapping | None" = None, source: Source = "candidates",
             per_branch: bool = False, statuses: Sequence[str] | None = None,
             unknown: Unknown = "error", unknown_classes: Unknown = "error") -> dict[str, EvalResult]:
    """Evaluate any prediction source (see the module docs) -> ``{source name: EvalResult}``."""
    mapping = load_mapping(mapping)
    if isinstance(pred, np.ndarray):
        gt_map = _gt_array(gt, mapping, unknown)
        return {"prediction": evaluate_arrays([("prediction", gt_map, pred)], mapping.classes)}
    if isinstance(gt, np.ndarray):
        raise InputError("a ground-truth array pairs with a prediction array only; give ground-truth "
                         "label files for a project or prediction files")
    if hasattr(pred, "images") and hasattr(pred, "candidates"):
        return evaluate_project(pred, gt, mapping, source=source, per_branch=per_branch, statuses=statuses,
                                unknown=unknown, unknown_classes=unknown_classes)
    if is_project(pred):
        from text2seg_widgets.store import Project

        with Project.open(pred) as project:
            return evaluate_project(project, gt, mapping, source=source, per_branch=per_branch,
                                    statuses=statuses, unknown=unknown, unknown_classes=unknown_classes)
    if per_branch:
        raise InputError("--per-branch needs a project (candidates know their branch); a label file "
                         "has no branches")
    return {"prediction": evaluate_label_files(pred, gt, mapping, pred_mapping=pred_mapping, unknown=unknown,
                                               unknown_classes=unknown_classes)}


def _gt_array(gt: "str | Path | np.ndarray", mapping: LabelMapping, unknown: Unknown) -> np.ndarray:
    if isinstance(gt, np.ndarray):
        return gt
    files = find_label_files(gt)
    if len(files) != 1:
        raise InputError(f"a single prediction array needs a single ground-truth file, but {gt} holds "
                         f"{len(files)} label files")
    return load_label(next(iter(files.values())), mapping, unknown=unknown)


# -------------------------------------------------------------------------------- label files


def evaluate_label_files(pred: str | Path, gt: str | Path, mapping: "str | Path | LabelMapping", *,
                         pred_mapping: "str | Path | LabelMapping | None" = None, unknown: Unknown = "error",
                         unknown_classes: Unknown = "error") -> EvalResult:
    """Prediction label file(s) vs ground-truth file(s), paired by stem (a single file each pairs
    directly). Every prediction needs a label and every label a prediction."""
    mapping = load_mapping(mapping)
    preds, gts = find_label_files(pred), find_label_files(gt)
    if len(preds) == 1 and len(gts) == 1 and Path(pred).is_file() and Path(gt).is_file():
        pairs = [(next(iter(preds)), next(iter(preds.values())), next(iter(gts.values())))]
    else:
        _check_pairing(preds, gts, pred, gt)
        pairs = [(stem, preds[stem], gts[stem]) for stem in sorted(preds)]
    cm = ConfusionMatrix(mapping.classes)
    for stem, pred_path, gt_path in pairs:
        gt_map = load_label(gt_path, mapping, unknown=unknown)
        pred_map = _decode_prediction(pred_path, mapping, pred_mapping, unknown, unknown_classes)
        if pred_map.shape != gt_map.shape:
            raise InputError(f"prediction {pred_path} is {_wh(pred_map.shape)} but its label {gt_path} is "
                             f"{_wh(gt_map.shape)}; they must cover the same pixels")
        cm.update(gt_map, pred_map, name=stem)
    result = cm.result()
    result.extra.update({"mapping": mapping.name, "pairs": len(pairs)})
    return result


def _check_pairing(preds: Mapping[str, Path], gts: Mapping[str, Path], pred: Any, gt: Any) -> None:
    no_label = sorted(set(preds) - set(gts))
    no_pred = sorted(set(gts) - set(preds))
    if no_label:
        raise InputError(f"{len(no_label)} prediction(s) in {pred} have no ground-truth label of the same "
                         f"stem in {gt}: {_listing(no_label)}; add their labels or remove them")
    if no_pred:
        raise InputError(f"{len(no_pred)} label(s) in {gt} have no prediction of the same stem in {pred}: "
                         f"{_listing(no_pred)}; evaluate a folder holding only the labels you predicted")


def _decode_prediction(path: Path, mapping: LabelMapping, pred_mapping: Any, unknown: Unknown,
                       unknown_classes: Unknown) -> np.ndarray:
    if pred_mapping is None and path.suffix.lower() in (".tif", ".tiff"):
        names = _class_names_tag(path)
        if names is not None:
            table = _names_table(names, mapping, unknown_classes, str(path))
            raw = read_raster(path)
            if raw.ndim != 2:
                raise InputError(f"prediction {path} has {raw.shape[2]} bands; a label raster has one")
            if raw.dtype != np.uint8:
                raise InputError(f"prediction {path} is {raw.dtype}; label rasters of this package are uint8")
            return table[raw]
    spec = mapping if pred_mapping is None else pred_mapping
    if isinstance(spec, str) and spec == "classes":
        spec = LabelMapping.identity(mapping.classes)
    return load_label(path, spec, unknown=unknown)


def _class_names_tag(path: Path) -> list[str] | None:
    from text2seg_widgets.imagery.labels import read_class_names

    try:
        return read_class_names(path)
    except InputError:
        return None


def _names_table(names: Sequence[str], mapping: LabelMapping, unknown_classes: Unknown, where: str) -> np.ndarray:
    """Lookup table raw value -> class index for a package label raster (0 = background)."""
    table = np.full(256, IGNORE_INDEX, dtype=np.uint8)
    background = mapping.background_index
    if background is not None:
        table[0] = background
    unknown_names = []
    for value, name in enumerate(names[1:], start=1):
        index = mapping.class_index(name)
        if index is None:
            unknown_names.append(name)
        else:
            table[value] = index
    _report_classes(unknown_names, mapping, unknown_classes, where)
    return table


def _report_classes(names: Sequence[str], mapping: LabelMapping, unknown_classes: Unknown, where: str) -> None:
    if not names:
        return
    message = (f"classes {sorted(set(names))} in {where} are not in mapping '{mapping.name}' "
               f"({', '.join(mapping.classes)}) nor its aliases")
    if unknown_classes == "error":
        raise InputError(message + "; add them as aliases in a mapping file, or drop them explicitly "
                         "with unknown_classes='ignore' (CLI: --unknown-classes ignore)")
    logger.warning("%s; left out as requested", message)


def _wh(shape: Sequence[int]) -> str:
    return f"{shape[1]}x{shape[0]} (width x height)"


def _listing(names: Sequence[str], limit: int = 12) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


# ------------------------------------------------------------------------------------ projects


def evaluate_project(project: "Project", gt: str | Path, mapping: "str | Path | LabelMapping", *,
                     source: Source = "candidates", per_branch: bool = False,
                     statuses: Sequence[str] | None = None, unknown: Unknown = "error",
                     unknown_classes: Unknown = "error") -> dict[str, EvalResult]:
    """A project's candidates (or annotations) against the ground-truth file(s) in ``gt``."""
    mapping = load_mapping(mapping)
    if source not in ("candidates", "annotations"):
        raise InputError(f"source must be 'candidates' or 'annotations', got {source!r}")
    if per_branch and source != "candidates":
        raise InputError("per-branch evaluation needs source='candidates' (annotations have no branch)")
    images = list(project.images())
    if not images:
        raise InputError("the project has no images; add images before evaluating it")
    labels = find_label_files(gt)
    missing = [rec for rec in images if Path(rec.path).stem not in labels]
    if missing:
        raise InputError(f"{len(missing)} project image(s) have no ground-truth label of the same stem in "
                         f"{gt}: {_listing([f'{r.id}: {r.path}' for r in missing])}; add their labels "
                         "(same file name stem as the image) or evaluate a project without them")
    fill = mapping.background_index if mapping.background_index is not None else IGNORE_INDEX
    branches = sorted({r.candidate.branch for r in project.candidates()
                       if statuses is None or r.status in statuses}) if per_branch else []
    matrices: dict[str, ConfusionMatrix] = {}
    unknown_names: set[str] = set()
    for rec in images:
        gt_map = _project_gt(rec, labels[Path(rec.path).stem], mapping, unknown)
        groups = _instance_groups(project, rec, source, branches if per_branch else None, statuses,
                                  mapping, unknown_names)
        for group, items in groups.items():
            pred_map = rasterize(items, gt_map.shape, fill=fill)
            matrices.setdefault(group, ConfusionMatrix(mapping.classes)).update(gt_map, pred_map,
                                                                               name=Path(rec.path).name)
    _report_classes(sorted(unknown_names), mapping, unknown_classes, f"the project's {source}")
    results = {}
    for group in _group_order(matrices):
        result = matrices[group].result()
        result.extra.update({"mapping": mapping.name, "source": source})
        results[group] = result
    return results


def _group_order(matrices: Mapping[str, ConfusionMatrix]) -> list[str]:
    head = [g for g in ("all", "candidates", "annotations") if g in matrices]
    return head + sorted(g for g in matrices if g not in head)


def _project_gt(rec: Any, label_path: Path, mapping: LabelMapping, unknown: Unknown) -> np.ndarray:
    gt_map = load_label(label_path, mapping, unknown=unknown)
    if rec.window is not None:
        col, row, width, height = rec.window
        if row + height > gt_map.shape[0] or col + width > gt_map.shape[1]:
            raise InputError(f"image {rec.id} is the window {tuple(rec.window)} of {rec.path}, but its label "
                             f"{label_path} is only {_wh(gt_map.shape)}; the label must cover the whole scene")
        gt_map = gt_map[row:row + height, col:col + width]
    if gt_map.shape != (rec.height, rec.width):
        raise InputError(f"image {rec.id} ({rec.path}) is {rec.width}x{rec.height} (width x height) but its "
                         f"label {label_path} is {_wh(gt_map.shape)}; use the label made for this image")
    return gt_map


def _instance_groups(project: "Project", rec: Any, source: Source, branches: Sequence[str] | None,
                     statuses: Sequence[str] | None, mapping: LabelMapping,
                     unknown_names: set[str]) -> dict[str, list[tuple[int, float, np.ndarray]]]:
    """Every group (``all`` and each of ``branches``, or just the source when ``branches`` is None)
    with its (index, score, mask) items; every group exists on every image, even with no instance
    there, so every image is scored in every group."""
    groups: dict[str, list[tuple[int, float, np.ndarray]]] = defaultdict(list)
    per_branch = branches is not None
    main_group = "all" if per_branch else source
    groups[main_group] = []
    records: list[tuple[str, float, np.ndarray, str | None]]
    if source == "annotations":
        records = [(r.class_name, float(r.score if r.score is not None else 1.0), r.mask(), None)
                   for r in project.annotations(rec.id)]
    else:
        records = [(r.candidate.class_name, float(r.candidate.score), r.candidate.mask(), r.candidate.branch)
                   for r in project.candidates(rec.id)
                   if statuses is None or r.status in statuses]
    for branch in branches or ():
        groups[branch] = []
    for class_name, score, mask, item_branch in records:
        index = mapping.class_index(class_name)
        if index is None:
            unknown_names.add(class_name)
            continue
        groups[main_group].append((index, score, mask))
        if per_branch:
            groups[str(item_branch)].append((index, score, mask))
    return groups


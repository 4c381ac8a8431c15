"""Ground-truth label loaders: raw label files -> class-index maps, driven by a small mapping file.

A mapping (YAML or JSON; presets ship in ``text2seg_widgets/eval/presets/``) names the classes in
evaluation order and says how raw pixels become those classes. Three encodings:

``index``   a single-band raster of integer codes (LoveDA, mmseg-style ISPRS crops)::

                encoding: index
                classes: [background, building, road]
                values: {0: ignore, 1: background, 2: building, 3: road}

``palette`` an RGB raster with one colour per class (ISPRS colour labels, DeepGlobe)::

                encoding: palette
                classes: [impervious_surface, building]
                colors: {impervious_surface: [255, 255, 255], building: [0, 0, 255]}
                ignore_colors: [[0, 0, 0]]

``binary``  a grey mask; ``value > threshold`` is ``classes[1]``, the rest ``classes[0]``::

                encoding: binary
                classes: [background, road]
                threshold: 127

Optional keys: ``name``, ``description``, ``background`` (the class given to pixels that no
prediction covers when a project is rasterised; leave it out and such pixels count as misses),
and ``aliases`` (``{class: [other names]}``, used to match candidate class names).

Decoded maps are ``uint8`` with class indices ``0..C-1`` and ``255`` for ignore. Codes or colours
that the mapping does not name are never mapped silently: decoding raises :class:`InputError`
listing them with pixel counts, unless ``unknown="ignore"`` is passed, which maps them to 255 and
logs a warning with the same list.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

import numpy as np

from text2seg_widgets.errors import InputError
from text2seg_widgets.eval.confusion import IGNORE_INDEX

__all__ = [
    "LabelMapping",
    "load_mapping",
    "available_presets",
    "read_raster",
    "load_label",
    "find_label_files",
    "normalize_class_name",
    "LABEL_EXTENSIONS",
]

logger = logging.getLogger(__name__)

LABEL_EXTENSIONS = (".png", ".tif", ".tiff", ".bmp", ".gif")
_IGNORE_WORDS = {"ignore", "ignored", "void", "nodata", "no_data", "none"}
Unknown = Literal["error", "ignore"]


def normalize_class_name(name: str) -> str:
    """``"Low vegetation"`` -> ``"low_vegetation"``: lower case, runs of spaces/hyphens to ``_``."""
    return re.sub(r"[\s\-]+", "_", str(name).strip().lower())


@dataclass
class LabelMapping:
    """How raw label pixels become class indices; build it with :func:`load_mapping`."""

    classes: list[str]
    encoding: Literal["index", "palette", "binary"]
    values: dict[int, int] = field(default_factory=dict)
    colors: dict[tuple[int, int, int], int] = field(default_factory=dict)
    threshold: float = 127
    background: str | None = None
    aliases: dict[str, str] = field(default_factory=dict)
    name: str = ""
    description: str = ""

    @classmethod
    def identity(cls, classes: Sequence[str], name: str = "classes") -> "LabelMapping":
        """Raw values already are class indices ``0..C-1`` (255 = none), e.g. exported predictions."""
        values = {i: i for i in range(len(classes))}
        values[IGNORE_INDEX] = IGNORE_INDEX
        return cls(classes=list(classes), encoding="index", values=values, name=name)

    @property
    def background_index(self) -> int | None:
        return None if self.background is None else self.classes.index(self.background)

    def class_index(self, name: str) -> int | None:
        """Index of a class name or alias (case, spaces and hyphens do not matter); None if unknown."""
        key = normalize_class_name(name)
        for i, cls_name in enumerate(self.classes):
            if normalize_class_name(cls_name) == key:
                return i
        target = self.aliases.get(key)
        return None if target is None else self.classes.index(target)

    def decode(self, raw: np.ndarray, *, unknown: Unknown = "error", name: str = "") -> np.ndarray:
        """Raw label array -> (H, W) uint8 class indices with 255 for ignore."""
        raw = np.asarray(raw)
        if unknown not in ("error", "ignore"):
            raise InputError(f"unknown must be 'error' or 'ignore', got {unknown!r}")
        if self.encoding == "palette":
            return self._decode_palette(raw, unknown, name)
        raw = _single_band(raw, self.encoding, name)
        if self.encoding == "binary":
            return np.where(raw > self.threshold, 1, 0).astype(np.uint8)
        return self._decode_index(raw, unknown, name)

    def _decode_index(self, raw: np.ndarray, unknown: Unknown, name: str) -> np.ndarray:
        uniq, inverse = np.unique(raw, return_inverse=True)
        table = np.full(uniq.size, IGNORE_INDEX, dtype=np.uint8)
        missing = []
        for i, value in enumerate(uniq.tolist()):
            if value in self.values:
                table[i] = self.values[value]
            else:
                missing.append(i)
        if missing:
            counts = np.bincount(inverse.ravel(), minlength=uniq.size)
            listed = ", ".join(f"{uniq[i]} ({counts[i]} px)" for i in missing)
            self._report(f"label{_where(name)} holds codes that mapping '{self.name}' does not name: "
                         f"{listed}", unknown, "add them under 'values' in the mapping file")
        return table[inverse].reshape(raw.shape)

    def _decode_palette(self, raw: np.ndarray, unknown: Unknown, name: str) -> np.ndarray:
        if raw.ndim != 3 or raw.shape[2] not in (3, 4):
            raise InputError(f"label{_where(name)} has shape {raw.shape} but mapping '{self.name}' "
                             "expects RGB colours (H, W, 3); use an index or binary mapping for "
                             "single-band labels")
        rgb = raw[..., :3].astype(np.int64)
        keys = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
        uniq, inverse = np.unique(keys, return_inverse=True)
        table = np.full(uniq.size, IGNORE_INDEX, dtype=np.uint8)
        lookup = {(r << 16) | (g << 8) | b: idx for (r, g, b), idx in self.colors.items()}
        missing = []
        for i, key in enumerate(uniq.tolist()):
            if key in lookup:
                table[i] = lookup[key]
            else:
                missing.append(i)
        if missing:
            counts = np.bincount(inverse.ravel(), minlength=uniq.size)
            order = sorted(missing, key=lambda i: -counts[i])
            listed = ", ".join(f"({uniq[i] >> 16}, {(uniq[i] >> 8) & 255}, {uniq[i] & 255}) "
                               f"{counts[i]} px" for i in order[:20])
            more = f" and {len(order) - 20} more colours" if len(order) > 20 else ""
            self._report(f"label{_where(name)} holds colours that mapping '{self.name}' does not name: "
                         f"{listed}{more}", unknown,
                         "add them under 'colors' or 'ignore_colors' in the mapping file")
        return table[inverse].reshape(keys.shape)

    @staticmethod
    def _report(message: str, unknown: Unknown, fix: str) -> None:
        if unknown == "error":
            raise InputError(f"{message}. Either {fix}, or map them to ignore (255) explicitly with "
                             "unknown='ignore' (CLI: --unknown ignore)")
        logger.warning("%s; mapped to ignore (255) as requested", message)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "encoding": self.encoding, "classes": list(self.classes)}
        if self.encoding == "index":
            data["values"] = {int(k): _value_name(self.classes, v) for k, v in self.values.items()}
        elif self.encoding == "palette":
            data["colors"] = {f"{r},{g},{b}": _value_name(self.classes, v) for (r, g, b), v in self.colors.items()}
        else:
            data["threshold"] = self.threshold
        data["background"] = self.background
        return data


def _value_name(classes: Sequence[str], index: int) -> str:
    return "ignore" if index == IGNORE_INDEX else classes[index]


def _where(name: str) -> str:
    return f" {name}" if name else ""


def _single_band(raw: np.ndarray, encoding: str, name: str) -> np.ndarray:
    if raw.ndim == 3 and raw.shape[2] in (3, 4):
        if np.array_equal(raw[..., 0], raw[..., 1]) and np.array_equal(raw[..., 0], raw[..., 2]):
            return raw[..., 0]
        raise InputError(f"label{_where(name)} is a colour image but the mapping uses the "
                         f"'{encoding}' encoding; use a palette mapping (e.g. isprs_rgb, deepglobe)")
    if raw.ndim != 2:
        raise InputError(f"label{_where(name)} has shape {raw.shape}; expected a single-band (H, W) raster")
    return raw


# ----------------------------------------------------------------------------------- mapping files


def available_presets() -> list[str]:
    """Names accepted by :func:`load_mapping` besides file paths."""
    folder = resources.files("text2seg_widgets.eval") / "presets"
    return sorted(p.name.rsplit(".", 1)[0] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_mapping(spec: "str | Path | Mapping[str, Any] | LabelMapping") -> LabelMapping:
    """A preset name (``loveda``, ``potsdam``, ...), a YAML/JSON path, or an already-parsed dict."""
    if isinstance(spec, LabelMapping):
        return spec
    if isinstance(spec, Mapping):
        return _parse_mapping(spec, source="<dict>")
    text_spec = str(spec)
    presets = available_presets()
    if text_spec in presets:
        text = (resources.files("text2seg_widgets.eval") / "presets" / f"{text_spec}.yaml").read_text()
        return _parse_mapping(_parse_text(text, text_spec + ".yaml"), source=f"preset {text_spec}")
    path = Path(text_spec)
    if not path.is_file():
        raise InputError(f"mapping '{text_spec}' is neither a preset ({', '.join(presets)}) nor a "
                         "YAML/JSON file; give one of the presets or the path of a mapping file")
    return _parse_mapping(_parse_text(path.read_text(), path.name), source=str(path))


def _parse_text(text: str, filename: str) -> dict[str, Any]:
    try:
        if filename.lower().endswith(".json"):
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except Exception as exc:  # yaml/json syntax errors of many kinds
        raise InputError(f"mapping file {filename} could not be parsed: {exc}") from exc
    if not isinstance(data, dict):
        raise InputError(f"mapping file {filename} must hold a mapping (keys classes, encoding, ...)")
    return data


def _parse_mapping(data: Mapping[str, Any], *, source: str) -> LabelMapping:
    classes = [str(c) for c in data.get("classes") or []]
    encoding = str(data.get("encoding", "index"))
    if not classes:
        raise InputError(f"mapping {source} has no 'classes' list")
    if len({normalize_class_name(c) for c in classes}) != len(classes):
        raise InputError(f"mapping {source}: class names must be unique, got {classes}")
    if len(classes) >= IGNORE_INDEX:
        raise InputError(f"mapping {source}: at most {IGNORE_INDEX - 1} classes are supported")
    mapping = LabelMapping(classes=classes, encoding=encoding,  # type: ignore[arg-type]  # validated against ENCODINGS above
                           name=str(data.get("name", source)), description=str(data.get("description", "")))
    if encoding == "index":
        mapping.values = {_int_key(k, source): _class_ref(v, classes, source)
                          for k, v in (data.get("values") or {}).items()}
        if not mapping.values:
            raise InputError(f"mapping {source}: an index encoding needs 'values' (code -> class)")
    elif encoding == "palette":
        mapping.colors = _parse_colors(data, classes, source)
    elif encoding == "binary":
        if len(classes) != 2:
            raise InputError(f"mapping {source}: a binary encoding needs exactly 2 classes "
                             f"(negative, positive), got {classes}")
        mapping.threshold = float(data.get("threshold", 127))
    else:
        raise InputError(f"mapping {source}: encoding must be index, palette or binary, got {encoding!r}")
    background = data.get("background")
    if background is not None:
        index = _class_ref(background, classes, source)
        if index == IGNORE_INDEX:
            raise InputError(f"mapping {source}: 'background' must name a class, got {background!r}")
        mapping.background = classes[index]
    mapping.aliases = _parse_aliases(data.get("aliases") or {}, classes, source)
    return mapping


def _int_key(key: Any, source: str) -> int:
    try:
        return int(key)
    except (TypeError, ValueError):
        raise InputError(f"mapping {source}: label code {key!r} is not an integer") from None


def _class_ref(value: Any, classes: Sequence[str], source: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        if value == IGNORE_INDEX or 0 <= value < len(classes):
            return value
    elif normalize_class_name(str(value)) in _IGNORE_WORDS:
        return IGNORE_INDEX
    else:
        names = [normalize_class_name(c) for c in classes]
        if normalize_class_name(str(value)) in names:
            return names.index(normalize_class_name(str(value)))
    raise InputError(f"mapping {source}: {value!r} is not one of the classes {list(classes)} "
                     "(or 'ignore')")


def _parse_colors(data: Mapping[str, Any], classes: Sequence[str], source: str) -> dict[tuple[int, int, int], int]:
    colors: dict[tuple[int, int, int], int] = {}
    entries = [(k, v) for k, v in (data.get("colors") or {}).items()]
    entries += [("ignore", c) for c in (data.get("ignore_colors") or [])]
    for class_name, value in entries:
        index = _class_ref(class_name, classes, source)
        for color in _color_list(value, source):
            if color in colors and colors[color] != index:
                raise InputError(f"mapping {source}: colour {color} is given to two classes")
            colors[color] = index
    if not colors:
        raise InputError(f"mapping {source}: a palette encoding needs 'colors' (class -> [r, g, b])")
    return colors


def _color_list(value: Any, source: str) -> list[tuple[int, int, int]]:
    items = value if value and isinstance(value[0], (list, tuple)) else [value]
    out = []
    for item in items:
        if len(item) != 3 or not all(isinstance(c, int) and 0 <= c <= 255 for c in item):
            raise InputError(f"mapping {source}: colour {item!r} must be [r, g, b] with 0..255 integers")
        out.append((int(item[0]), int(item[1]), int(item[2])))
    return out


def _parse_aliases(data: Mapping[str, Any], classes: Sequence[str], source: str) -> dict[str, str]:
    aliases: dict[str, str] = {}
    for class_name, names in data.items():
        index = _class_ref(class_name, classes, source)
        if index == IGNORE_INDEX:
            raise InputError(f"mapping {source}: aliases must belong to a class, not {class_name!r}")
        for alias in [names] if isinstance(names, str) else names:
            aliases[normalize_class_name(alias)] = classes[index]
    return aliases


# ------------------------------------------------------------------------------------ label files


def read_raster(path: str | Path, *, rgb: bool = False) -> np.ndarray:
    """A label raster as (H, W) or (H, W, B). GeoTIFFs through rasterio, other files through
    Pillow; with ``rgb=True`` palette-mode ("P") PNGs are expanded to their colours."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"label file {path} does not exist")
    if path.stat().st_size == 0:
        raise InputError(f"label file {path} is empty (0 bytes); write or copy it again")
    try:
        return _read_raster(path, rgb)
    except (OSError, ValueError, SyntaxError) as exc:  # Pillow: OSError/UnidentifiedImageError
        raise InputError(f"label file {path} cannot be read: it is truncated or not an image "
                         f"({exc}); write or copy it again") from exc


def _read_raster(path: Path, rgb: bool) -> np.ndarray:
    if path.suffix.lower() in (".tif", ".tiff"):
        import rasterio

        with rasterio.open(path) as src:
            data = src.read()
        return data[0] if data.shape[0] == 1 else np.moveaxis(data, 0, -1)
    from PIL import Image

    with Image.open(path) as img:
        if rgb and img.mode not in ("RGB", "RGBA"):
            return np.array(img.convert("RGB"))
        if img.mode in ("I;16", "I;16B", "I;16L"):
            return np.array(img).astype(np.uint16)
        return np.array(img)


def load_label(path: str | Path, mapping: "LabelMapping | str | Path", *,
               unknown: Unknown = "error") -> np.ndarray:
    """Read and decode one label file into a (H, W) uint8 class-index map (255 = ignore)."""
    mapping = load_mapping(mapping)
    raw = read_raster(path, rgb=mapping.encoding == "palette")
    return mapping.decode(raw, unknown=unknown, name=str(path))


def find_label_files(path: str | Path) -> dict[str, Path]:
    """``{stem: file}`` for a single label file or every label raster directly inside a folder."""
    path = Path(path)
    if path.is_file():
        return {path.stem: path}
    if not path.is_dir():
        raise InputError(f"{path} is neither a label file nor a folder of label files")
    found: dict[str, Path] = {}
    for file in sorted(path.iterdir()):
        if file.suffix.lower() in LABEL_EXTENSIONS and file.is_file():
            if file.stem in found:
                raise InputError(f"two label files share the stem '{file.stem}' in {path}: "
                                 f"{found[file.stem].name} and {file.name}; keep one")
            found[file.stem] = file
    if not found:
        raise InputError(f"no label files ({', '.join(LABEL_EXTENSIONS)}) in {path}")
    return found

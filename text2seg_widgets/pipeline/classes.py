"""Class sets: the classes an annotator asks for, each with its text prompts (synonyms).

A class set is written as a comma list (``"building,road,water"``), inline with synonyms
(``"urban: building, houses; water: lake"``: classes separated by ``;``, each ``name: prompt,
prompt``), or as a small file with one class per line (a YAML mapping of ``name: [prompts]``
works too); :meth:`ClassSet.from_arg` is the one reader of a ``--classes`` value::

    building: building, roof, house
    road: road, street, highway
    water: water, lake, river
    background: ground, grass, field      # optional: the class named `background` is special

The class named ``background`` (case-insensitive) is not a target class: its prompts give the
CLIP branches something to prefer when a region matches none of the classes.
"""

from __future__ import annotations

import codecs
import colorsys
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import yaml

from text2seg_widgets.core.classfile import ClassEntry, ClassTextError, split_class_text
from text2seg_widgets.core.colors import class_color
from text2seg_widgets.errors import InputError

__all__ = ["ClassSpec", "ClassSet", "DEFAULT_BACKGROUND_PROMPTS", "default_color"]

DEFAULT_BACKGROUND_PROMPTS = ("background", "bare ground", "grass")

log = logging.getLogger(__name__)

# Distinct, colour-blind-aware first colours; later classes get evenly spaced hues.
_PALETTE = [(230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180),
            (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128)]

_FILE_SUFFIXES = (".txt", ".yaml", ".yml", ".csv")
_NAME_RE = re.compile(r"^[\w][\w \-\.()/']*$", re.UNICODE)


def _rgb(color: str) -> tuple[int, int, int]:
    c = color.lstrip("#")
    return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16)


def _hex(rgb: Sequence[int]) -> str:
    return "#" + "".join(f"{int(v):02x}" for v in rgb[:3])


def default_color(index: int) -> tuple[int, int, int]:
    """A distinct colour for the ``index``-th class (0-based) when its name says nothing; class
    sets colour classes by name first (:func:`text2seg_widgets.core.colors.class_color`)."""
    if index < len(_PALETTE):
        return _PALETTE[index]
    r, g, b = colorsys.hsv_to_rgb((index * 0.618034) % 1.0, 0.75, 0.95)
    return int(r * 255), int(g * 255), int(b * 255)


@dataclass(frozen=True)
class ClassSpec:
    """One class: its name, the prompts that describe it, and its display colour."""

    name: str
    prompts: tuple[str, ...]
    color: tuple[int, int, int]


class ClassSet:
    """An ordered set of target classes plus an optional background class.

    Label maps use 0 for background / no class and ``i`` for ``names[i - 1]``.
    """

    def __init__(self, classes: Sequence[ClassSpec], background: ClassSpec | None = None):
        if not classes and background is not None:
            raise InputError("the class list holds only 'background': background is not a class to "
                             "label but the prompts the CLIP branches prefer over weak matches; add "
                             "at least one class, e.g. --classes 'building: roof; background: grass'")
        if not classes:
            raise InputError("the class list is empty: give at least one class, e.g. --classes 'building,road'")
        seen: dict[str, str] = {}
        for spec in classes:
            key = spec.name.strip().lower()
            if key in seen:
                raise InputError(f"duplicate class name {spec.name!r} (also given as {seen[key]!r}); "
                                 "list each class once and put synonyms after a colon: 'building: building, roof'")
            if key == "background":
                raise InputError("'background' is reserved for the background class; pass it as background=...")
            seen[key] = spec.name
            if not spec.prompts:
                raise InputError(f"class {spec.name!r} has no prompts")
        if len(classes) > 254:
            raise InputError(f"{len(classes)} classes given; label maps hold at most 254 classes")
        self.classes: tuple[ClassSpec, ...] = tuple(classes)
        self.background = background

    # -- constructors --------------------------------------------------------------------
    @classmethod
    def from_names(cls, names: Iterable[str] | Mapping[str, Sequence[str]], *,
                   background: Sequence[str] | bool | None = None) -> "ClassSet":
        """From names (each its own prompt) or a mapping ``name -> prompts``.

        ``background``: True for the default background prompts, a list of prompts, or None/False.
        A ``background`` entry inside ``names`` is used as the background class.
        """
        items = list(names.items()) if isinstance(names, Mapping) else [(n, None) for n in names]
        specs: list[ClassSpec] = []
        bg_prompts: Sequence[str] | None = None
        for name, prompts in items:
            name = _clean_name(name)
            plist = _clean_prompts(prompts if prompts is not None else [name], name)
            if name.lower() == "background":
                bg_prompts = plist
                continue
            specs.append(ClassSpec(name, plist, _rgb(class_color(name, [_hex(s.color)
                                                                        for s in specs]))))
        if background is True:
            bg_prompts = bg_prompts or DEFAULT_BACKGROUND_PROMPTS
        elif background:
            bg_prompts = _clean_prompts(background, "background")
        bg = ClassSpec("background", tuple(bg_prompts), (0, 0, 0)) if bg_prompts else None
        return cls(specs, bg)

    @classmethod
    def parse(cls, text: str, *, background: Sequence[str] | bool | None = None) -> "ClassSet":
        """From inline text or a class file's text (the grammar is in the module doc).

        Entries are separated by new lines or ``;``. When no entry has a ``:``, every name in a
        comma list is a class (``"building,road"``); otherwise each entry is ``name: synonym,
        synonym`` (or a bare name) and the synonyms are the class's prompts. What cannot be read
        that way raises :class:`InputError` naming the entry."""
        try:
            entries = split_class_text(text)
        except ClassTextError as exc:
            raise InputError(str(exc)) from exc
        if not any(len(e.segments) > 1 for e in entries):
            names = [n for e in entries for n in e.segments[0]]
            if not names:
                raise InputError("the class list is empty: give at least one class, e.g. "
                                 "'building,road' or 'urban: building, houses; water: lake'")
            return cls.from_names(names, background=background)
        mapping: dict[str, list[str]] = {}
        for entry in entries:
            key, prompts = _entry(entry)
            if key.lower() in (k.lower() for k in mapping):
                raise InputError(f"duplicate class name {key!r} in the class list; list each "
                                 "class once with all its synonyms: 'name: synonym, synonym'")
            mapping[key] = prompts
        return cls.from_names(mapping, background=background)

    @classmethod
    def from_arg(cls, value: str, *,
                 background: Sequence[str] | bool | None = None) -> "ClassSet":
        """The ONE reader of a ``--classes`` value (``project create``, ``segment``,
        ``pseudo-label``, notebooks): the path of an existing class file (``.txt`` lines or a
        ``.yaml`` mapping), else inline text for :meth:`parse`. A value that looks like a file
        (ends in .txt/.yaml/.yml/.csv) but is not one raises :class:`InputError`."""
        value = str(value)
        path = Path(value.strip())
        if path.is_file():
            return cls.from_file(path, background=background)
        if path.suffix.lower() in _FILE_SUFFIXES and ":" not in value and "," not in value:
            raise InputError(f"class file {value!r} does not exist (looked in {Path.cwd()}); "
                             "give an existing file or the classes inline, e.g. "
                             "'building: building, roof; water: lake, river'")
        return cls.parse(value, background=background)

    @classmethod
    def from_file(cls, path: str | Path, *, background: Sequence[str] | bool | None = None) -> "ClassSet":
        """From a ``.txt`` (``name: prompts`` lines) or ``.yaml``/``.yml`` (mapping) file."""
        path = Path(path)
        if not path.is_file():
            raise InputError(f"class file {path} does not exist")
        text = _read_text(path)
        if path.suffix.lower() in (".yaml", ".yml"):
            data = yaml.safe_load(text)
            if not isinstance(data, dict):
                raise InputError(f"{path}: expected a mapping 'name: [prompts]' at the top level")
            return cls.from_names({str(k): (v if isinstance(v, list) else
                                            [p for p in str(v or k).split(",")]) for k, v in data.items()},
                                  background=background)
        return cls.parse(text, background=background)

    # -- views ---------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.classes)

    def __iter__(self):
        return iter(self.classes)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.classes]

    @property
    def colors(self) -> list[tuple[int, int, int]]:
        return [c.color for c in self.classes]

    def index(self, name: str) -> int:
        """0-based position of a class by name (case-insensitive)."""
        for i, spec in enumerate(self.classes):
            if spec.name.lower() == name.lower():
                return i
        raise InputError(f"unknown class {name!r}; known classes: {', '.join(self.names)}")

    def prompt_table(self) -> list[tuple[int, str]]:
        """Every (class index, prompt) pair; background prompts get index -1."""
        rows = [(i, p) for i, spec in enumerate(self.classes) for p in spec.prompts]
        if self.background is not None:
            rows += [(-1, p) for p in self.background.prompts]
        return rows

    def to_dict(self) -> dict:
        out = {c.name: list(c.prompts) for c in self.classes}
        if self.background is not None:
            out["background"] = list(self.background.prompts)
        return out

    def __repr__(self) -> str:
        return f"ClassSet({self.to_dict()!r})"


def _entry(entry: ClassEntry) -> tuple[str, list[str]]:
    """``name: synonym, synonym`` (or a bare name) -> (name, prompts)."""
    if len(entry.segments) > 2:
        raise InputError(f"cannot read class entry {entry.text!r}: it has more than one ':'; "
                         "separate classes with ';' or new lines, e.g. 'urban: building, houses; "
                         "water: lake', and put a prompt holding ':' in double quotes")
    names = entry.segments[0]
    if len(names) > 1:
        raise InputError(f"cannot read class entry {entry.text!r}: several names without a "
                         "':'; write 'name: synonym, synonym' or give each class its own entry")
    if not names:
        raise InputError(f"a class name is empty in entry {entry.text!r}; write 'name: synonym, "
                         "synonym'")
    key = _clean_name(names[0])
    prompts = list(entry.segments[1]) if len(entry.segments) > 1 else []
    return key, prompts or [key]


def _read_text(path: Path) -> str:
    """A class file's text: UTF-8 (a leading byte-order mark is accepted and dropped, with a
    warning); anything else is a clear :class:`InputError`."""
    data = path.read_bytes()
    if data.startswith(codecs.BOM_UTF8):
        log.warning("class file %s starts with a UTF-8 byte-order mark (BOM); it was ignored", path)
        data = data[len(codecs.BOM_UTF8):]
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise InputError(f"class file {path} is UTF-16 (it starts with a UTF-16 byte-order mark, "
                         "BOM); save it as UTF-8")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"class file {path} is not UTF-8 text (byte 0x{data[exc.start]:02x} at "
                         f"position {exc.start}); save it as UTF-8") from exc


def _clean_name(name: object) -> str:
    text = str(name).strip()
    if not text:
        raise InputError("a class name is empty (check for a trailing comma in the class list)")
    if not _NAME_RE.match(text):
        raise InputError(f"class name {text!r} has characters that are not allowed; use letters, digits, "
                         "spaces, '-', '_', '.', '/', apostrophes or parentheses")
    return text


def _clean_prompts(prompts: Iterable[object], name: str) -> tuple[str, ...]:
    out: list[str] = []
    for p in prompts:
        text = " ".join(str(p).split())
        if text and text.lower() not in (q.lower() for q in out):
            out.append(text)
    if not out:
        raise InputError(f"class {name!r} has no prompts")
    return tuple(out)

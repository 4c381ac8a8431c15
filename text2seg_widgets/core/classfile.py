"""The class-file syntax, read and written in one place (what the tool writes, it reads back).

A class file (or an inline ``--classes`` value) is a list of entries separated by new lines or
``;``; ``#`` starts a comment to the end of the line; an entry is ``name: prompt, prompt`` or a
comma list of names. Any name or prompt may be written in double quotes, and then holds any
character, the separators ``: ; , #`` included (``\\"`` and ``\\\\`` escape a quote and a
backslash inside quotes)::

    building: roof, house
    road: "street; avenue", highway      # the prompt is 'street; avenue'

:func:`split_class_text` turns text into entries, each a list of segments split at ``:`` (outside
quotes), each segment a list of items split at ``,``; :func:`format_class_text` writes a mapping
``name -> prompts`` that :func:`split_class_text` reads back to the same mapping.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["ClassEntry", "split_class_text", "format_class_text", "quote_item"]

_SPECIAL = set(':;,#"\\\n')


@dataclass(frozen=True)
class ClassEntry:
    """One entry: its ``:``-separated segments, each a tuple of ``,``-separated items (unquoted,
    stripped, empty ones dropped), and the entry's text for messages."""

    segments: tuple[tuple[str, ...], ...]
    text: str


class ClassTextError(ValueError):
    """The text cannot be split (an unclosed quote); the message says where."""


def _scan(text: str) -> list[tuple[str, list[list[tuple[str, bool]]]]]:
    """Entries as (raw text, segments of items); an item is (text, was quoted)."""
    entries: list[tuple[str, list[list[tuple[str, bool]]]]] = []
    raw: list[str] = []
    segments: list[list[tuple[str, bool]]] = [[]]
    item: list[str] = []
    quoted = in_quotes = comment = False
    i = 0

    def end_item() -> None:
        nonlocal item, quoted
        text_ = "".join(item)
        segments[-1].append((text_ if quoted else text_.strip(), quoted))
        item, quoted = [], False

    def end_entry() -> None:
        nonlocal segments, raw
        end_item()
        entries.append(("".join(raw).strip(), segments))
        segments, raw = [[]], []

    while i < len(text):
        ch = text[i]
        if comment:
            if ch == "\n":
                comment = False
                end_entry()
            i += 1
            continue
        if in_quotes:
            raw.append(ch)
            if ch == "\\" and i + 1 < len(text) and text[i + 1] in '"\\':
                item.append(text[i + 1])
                raw.append(text[i + 1])
                i += 2
                continue
            if ch == '"':
                in_quotes = False
            else:
                item.append(ch)
            i += 1
            continue
        if ch == '"' and not "".join(item).strip():
            in_quotes = quoted = True
            item = []
            raw.append(ch)
        elif ch == "#":
            comment = True
        elif ch in "\n;":
            end_entry()
        elif ch == ":":
            raw.append(ch)
            end_item()
            segments.append([])
        elif ch == ",":
            raw.append(ch)
            end_item()
        else:
            raw.append(ch)
            if not quoted:
                item.append(ch)
        i += 1
    if in_quotes:
        raise ClassTextError(f"a double quote is not closed in {''.join(raw).strip()!r}; close it "
                             "or remove it")
    end_entry()
    return entries


def split_class_text(text: str) -> list[ClassEntry]:
    """The non-empty entries of ``text`` (see the module doc); :class:`ClassTextError` for an
    unclosed quote."""
    out = []
    for raw, segments in _scan(text):
        segs = tuple(tuple(t for t, q in seg if t or q) for seg in segments)
        if any(segs):
            out.append(ClassEntry(segs, raw))
    return out


def quote_item(item: str) -> str:
    """``item`` as it must be written: quoted when it holds a separator, a quote, a backslash,
    a line break or space at its ends; as it is otherwise."""
    if item and not (_SPECIAL & set(item)) and item == item.strip():
        return item
    return '"' + item.replace("\\", "\\\\").replace('"', '\\"') + '"'


def format_class_text(classes: Mapping[str, Sequence[str]]) -> str:
    """``name: prompt, prompt`` lines, one class a line, quoted where needed."""
    return "".join(f"{quote_item(name)}: {', '.join(quote_item(p) for p in prompts)}\n"
                   for name, prompts in classes.items())

"""A test that guards the house: every import of the package, read from the source with ``ast``.

It checks, for every ``import`` statement anywhere in ``text2seg_widgets`` (module level, inside
functions, under ``if TYPE_CHECKING:``):

(a) the package map of ``DESIGN.md`` section 2: a folder imports only the folders below it
    (:data:`ALLOWED`); ``errors.py`` is importable by all; nothing imports ``cli``; the top-level
    package (whose flat API may offer anything) is imported only by ``cli``, except for its
    metadata (``from text2seg_widgets import __version__``);
(b) the UI libraries (ipywidgets, ipyleaflet, ipyevents) only in ``widgets/``; no torch in
    ``core/``, ``store/``, ``export/``, ``insights/``;
(c) no import cycle between modules (every import is an edge, TYPE_CHECKING ones included; a
    package's ``__init__`` is a node of its own, reached only by importing the package itself).

Each failure lists every violation with its file and line, so one run shows all that is left.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import text2seg_widgets

PACKAGE = "text2seg_widgets"
ROOT = Path(text2seg_widgets.__file__).resolve().parent

#: folder -> the folders it may import (itself and ``errors`` always allowed); "*" = anything
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "imagery": {"core"},
    "models": {"imagery", "core"},
    "pipeline": {"models", "imagery", "core"},
    "store": {"core"},
    "export": {"store", "imagery", "core"},
    "insights": {"store", "core"},
    "widgets": {"store", "pipeline", "models", "imagery", "export", "insights", "core"},
    "engines": {"pipeline", "store", "models", "imagery", "export", "core"},  # engines/scene.py writes scene files
    "eval": {"imagery", "store", "core", "models"},
    "cli": {"*"},
    "errors": set(),
    # the top-level package: its flat API may offer anything (lazily), except the command line
    "": {"core", "imagery", "models", "pipeline", "store", "export", "insights", "widgets", "engines", "eval"},
}
UI_LIBRARIES = {"ipywidgets", "ipyleaflet", "ipyevents"}
NO_TORCH = {"core", "store", "export", "insights"}


@dataclass(frozen=True)
class Import:
    source: str  # importing module
    target: str  # imported module (ours) or top-level distribution name (third party)
    line: int
    ours: bool
    metadata: bool = False  # `from text2seg_widgets import __version__`: package metadata only

    def where(self) -> str:
        return f"{_path_of(self.source)}:{self.line}"


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join([PACKAGE, *parts])] = path
    return out


MODULES = _modules()


def _path_of(module: str) -> str:
    return str(MODULES[module].relative_to(ROOT.parent))


def _is_package(module: str) -> bool:
    return MODULES[module].name == "__init__.py"


def _folder(module: str) -> str:
    parts = module.split(".")
    return "" if len(parts) == 1 else parts[1]


def _resolve_from(source: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = source.split(".") if _is_package(source) else source.split(".")[:-1]
    base = base[:len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports_of(module: str) -> list[Import]:
    tree = ast.parse(MODULES[module].read_text(), filename=str(MODULES[module]))
    found: list[Import] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.append(_classify(module, alias.name, node.lineno))
        elif isinstance(node, ast.ImportFrom):
            base = _resolve_from(module, node)
            if base == PACKAGE and all(a.name.startswith("__") for a in node.names):
                found.append(Import(module, PACKAGE, node.lineno, True, metadata=True))
            elif base == PACKAGE or base.startswith(PACKAGE + "."):
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    found.append(_classify(module, sub if sub in MODULES else base, node.lineno))
            elif base:
                found.append(_classify(module, base, node.lineno))
    return found


def _classify(source: str, name: str, line: int) -> Import:
    if name == PACKAGE or name.startswith(PACKAGE + "."):
        target = name
        while target not in MODULES and "." in target:  # an attribute of a module, not a module
            target = target.rsplit(".", 1)[0]
        return Import(source, target, line, True)
    return Import(source, name.split(".")[0], line, False)


IMPORTS = [imp for module in MODULES for imp in _imports_of(module)]


def _report(title: str, lines: list[str]) -> str:
    return f"{title} ({len(lines)}):\n  " + "\n  ".join(sorted(set(lines)))


def test_the_package_map_is_respected():
    bad = []
    for imp in IMPORTS:
        if not imp.ours or imp.source == imp.target or imp.metadata:
            continue
        src, dst = _folder(imp.source), _folder(imp.target)
        allowed = ALLOWED[src]
        if dst == "cli" and src != "cli":
            bad.append(f"{imp.where()}: {imp.target} - nothing may import the command line (cli)")
        elif dst == "" and src != "cli":
            bad.append(f"{imp.where()}: imports the top-level package {PACKAGE}; import the module it "
                       "comes from instead")
        elif dst not in {src, "errors"} and "*" not in allowed and dst not in allowed:
            bad.append(f"{imp.where()}: {src or PACKAGE}/ imports {imp.target} ({dst}/); "
                       f"{src or PACKAGE}/ may import only {sorted(allowed | {'errors'})}")
    assert not bad, _report("imports against the package map of DESIGN.md section 2", bad)


def test_ui_libraries_stay_in_widgets_and_torch_stays_out_of_the_data_layers():
    bad = []
    for imp in IMPORTS:
        if imp.ours:
            continue
        folder = _folder(imp.source)
        if imp.target in UI_LIBRARIES and folder != "widgets":
            bad.append(f"{imp.where()}: {imp.target} outside widgets/")
        if imp.target == "torch" and folder in NO_TORCH:
            bad.append(f"{imp.where()}: torch in {folder}/")
    assert not bad, _report("third-party imports in the wrong folder", bad)


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    comp.append(member)
                    if member == node:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def test_no_import_cycles():
    edges: dict[str, set[str]] = defaultdict(set)
    lines: dict[tuple[str, str], int] = {}
    for module in MODULES:
        edges[module]
    for imp in IMPORTS:
        if imp.ours and imp.source != imp.target:
            edges[imp.source].add(imp.target)
            lines.setdefault((imp.source, imp.target), imp.line)
    bad = []
    for comp in _cycles(edges):
        members = set(comp)
        links = [f"{_path_of(a)}:{lines[(a, b)]} -> {b}" for a in comp for b in sorted(edges[a] & members)]
        bad.append("cycle between " + ", ".join(comp) + "\n      " + "\n      ".join(links))
    assert not bad, _report("import cycles", bad)


def test_the_import_reader_sees_every_kind_of_import():
    """The checks above are only as good as the reader: it must see imports inside functions, under
    TYPE_CHECKING, relative ones, and resolve ``from package import module`` to the module."""
    by_source = defaultdict(set)
    for imp in IMPORTS:
        by_source[imp.source].add((imp.target, imp.ours))
    # a function-level import (the engines load the pipeline lazily)
    assert ("text2seg_widgets.pipeline.pipeline", True) in by_source["text2seg_widgets.engines.local"]
    # `from text2seg_widgets.core import Candidate` is the package core, not an attribute module
    assert ("text2seg_widgets.core", True) in by_source["text2seg_widgets.pipeline.tiles"]
    assert ("text2seg_widgets.imagery.instances", True) in by_source["text2seg_widgets.pipeline.tiles"]
    assert ("torch", False) in by_source["text2seg_widgets.models.device"]
    # TYPE_CHECKING blocks are parsed too (ast.walk reaches every statement)
    code = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from text2seg_widgets.store import x\n"
    nodes = [n for n in ast.walk(ast.parse(code)) if isinstance(n, ast.ImportFrom)]
    assert [n.module for n in nodes] == ["typing", "text2seg_widgets.store"]
    # a two-module cycle is found, a chain is not
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_flat_api_resolves_every_name_and_loads_heavy_libraries_lazily():
    import subprocess
    import sys

    code = ("import sys, text2seg_widgets as t; heavy = sorted(m for m in ('torch', 'ipywidgets', 'ipyleaflet') "
            "if m in sys.modules); missing = [n for n in t.__all__ if getattr(t, n, None) is None]; "
            "print(heavy, missing, sorted(set(('Project', 'Annotator', 'load_models', 'segment_array')) - set(t.__all__)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    # nothing heavy at import; every name resolves (resolving loads them); the lazy names are listed
    assert out.stdout.strip() == "[] [] []", out.stdout + out.stderr


TESTS_ROOT = ROOT.parent / "tests"
BENCHMARKS_ROOT = ROOT.parent / "benchmarks"


def test_tests_and_benchmarks_use_the_cli_only_as_users_do():
    """Outside ``tests/cli/`` (the tests of the command line itself), tests and benchmarks import
    nothing of ``text2seg_widgets.cli`` but its entry point ``main`` (what a user runs): library
    code they need lives below the CLI."""
    bad = []
    files = [p for p in [*TESTS_ROOT.rglob("*.py"), *BENCHMARKS_ROOT.rglob("*.py")]
             if (TESTS_ROOT / "cli") not in p.parents]
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(f"{PACKAGE}.cli"):
                if node.module != f"{PACKAGE}.cli" or [a.name for a in node.names] != ["main"]:
                    bad.append(f"{path.relative_to(ROOT.parent)}:{node.lineno} imports {node.module}")
            elif isinstance(node, ast.Import):
                bad += [f"{path.relative_to(ROOT.parent)}:{node.lineno} imports {a.name}" for a in node.names
                        if a.name.startswith(f"{PACKAGE}.cli")]
    assert not bad, "tests/benchmarks import CLI internals (move them to tests/cli/ or below cli/):\n" + \
        "\n".join(bad)

"""The widgets package is built from parts: no mixins, nothing imports annotator.py, no cycles."""

from __future__ import annotations

import ast
from pathlib import Path

import text2seg_widgets.widgets as widgets_pkg

PKG = Path(widgets_pkg.__file__).parent
PREFIX = "text2seg_widgets.widgets."


def widget_imports() -> dict[str, set[str]]:
    """module name -> the widgets modules it imports (TYPE_CHECKING and function-level included)."""
    graph: dict[str, set[str]] = {}
    for path in sorted(PKG.glob("*.py")):
        name = path.stem
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                if node.module.startswith(PREFIX):
                    deps.add(node.module[len(PREFIX):].split(".")[0])
                elif node.module == "text2seg_widgets.widgets":
                    deps.update(a.name for a in node.names if (PKG / f"{a.name}.py").exists())
            elif isinstance(node, ast.Import):
                deps.update(a.name[len(PREFIX):].split(".")[0] for a in node.names if a.name.startswith(PREFIX))
        graph[name] = deps - {name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                return stack[stack.index(dep):] + [dep]
            if dep not in state:
                found = visit(dep)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_module_but_the_package_init_imports_annotator() -> None:
    graph = widget_imports()
    assert sorted(m for m, deps in graph.items() if "annotator" in deps) == ["__init__"]


def test_no_import_cycles_in_widgets() -> None:
    graph = widget_imports()
    graph.pop("__init__")
    assert find_cycle(graph) is None


def test_annotator_is_composed_not_mixed() -> None:
    from text2seg_widgets.widgets import Annotator

    assert Annotator.__mro__ == (Annotator, object)

"""The import structure: dependencies point one way, from the adapters to the core.

Every module under bridge/ and adapters/ is read with `ast` (nothing is imported), and
every import counts: at the top, under `TYPE_CHECKING`, and inside a function. The
core (`bridge`) imports no adapter, except the composition root (`bridge/app.py` and
`bridge/__main__.py`), which wires the adapters in; adapters reach the store only
through the core's services; and no modules import each other in a circle.

`pytest tests/test_layering.py -s` prints which package imports which, top floor first.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bridge", "adapters")
COMPOSITION_ROOT = frozenset({"bridge.app", "bridge.__main__"})


@dataclass(frozen=True, slots=True)
class Import:
    """One import statement's target, resolved to a project module."""

    importer: str
    imported: str
    line: int

    def __str__(self) -> str:
        return f"{self.importer} (line {self.line}) imports {self.imported}"


def module_files(root: Path = ROOT) -> dict[str, Path]:
    """Every project module by dotted name (a package by its own name)."""
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _absolute(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The dotted base of a `from ... import` (relative ones resolved against `module`)."""
    if node.level == 0:
        return node.module or ""
    parts = module.split(".")
    # A package's own module is its __init__: `from . import x` stays inside it.
    keep = len(parts) - node.level + (1 if is_package else 0)
    base = ".".join(parts[:keep])
    return f"{base}.{node.module}" if node.module else base


def _project_module(name: str, modules: Iterable[str]) -> str | None:
    """The most specific project module that `name` names or lies in; None outside."""
    known = set(modules)
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in known:
            return candidate
    return None


def imports_in(
    module: str, source: str, modules: Iterable[str], is_package: bool = False
) -> list[Import]:
    """Every project module `source` imports, wherever the import statement stands."""
    known = set(modules)
    found: list[Import] = []
    for node in ast.walk(ast.parse(source)):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(module, is_package, node)
            # `from pkg import name` imports the module pkg.name when there is one.
            targets = [f"{base}.{alias.name}" for alias in node.names]
        for target in targets:
            resolved = _project_module(target, known)
            if resolved is not None and resolved != module:
                found.append(Import(module, resolved, node.lineno))
    return found


def all_imports(root: Path = ROOT) -> list[Import]:
    """The imports of every project module."""
    files = module_files(root)
    found: list[Import] = []
    for module, path in files.items():
        source = path.read_text(encoding="utf-8")
        found.extend(imports_in(module, source, files, path.name == "__init__.py"))
    return found


def graph_of(imports: Iterable[Import]) -> dict[str, set[str]]:
    """Who imports whom."""
    graph: defaultdict[str, set[str]] = defaultdict(set)
    for item in imports:
        graph[item.importer].add(item.imported)
        graph.setdefault(item.imported, set())
    return dict(graph)


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's components, each sorted; a dependency comes before what depends on it."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        # Iterative: a deep chain of imports must not hit the recursion limit.
        work: list[tuple[str, Iterator[str]]] = [(node, iter(sorted(graph[node])))]
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        while work:
            current, successors = work[-1]
            for successor in successors:
                if successor not in index:
                    index[successor] = low[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(sorted(graph[successor]))))
                    break
                if successor in on_stack:
                    low[current] = min(low[current], index[successor])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[current])
                if low[current] == index[current]:
                    component: list[str] = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == current:
                            break
                    components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def circle_through(graph: dict[str, set[str]], members: list[str]) -> list[str]:
    """One concrete circle inside a strongly connected set, as a path back to its start."""
    inside = set(members)
    start = members[0]
    paths = {start: [start]}
    queue = [start]
    while queue:
        current = queue.pop(0)
        for successor in sorted(graph[current] & inside):
            if successor == start:
                return [*paths[current], start]
            if successor not in paths:
                paths[successor] = [*paths[current], successor]
                queue.append(successor)
    raise AssertionError(f"{members} is not strongly connected")


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import circle, one path each."""
    return [
        circle_through(graph, component)
        for component in strongly_connected(graph)
        if len(component) > 1
    ]


def package_of(module: str) -> str:
    """The unit the layering is drawn in: `bridge.api`, `bridge.errors`, `adapters.tovie`."""
    return ".".join(module.split(".")[:2])


def layering(graph: dict[str, set[str]]) -> str:
    """Which package imports which, top floor first (a floor imports only floors below it)."""
    packages: defaultdict[str, set[str]] = defaultdict(set)
    for importer, imported in graph.items():
        packages[package_of(importer)].update(
            package_of(m) for m in imported if package_of(m) != package_of(importer)
        )
    floor: dict[str, int] = {}
    for component in strongly_connected(dict(packages)):
        below = [floor[d] for m in component for d in packages[m] if d not in component]
        for member in component:
            floor[member] = 1 + max(below, default=0)
    lines = []
    for package in sorted(packages, key=lambda p: (-floor[p], p)):
        uses = ", ".join(sorted(packages[package])) or "-"
        lines.append(f"floor {floor[package]:>2}  {package:<28} -> {uses}")
    return "\n".join(lines)


def _report(problems: Iterable[object], graph: dict[str, set[str]]) -> str:
    listed = "\n".join(f"  {problem}" for problem in problems)
    return f"{listed}\n\nThe layering now:\n{layering(graph)}"


# -- the rules -------------------------------------------------------------------------


def test_only_the_composition_root_imports_adapters() -> None:
    imports = all_imports()
    graph = graph_of(imports)
    print(f"\n{layering(graph)}")
    wrong = [
        item
        for item in imports
        if item.importer.startswith("bridge")
        and item.importer not in COMPOSITION_ROOT
        and item.imported.startswith("adapters")
    ]
    assert not wrong, "the core imports adapters:\n" + _report(wrong, graph)


def test_adapters_reach_the_store_only_through_the_core_services() -> None:
    imports = all_imports()
    wrong = [
        item
        for item in imports
        if item.importer.startswith("adapters") and item.imported.startswith("bridge.db")
    ]
    assert not wrong, "adapters import the store:\n" + _report(wrong, graph_of(imports))


def test_no_modules_import_each_other_in_a_circle() -> None:
    graph = graph_of(all_imports())
    found = [" -> ".join(circle) for circle in circles(graph)]
    assert not found, "import circles:\n" + _report(found, graph)


# -- the walk itself ---------------------------------------------------------------------

MODULES = ("bridge.core", "bridge.late", "bridge.pkg", "bridge.pkg.inner", "adapters.base")
SOURCE = """
from __future__ import annotations
from typing import TYPE_CHECKING
import json
from bridge import core
if TYPE_CHECKING:
    from adapters.base import Thing
def later():
    import bridge.late.sub
    from .pkg import inner
"""


def test_the_walk_finds_imports_under_type_checking_and_in_functions() -> None:
    found = {(i.imported, i.line) for i in imports_in("bridge.mod", SOURCE, MODULES)}
    assert found == {
        ("bridge.core", 5),
        ("adapters.base", 7),
        ("bridge.late", 9),
        ("bridge.pkg.inner", 10),
    }


def test_a_package_resolves_relative_imports_inside_itself() -> None:
    source = "from . import inner\nfrom .. import core\n"
    found = {i.imported for i in imports_in("bridge.pkg", source, MODULES, is_package=True)}
    assert found == {"bridge.pkg.inner", "bridge.core"}


def test_a_circle_is_found_and_drawn_as_a_path() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set()}
    assert circles(graph) == [["a", "b", "c", "a"]]
    assert "floor" in layering({"bridge.x": {"bridge.y"}, "bridge.y": set()})

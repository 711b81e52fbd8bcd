"""The project's packages import each other without circles, counting the imports inside functions.

An import inside a function (or under ``if TYPE_CHECKING:``) only hides a circle from the interpreter;
a reader still has to hold both modules in mind at once. This walks every ``import`` and
``from ... import`` statement, at any depth, of ``hb_core``, ``hb_airflow`` (plugins/hb_airflow) and
``hb_emulator`` (where present), and fails naming each cycle found, as a path ``a -> b -> a``.

What counts as an edge of module ``m``:

- ``import a.b.c``: ``a.b.c``, and the packages ``a`` and ``a.b`` it runs first;
- ``from a.b import c``: ``a.b.c`` when that is a module, else ``a.b`` (the name comes from its
  ``__init__``), and the packages ``a`` and ``a.b`` it runs first;
- except a package that contains ``m``: the interpreter has run it (or is running it) before ``m``, so
  the statement runs nothing. A *name* taken from such a package's ``__init__`` does count (``from
  hb_core import TuningConfig`` inside ``hb_core.controller``): it is there only if the ``__init__`` got
  that far.
"""

from __future__ import annotations

import ast
from collections import deque
from collections.abc import Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"hb_core": ROOT / "hb_core", "hb_airflow": ROOT / "plugins" / "hb_airflow",
            "hb_emulator": ROOT / "hb_emulator"}


def modules(packages: Mapping[str, Path]) -> dict[str, Path]:
    """Every module of the packages (a package is its ``__init__``), by dotted name."""
    found = {}
    for package, folder in packages.items():
        for path in sorted(folder.rglob("*.py")) if folder.is_dir() else ():
            parts = [package, *path.relative_to(folder).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _prefixes(dotted: str) -> list[str]:
    parts = dotted.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The project modules ``name`` imports anywhere in its body (the module docstring's rules)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    containing = {*_prefixes(name), name}
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                targets.update(t for t in [*_prefixes(alias.name), alias.name] if t not in containing)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            targets.update(t for t in _prefixes(base) if t not in containing)
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                if submodule in known:
                    targets.add(submodule)
                else:
                    targets.add(base)
    return {t for t in targets if t in known and t != name}


def graph(packages: Mapping[str, Path] = PACKAGES) -> dict[str, set[str]]:
    found = modules(packages)
    known = set(found)
    return {name: imports_of(name, path, known) for name, path in found.items()}


def components(edges: Mapping[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            advanced = False
            for succ in successors:
                if succ not in index:
                    index[succ] = low[succ] = len(index)
                    stack.append(succ)
                    on_stack.add(succ)
                    work.append((succ, iter(sorted(edges[succ]))))
                    advanced = True
                    break
                if succ in on_stack:
                    low[node] = min(low[node], index[succ])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    component.append(top)
                    if top == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def shortest_cycle(edges: Mapping[str, set[str]], start: str) -> list[str]:
    """A shortest path ``start -> ... -> start`` (breadth first); [] when there is none."""
    parent: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for succ in sorted(edges[node]):
            if succ == start:
                path = [node]
                while path[-1] != start:
                    path.append(parent[path[-1]])
                return [*reversed(path), start]
            if succ not in parent:
                parent[succ] = node
                queue.append(succ)
    return []


def cycles(edges: Mapping[str, set[str]]) -> list[str]:
    """One line per circle: a shortest cycle through its first module, then every module caught in it."""
    return [" -> ".join(shortest_cycle(edges, component[0])) + f"  (all of: {', '.join(component)})"
            for component in components(edges)]


def test_no_import_cycles() -> None:
    found = cycles(graph())
    assert not found, "import cycles (imports inside functions count):\n" + "\n".join(found)


def test_the_walk_covers_the_packages() -> None:
    edges = graph()
    assert {"hb_core.controller", "hb_core.strategies.factory", "hb_airflow.spec"} <= set(edges)
    assert "hb_core.strategies" in edges["hb_core.controller"]
    assert "hb_airflow.aws" in edges["hb_airflow.spec"]  # imported inside build_store and build_backend only


def _package(root: Path, files: Mapping[str, str]) -> dict[str, Path]:
    for relative, text in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text, encoding="utf-8")
    return {"pkg": root / "pkg"}


def test_function_level_type_checking_and_relative_imports_count(tmp_path: Path) -> None:
    packages = _package(tmp_path, {
        "pkg/__init__.py": "from pkg.a import A\n",
        "pkg/a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.b import B\nA = 1\n",
        "pkg/b.py": "def f():\n    from . import c\n    return c\n",
        "pkg/c.py": "import pkg.sub.d\n",
        "pkg/sub/__init__.py": "",
        "pkg/sub/d.py": "from .. import a\nfrom . import e\n",
        "pkg/sub/e.py": "",
    })
    edges = graph(packages)
    assert edges == {
        "pkg": {"pkg.a"},
        "pkg.a": {"pkg.b"},
        "pkg.b": {"pkg.c"},
        "pkg.c": {"pkg.sub", "pkg.sub.d"},  # import pkg.sub.d runs pkg.sub first; pkg contains pkg.c
        "pkg.sub": set(),
        "pkg.sub.d": {"pkg.a", "pkg.sub.e"},
        "pkg.sub.e": set(),
    }
    assert cycles(edges) == ["pkg.a -> pkg.b -> pkg.c -> pkg.sub.d -> pkg.a  (all of: pkg.a, pkg.b, pkg.c, pkg.sub.d)"]


@pytest.mark.parametrize(("line", "edge"), [
    ("from pkg import A", True),  # a name from the package's __init__: there only if it got that far
    ("from pkg import a", False),  # a submodule: the __init__ (already running) is not re-entered for it
    ("import pkg.a", False),
])
def test_an_import_from_a_containing_package(tmp_path: Path, line: str, edge: bool) -> None:
    packages = _package(tmp_path, {"pkg/__init__.py": "from pkg.b import B\nA = 1\n", "pkg/a.py": "",
                                   "pkg/b.py": f"{line}\nB = 2\n"})
    assert ("pkg" in graph(packages)["pkg.b"]) is edge
    assert bool(cycles(graph(packages))) is edge

"""The module import graph: no cycle between modules, and the packages' arrows run one way.

    replayd.server.app (the composition root) → may import every package
    replayd.player  →  replayd.server  →  replayd.scrubbing

Every import counts, those inside functions (or under ``if TYPE_CHECKING``) too: an import moved into
a function to dodge a cycle at import time is still a cycle in the design. docs/architecture.md
("What may import what") states the same rules.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.harness import REPO

PACKAGES = ("server", "player", "scrubbing")  # the repo's folders, installed as replayd.<folder>
# What each package may import of ours besides itself.
MAY_IMPORT = {"scrubbing": set(), "server": {"scrubbing"}, "player": {"server", "scrubbing"}}
COMPOSITION_ROOT = "replayd.server.app"  # the app factory: it wires the player in


def module_files(root: Path) -> dict[str, Path]:
    """``replayd.<package>.<...>`` → its file, for every module of the packages under ``root``: the C
    extensions (``_apart``, ``_domwalk``) by their stubs, which import nothing of ours, as the C does not."""
    modules = {}
    for package in PACKAGES:
        sources = [*(root / package).rglob("*.py"), *(p for p in (root / package).rglob("*.pyi")
                                                        if not p.with_suffix(".py").exists())]
        for path in sorted(sources):
            parts = ["replayd", *path.relative_to(root).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def imported_names(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Every name ``module`` imports, absolute (relative imports resolved), wherever the import stands.
    ``from package import submodule`` names the submodule (``from . import timeline``)."""
    is_package = path.name == "__init__.py"
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[:len(base) - node.level + (1 if is_package else 0)]
                origin = ".".join([*base, node.module] if node.module else base)
            else:
                origin = node.module or ""
            for alias in node.names:
                submodule = f"{origin}.{alias.name}"
                names.add(submodule if submodule in modules else origin)
    return names


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module → the modules of ours it imports (a name resolves to the longest module it starts with)."""
    modules = module_files(root)
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        targets = set()
        for name in imported_names(module, path, modules):
            parts = name.split(".")
            for end in range(len(parts), 1, -1):
                if (target := ".".join(parts[:end])) in modules:
                    if target != module:
                        targets.add(target)
                    break
        graph[module] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:  # the graph is small: recursion is fine
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """``a → b`` for each import of a package that ``a``'s package may not import."""
    wrong = []
    for module, targets in sorted(graph.items()):
        package = module.split(".")[1]
        for target in sorted(targets):
            other = target.split(".")[1]
            if other != package and other not in MAY_IMPORT[package] and module != COMPOSITION_ROOT:
                wrong.append(f"{module} → {target}")
    return wrong


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph(REPO)


def test_the_graph_sees_every_module_and_the_imports_inside_functions(graph):
    assert len(graph) > 60
    assert "replayd.player.routes" in graph[COMPOSITION_ROOT]
    assert "replayd.scrubbing.events" in graph["replayd.player.timeline"]


def test_no_import_cycle_between_modules(graph):
    assert cycles(graph) == []


def test_packages_import_only_the_packages_below_them(graph):
    assert upward_imports(graph) == []


def test_the_checks_catch_a_planted_cycle_and_an_upward_import(tmp_path):
    """The same checks on a small tree with one of each wrong thing (and what is allowed)."""
    files = {
        "scrubbing/__init__.py": "",
        "scrubbing/a.py": "def f():\n    from replayd.server import b  # hidden in a function\n",
        "server/__init__.py": "",
        "server/b.py": "from .c import x\nfrom replayd.scrubbing import a\n",
        "server/c.py": "def g():\n    from . import b\n",  # b ↔ c
        "server/app.py": "from replayd.player import views\n",  # the composition root: allowed
        "player/__init__.py": "",
        "player/views.py": "from replayd.server import c\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    planted = import_graph(tmp_path)
    assert cycles(planted) == [["replayd.scrubbing.a", "replayd.server.b", "replayd.server.c"]]
    assert upward_imports(planted) == ["replayd.scrubbing.a → replayd.server.b"]

"""The package's rooms: no import circle, no arrow that runs back up the house, no folder over 12 modules.

Imports are read with `ast` from every module, including those inside functions (a lazy import is still an
arrow), so a circle or an upward import fails here before anyone has to untangle it.

From the ground up, a module may import only modules of its own room or of rooms below it:
    ground (errors, plain_json, words, ranking, stats) < trainers < spaces < search < reports < demo, the front door (lightrecipe) < cli
and inside trainers and search, the sub-rooms named in their `__init__` docstrings.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "lightrecipe"
MAX_MODULES = 12

# (module-name prefix, height): the longest matching prefix decides a module's room.
ROOMS = [
    ("lightrecipe.errors", 0), ("lightrecipe.plain_json", 0), ("lightrecipe.words", 0), ("lightrecipe.ranking", 0),
    ("lightrecipe.stats", 0),
    # trainers: the recipe's rules, then data | parallel, method, run, and the commands on top
    ("lightrecipe.trainers.fields", 10), ("lightrecipe.trainers.presets", 11), ("lightrecipe.trainers.recipe", 12),
    ("lightrecipe.trainers.data", 13), ("lightrecipe.trainers.parallel", 13),
    ("lightrecipe.trainers.method", 14), ("lightrecipe.trainers.run", 15),
    ("lightrecipe.trainers", 16),
    ("lightrecipe.spaces", 20),
    # search: store | cluster, tune, the sweep, confirm, the commands
    ("lightrecipe.search.argparse_private", 30), ("lightrecipe.search.store", 30), ("lightrecipe.search.cluster", 30), ("lightrecipe.search.tune", 31),
    ("lightrecipe.search", 32), ("lightrecipe.search.commands", 33), ("lightrecipe.search.confirm", 34),
    ("lightrecipe.reports", 40),
    ("lightrecipe.demo", 50), ("lightrecipe", 50),
    ("lightrecipe.cli", 60),
]


def _modules() -> dict[str, Path]:
    mods = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        mods[name] = path
    return mods


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """The package's modules `name` imports anywhere in its body (a package's import counts as its __init__)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        found |= {t for t in targets if t in MODULES and t != name}
    return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def height(name: str) -> int:
    matches = [(len(prefix), h) for prefix, h in ROOMS if name == prefix or name.startswith(prefix + ".")]
    return max(matches)[1]


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_circle_finder_finds_a_planted_circle():
    planted = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert circles(planted) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []


def test_the_reader_sees_imports_inside_functions():
    assert "lightrecipe.trainers.run.train" in GRAPH["lightrecipe.search.tune.trainable"]  # imported in _train()


def test_the_package_has_no_import_circle():
    assert circles(GRAPH) == []


def test_no_import_runs_back_up_the_house():
    upward = sorted(f"{a} -> {b}" for a, targets in GRAPH.items() for b in targets
                    if height(b) > height(a) and not b.startswith(a + "."))  # a package may name its rooms
    assert upward == []


def test_no_module_imports_the_cli():
    assert [a for a, targets in GRAPH.items() if "lightrecipe.cli" in targets] == []


def test_every_module_sits_in_a_room():
    for name in MODULES:
        height(name)  # raises ValueError (max of nothing) for a module no room claims


@pytest.mark.parametrize("folder", sorted({p.parent for p in MODULES.values()}), ids=lambda p: p.name)
def test_no_folder_holds_more_than_twelve_modules_and_each_says_what_it_owns(folder):
    modules = [p for p in folder.glob("*.py") if p.name != "__init__.py"]
    assert len(modules) <= MAX_MODULES, sorted(p.name for p in modules)
    init = folder / "__init__.py"
    assert init.exists() and ast.get_docstring(ast.parse(init.read_text())), f"{init} says what it owns"

"""The package's shape, read from its source: no import cycle inside ``ganbench``, and data flows one way.

The import graph is built with ``ast`` from every ``import`` in every module, function-level imports included (a
lazy import is still a dependency), each resolved to the most specific ganbench module it names. Rules (issue 14 and
shared/STYLE.md): data, features and metrics never import the zoo, training, tasks, evaluation, runner, report or
cli; the zoo never imports training, metrics, features, tasks, evaluation, runner, report or cli; training imports no
model module (only the zoo's contracts, ``ganbench.zoo.base``); results import nothing of ganbench but its version;
nothing imports the cli.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "ganbench"


def _modules() -> dict[str, Path]:
    mods = {}
    for p in ROOT.rglob("*.py"):
        parts = p.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        mods[name] = p
    return mods


def import_graph() -> dict[str, set[str]]:
    """module -> the ganbench modules it imports (anywhere in its body)."""
    mods = _modules()

    def resolve(target: str) -> str | None:
        parts = target.split(".")
        while parts and ".".join(parts) not in mods:
            parts.pop()
        return ".".join(parts) or None

    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        is_pkg = path.name == "__init__.py"
        edges = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = name.split(".")
                    base = base[:len(base) - node.level + (1 if is_pkg else 0)]
                    module = ".".join(base + ([node.module] if node.module else []))
                else:
                    module = node.module or ""
                targets = [f"{module}.{a.name}" for a in node.names] + [module]
            for t in targets:
                if t.split(".")[0] == "ganbench":
                    resolved = resolve(t)
                    if resolved and resolved != name:
                        edges.add(resolved)
                        break  # "from X import a, b": one edge to the most specific module named
        graph[name] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as a list of modules, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state:
                found = visit(m)
                if found:
                    return found
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state:
            found = visit(n)
            if found:
                return found
    return None


def _package(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2])


LAYERS_FORBIDDEN = {  # package -> packages it must never import
    "ganbench.data": {"zoo", "train", "tasks", "evaluate", "runner", "report", "cli", "bench", "verify", "metrics",
                      "features"},
    "ganbench.features": {"zoo", "train", "tasks", "evaluate", "runner", "report", "cli", "bench", "verify", "metrics"},
    "ganbench.metrics": {"zoo", "train", "tasks", "evaluate", "runner", "report", "cli", "bench", "verify"},
    "ganbench.zoo": {"train", "metrics", "features", "tasks", "evaluate", "runner", "report", "cli", "bench", "verify"},
    "ganbench.results": {"data", "features", "metrics", "zoo", "train", "tasks", "evaluate", "runner", "report", "cli",
                         "bench", "verify"},
    "ganbench.train": {"metrics", "features", "tasks", "evaluate", "runner", "report", "cli", "bench", "verify"},
    "ganbench.tasks": {"train", "evaluate", "runner", "report", "cli", "bench", "verify"},
    "ganbench.evaluate": {"train", "runner", "report", "cli", "bench", "verify"},
}


def forbidden_arrows(graph: dict[str, set[str]]) -> list[str]:
    bad = []
    for a, targets in graph.items():
        for b in targets:
            pa, pb = _package(a), _package(b)
            if pb == "ganbench.cli":
                bad.append(f"{a} -> {b} (nothing imports the cli)")
            if pa in LAYERS_FORBIDDEN and pb.split(".")[-1] in LAYERS_FORBIDDEN[pa] and pa != pb:
                bad.append(f"{a} -> {b} ({pa} never imports {pb})")
            if pa == "ganbench.train" and pb == "ganbench.zoo" and b != "ganbench.zoo.base":
                bad.append(f"{a} -> {b} (training imports no model module, only ganbench.zoo.base)")
    return sorted(bad)


def test_the_package_has_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_data_flows_one_way():
    assert forbidden_arrows(import_graph()) == []


def test_the_checks_catch_a_planted_cycle_and_a_planted_arrow():
    graph = {"ganbench.zoo.a": {"ganbench.zoo.b"}, "ganbench.zoo.b": {"ganbench.zoo.c"},
             "ganbench.zoo.c": {"ganbench.zoo.a"}, "ganbench.metrics.x": {"ganbench.zoo.a"},
             "ganbench.train.loop": {"ganbench.zoo.dcgan", "ganbench.zoo.base"}, "ganbench.report.y": {"ganbench.cli"}}
    assert find_cycle(graph) == ["ganbench.zoo.a", "ganbench.zoo.b", "ganbench.zoo.c", "ganbench.zoo.a"]
    bad = forbidden_arrows(graph)
    assert any("ganbench.metrics.x -> ganbench.zoo.a" in b for b in bad)
    assert any("ganbench.train.loop -> ganbench.zoo.dcgan" in b for b in bad)
    assert any("-> ganbench.cli" in b for b in bad)
    assert not any(b.split(" -> ")[1].split(" ")[0] == "ganbench.zoo.base" for b in bad)


def test_the_graph_sees_function_level_and_relative_imports(tmp_path, monkeypatch):
    pkg = tmp_path / "ganbench"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from . import leaf\n")
    (pkg / "sub" / "leaf.py").write_text("def f():\n    from ganbench.other import thing\n")
    (pkg / "other.py").write_text("thing = 1\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", pkg)
    graph = import_graph()
    assert graph["ganbench.sub"] == {"ganbench.sub.leaf"}
    assert graph["ganbench.sub.leaf"] == {"ganbench.other"}


@pytest.mark.parametrize("module", ["ganbench.results.schema"])
def test_result_documents_are_built_in_one_module(module):
    """``Result(`` is called in exactly one module of the package: the one that defines it."""
    calls = {}
    for name, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Result":
                calls.setdefault(name, 0)
                calls[name] += 1
    assert set(calls) == {module}

"""The tiers point one way: searchspace < {cost_models, trainables} < results < orchestrator < hwnas.

A static walk over every import statement (module level, inside functions and inside ``if TYPE_CHECKING:``
blocks: a type-only import is still a dependency) builds the module graph; the tests fail on an import
cycle, on Ray imported below ``orchestrator`` (or by its Ray-free modules), on torch imported by the
space or the cost models, on the search core and the cost models importing each other (peers), on a
lower tier importing a higher one (``hwnas`` is imported by nothing), and on a module reaching another
module's ``_private`` name. A subprocess check confirms the same at run time.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("searchspace", "cost_models", "trainables", "results", "orchestrator", "hwnas")
# what each tier may import from the project (itself always); nothing may import hwnas
ALLOWED = {
    "searchspace": set(),
    "cost_models": {"searchspace"},
    "trainables": {"searchspace"},  # the search core and the cost models are peers
    "results": {"searchspace", "cost_models", "trainables"},
    "orchestrator": {"searchspace", "cost_models", "trainables", "results"},
    "hwnas": {"searchspace", "cost_models", "trainables", "results", "orchestrator"},
}
FORBIDDEN_THIRD_PARTY = {
    "searchspace": {"ray", "torch", "torchvision"},
    "cost_models": {"ray", "torch", "torchvision"},
    "trainables": {"ray"},
    "results": {"ray"},
}
# modules above results that must not import Ray: the command line that runs without a cluster, and the
# driver's signal handling (it drives Tune's stop handler, without importing Ray)
RAY_FREE = ("hwnas", "hwnas.errors", "hwnas.experiment", "hwnas.costing", "hwnas.deploy", "hwnas.cli",
            "hwnas.cli.trial", "hwnas.cli.pareto", "hwnas.cli.cost", "hwnas.cli.train", "hwnas.cli.export",
            "orchestrator.interrupts")


def _modules() -> dict[str, Path]:
    mods = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            mods[".".join(parts)] = path
    return mods


def _imports(path: Path, module: str, mods: dict[str, Path]) -> list[tuple[str, str | None, int]]:
    """(imported module, imported name or None, line) for every import, TYPE_CHECKING blocks included."""
    out: list[tuple[str, str | None, int]] = []
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.Import):
            out.extend((a.name, None, node.lineno) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package[:len(package) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            for a in node.names:
                full = f"{base}.{a.name}"
                out.append((full, None, node.lineno) if full in mods else (base, a.name, node.lineno))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    return out


MODS = _modules()
GRAPH: dict[str, list[tuple[str, str | None, int]]] = {m: _imports(p, m, MODS) for m, p in MODS.items()}


def _edges() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = defaultdict(set)
    for m, imports in GRAPH.items():
        for target, _name, _line in imports:
            if target in MODS and target != m:
                edges[m].add(target)
    return edges


def test_graph_is_not_empty():
    assert len(MODS) > 20 and sum(len(v) for v in _edges().values()) > 30


def test_no_import_cycles():
    edges = _edges()
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def dfs(v: str) -> None:
        state[v] = 1
        stack.append(v)
        for w in sorted(edges.get(v, ())):
            if state.get(w) == 1:
                cycles.append(stack[stack.index(w):] + [w])
            elif w not in state:
                dfs(w)
        stack.pop()
        state[v] = 2

    for m in sorted(MODS):
        if m not in state:
            dfs(m)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_every_project_import_names_a_module_that_exists():
    """A stale import of a project module that is gone (say ``if TYPE_CHECKING: from .api import ...``
    after a move) never fails at run time, and the graph above would miss its edge."""
    stale = [f"{m}:{line} imports {target}" for m, imports in GRAPH.items() for target, _name, line in imports
             if target.split(".")[0] in PACKAGES and target not in MODS]
    assert not stale, stale


@pytest.mark.parametrize("module", sorted(MODS))
def test_layer_direction(module):
    layer = module.split(".")[0]
    bad = []
    for target, _name, line in GRAPH[module]:
        top = target.split(".")[0]
        if top in PACKAGES and top != layer and top not in ALLOWED[layer]:
            bad.append(f"line {line}: {target} (layer {top})")
        if top in FORBIDDEN_THIRD_PARTY.get(layer, ()):
            bad.append(f"line {line}: {target} ({layer} must not import {top})")
        if module in RAY_FREE and top == "ray":
            bad.append(f"line {line}: {target} (a Ray-free module)")
    assert not bad, f"{module} imports against the layers: " + ", ".join(bad)


@pytest.mark.parametrize("module", sorted(MODS))
def test_no_private_names_across_modules(module):
    bad = [f"line {line}: {target}.{name}" for target, name, line in GRAPH[module]
           if name and name.startswith("_") and not name.startswith("__") and target in MODS and target != module]
    assert not bad, f"{module} reaches private names: {', '.join(bad)}"


@pytest.mark.parametrize("script", sorted(p.name for p in (ROOT / "benchmarks").glob("*.py")))
def test_benchmarks_use_public_functions(script):
    path = ROOT / "benchmarks" / script
    bad = [f"line {line}: {target}.{name}" for target, name, line in _imports(path, f"benchmarks.{path.stem}", MODS)
           if name and name.startswith("_") and not name.startswith("__") and target.split(".")[0] in PACKAGES]
    assert not bad, f"benchmarks/{script} reaches private names: {', '.join(bad)}"


def _loaded_after(statement: str) -> set[str]:
    code = (f"import sys\n{statement}\n"
            "print(' '.join(sorted(m for m in ('ray', 'torch', 'cost_models', 'trainables') if m in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_runtime_imports_follow_the_layers():
    assert _loaded_after("import searchspace.config, searchspace.layout, searchspace.groups") == set()
    assert _loaded_after("import cost_models, hwnas.cli.cost") == {"cost_models"}
    loaded = _loaded_after("import trainables.search")
    assert "ray" not in loaded and "cost_models" not in loaded and "torch" in loaded
    # the CLI's parser (hwnas --help, hwnas cost) loads neither torch nor Ray
    assert not {"torch", "ray"} & _loaded_after("from hwnas import cli; cli.build_parser()")
    # nor does the Python API until a function that needs them runs (search: Ray; train, export: torch)
    assert not {"torch", "ray", "trainables"} & _loaded_after("import hwnas; hwnas.search, hwnas.train, hwnas.Experiment")

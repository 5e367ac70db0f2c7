"""Print the package import graph and the file count of every package.

A static walk over every import statement of the project's packages (module level, inside functions
and inside ``if TYPE_CHECKING:`` blocks): one line per package with its file count, its floors (the
longest chain of imports between its own modules, counted in modules) and the packages it imports, then
every import circle between modules. Usage: ``python scripts/import_graph.py [ROOT]``.
"""
from __future__ import annotations

import ast
import logging
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else Path(__file__).resolve().parents[1]
log = logging.getLogger("import_graph")


def packages() -> list[str]:
    """Top-level project packages: folders under the root holding an ``__init__.py``."""
    return sorted(p.parent.name for p in ROOT.glob("*/__init__.py")
                  if p.parent.name not in {"tests", "benchmarks", "scripts"})


def modules(pkgs: list[str]) -> dict[str, Path]:
    mods = {}
    for pkg in pkgs:
        for path in (ROOT / pkg).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            mods[".".join(parts)] = path
    return mods


def imported(path: Path, module: str, mods: dict[str, Path]) -> set[str]:
    """Project modules ``module`` imports anywhere in its file, TYPE_CHECKING blocks included."""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[:len(package) - node.level + 1] + ([base] if base else []))
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
        else:
            continue
        for name in names:
            while name and name not in mods:
                name = name.rpartition(".")[0]
            if name and name != module:
                out.add(name)
    return out


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    state: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def dfs(v: str) -> None:
        state[v] = 1
        stack.append(v)
        for w in sorted(edges.get(v, ())):
            if state.get(w) == 1:
                found.append(stack[stack.index(w):] + [w])
            elif w not in state:
                dfs(w)
        stack.pop()
        state[v] = 2

    for m in sorted(edges):
        if m not in state:
            dfs(m)
    return found


def floors(package: str, edges: dict[str, set[str]]) -> int:
    """The longest chain of imports between ``package``'s own modules, in modules (1: none imports another)."""
    inside = {m: {t for t in targets if t.split(".")[0] == package} for m, targets in edges.items()
              if m.split(".")[0] == package}
    depth: dict[str, int] = {}

    def level(m: str, seen: frozenset[str]) -> int:
        if m not in depth:
            depth[m] = 1 + max((level(t, seen | {m}) for t in inside.get(m, ()) if t not in seen), default=0)
        return depth[m]

    return max((level(m, frozenset()) for m in inside), default=0)


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    pkgs = packages()
    mods = modules(pkgs)
    edges = {m: imported(p, m, mods) for m, p in mods.items()}
    pkg_edges: dict[str, set[str]] = defaultdict(set)
    for m, targets in edges.items():
        for t in targets:
            if t.split(".")[0] != m.split(".")[0]:
                pkg_edges[m.split(".")[0]].add(t.split(".")[0])
    for pkg in pkgs:
        files = sum(1 for _ in (ROOT / pkg).rglob("*.py"))
        log.info("%-14s %3d files  %2d floors  imports: %s", pkg, files, floors(pkg, edges),
                 ", ".join(sorted(pkg_edges[pkg])) or "-")
    for init in sorted(ROOT.glob("*/*/__init__.py")):  # subpackages
        if init.parts[-3] in pkgs:
            log.info("  %-12s %3d files", ".".join(init.parent.relative_to(ROOT).parts),
                     sum(1 for _ in init.parent.glob("*.py")))
    circles = cycles(edges)
    log.info("import circles (TYPE_CHECKING included): %s",
             "; ".join(" -> ".join(c) for c in circles) or "none")
    return 0


if __name__ == "__main__":
    sys.exit(main())

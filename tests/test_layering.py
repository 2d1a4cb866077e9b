"""The direction of dependencies (shared/DESIGN.md): core imports neither ComfyUI, the nodes,
the CLI nor the tools; the nodes never import the tools. Read from the source, so an import
hidden inside a function counts too."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "unit_nodes"


def imported_modules(path: Path) -> set[str]:
    """Absolute names of every module ``path`` imports (relative imports resolved)."""
    package = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def _imports_of(sub: str) -> dict[str, set[str]]:
    return {str(p.relative_to(PACKAGE)): imported_modules(p) for p in (PACKAGE / sub).rglob("*.py")}


def test_core_is_pure_pytorch():
    bad = {f: sorted(m for m in mods if m.split(".")[0] in ("comfy", "comfy_api", "folder_paths", "server", "nodes")
                     or m.startswith(("unit_nodes.nodes", "unit_nodes.cli", "unit_nodes.tools")))
           for f, mods in _imports_of("core").items()}
    assert not {f: m for f, m in bad.items() if m}


def test_nodes_never_import_the_tools():
    bad = {f: sorted(m for m in mods if m.startswith("unit_nodes.tools")) for f, mods in _imports_of("nodes").items()}
    assert not {f: m for f, m in bad.items() if m}


def test_the_resolver_sees_relative_imports():
    mods = imported_modules(PACKAGE / "tools" / "evaluate.py")
    assert "unit_nodes.core.inference" in mods and "unit_nodes.tools.classifier" in mods


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports, at the top or inside a function. A module's
    own parent packages are left out: Python imports them before the module in any case, so
    ``from . import sibling`` is no edge back to the package."""
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: {m for m in imported_modules(path) if m in files and m != name and not name.startswith(m + ".")}
            for name, path in files.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_module_imports_itself_back():
    # a function-level import counts: it only hides a cycle until someone moves it to the top
    assert find_cycle(import_graph()) is None


def test_the_cycle_finder_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None

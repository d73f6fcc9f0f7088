"""The architecture, held by reading the code: layers import downward only, no import cycle (imports inside functions
included), the sketch world reached only through the world interface, and prose that cites only what the repository
holds. docs/architecture.md draws the same picture."""

from __future__ import annotations

import ast
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIRS: dict[str, str] = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]

# package -> the packages it may import (besides itself). The order is the layering, lowest first.
ALLOWED: dict[str, set[str]] = {
    "plumbing": set(),
    "rewardmodel": {"plumbing"},
    "agents": {"plumbing", "rewardmodel"},
    "sketch": {"plumbing", "rewardmodel", "agents"},
    "graphs": {"plumbing", "rewardmodel", "agents"},
    "runtime": {"plumbing", "rewardmodel", "agents", "graphs"},
    "training": {"plumbing", "rewardmodel", "agents", "graphs", "runtime"},
    "experiments": {"plumbing", "rewardmodel", "agents", "sketch", "graphs", "runtime", "training"},
    "integrations": {"plumbing", "rewardmodel", "agents", "graphs", "runtime"},
    "cli": {"plumbing", "rewardmodel", "agents", "graphs", "runtime", "training", "experiments", "integrations"},
    # the top-level namespace: the everyday names, the embedded world's generator and oracle among them
    "rationalrewards": {
        "plumbing",
        "rewardmodel",
        "agents",
        "sketch",
        "graphs",
        "runtime",
        "training",
        "integrations",
        "cli",
    },
}


def _modules() -> dict[str, Path]:
    """Every module of the package, by its installed dotted name."""
    found: dict[str, Path] = {}
    for package, folder in PACKAGE_DIRS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            relative = path.relative_to(ROOT / folder).with_suffix("")
            parts = [p for p in relative.parts if p != "__init__"]
            found[".".join([package, *parts])] = path
    return found


MODULES = _modules()


def _imports(path: Path, module: str) -> Iterator[tuple[str, int]]:
    """(imported module, line) for every import in the file, at any depth (functions included)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base]) if base else ".".join(anchor)
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                yield (candidate if candidate in MODULES else base), node.lineno


def _is_type_checking_only(path: Path) -> set[int]:
    """Lines of imports under `if TYPE_CHECKING:` (no import happens at run time)."""
    lines: set[int] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for inner in ast.walk(node):
                if isinstance(inner, ast.Import | ast.ImportFrom):
                    lines.add(inner.lineno)
    return lines


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        typing_only = _is_type_checking_only(path)
        graph[module] = {
            target
            for target, line in _imports(path, module)
            if target in MODULES and target != module and line not in typing_only
        }
    return graph


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ALLOWED else "rationalrewards"


def test_every_module_is_found() -> None:
    assert "rationalrewards.sketch.world" in MODULES and "rationalrewards.agents.world" in MODULES
    assert len(MODULES) > 100


def test_layers_import_downward_only() -> None:
    wrong = []
    for module, path in MODULES.items():
        layer = _layer(module)
        for target, line in _imports(path, module):
            if not target.startswith("rationalrewards.") or target not in MODULES:
                continue
            other = _layer(target)
            if other != layer and other not in ALLOWED[layer]:
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {target} ({layer} -> {other})")
    assert wrong == []


def test_no_import_cycles_function_level_imports_included() -> None:
    graph = _graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def connect(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                connect(target)
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
                cycles.append(sorted(component))

    for module in graph:
        if module not in index:
            connect(module)
    assert cycles == []


def test_only_the_sketch_world_and_its_experiments_import_sketch_modules() -> None:
    """The rest of the project reaches the sketch world through `agents/world.py` (by name, never by import)."""
    reached = []
    for module, path in MODULES.items():
        if _layer(module) in ("sketch", "experiments", "rationalrewards"):  # the world, its experiments, the facade
            continue
        typing_only = _is_type_checking_only(path)
        for target, line in _imports(path, module):
            if target.startswith("rationalrewards.sketch") and line not in typing_only:
                reached.append(f"{path.relative_to(ROOT)}:{line} imports {target}")
    assert reached == []


# The team's planning notes, which live outside the repository (their names built here, so this guard cites none).
PLANNING_NOTES = [f"{stem}.md" for stem in ("DESIGN", "PAPER", "BENCHMARKS")]


@pytest.mark.parametrize("name", PLANNING_NOTES)
def test_code_and_docs_cite_only_files_in_the_repository(name: str) -> None:
    """Our planning notes live outside the repository: no docstring, comment or page may send a reader to them."""
    sources = [*MODULES.values(), *ROOT.glob("docs/*.md"), ROOT / "README.md", *ROOT.glob("benchmarks/*.py")]
    citing = [str(p.relative_to(ROOT)) for p in sources if re.search(rf"\b{re.escape(name)}\b", p.read_text())]
    assert citing == []


def test_private_modules_are_named_as_such() -> None:
    """Helpers no user imports start with `_` (the command line's internals, the sketch world's drawing)."""
    for module in ("cli._options", "cli._configs", "cli._distill", "cli._rl", "sketch._render", "sketch._vocab"):
        assert f"rationalrewards.{module}" in MODULES
    public_cli = [m for m in MODULES if m.startswith("rationalrewards.cli.") and not m.split(".")[-1].startswith("_")]
    assert public_cli == ["rationalrewards.cli.main"]

"""The distribution: one import namespace declared by `package-dir` (no links), installable beside OpenAI's Agents SDK
(import name `agents`), typed for users' checkers (`py.typed`), runnable as `python -m rationalrewards`, and enough on
its own (no torch, no extras) to build and run the graphs."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIRS: dict[str, str] = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]


def _run(
    *args: str, cwd: Path | None = None, timeout: int = 600, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, cwd=cwd, check=False, env=env)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    built = _run(
        sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", str(ROOT), "-w", str(out)
    )
    assert built.returncode == 0, built.stderr
    [path] = out.glob("rationalrewards-*.whl")
    return path


def test_the_repository_holds_no_symlinks() -> None:
    tracked = _run("git", "ls-files", "-s", cwd=ROOT).stdout.splitlines()
    links = [line.split("\t")[1] for line in tracked if line.startswith("120000")]
    assert links == []


def test_the_wheel_is_the_source_tree_under_one_namespace(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    tops = {name.split("/")[0] for name in names if not name.startswith("rationalrewards-")}
    assert tops == {"rationalrewards"}, tops  # no `agents`, `cli`, `sketch` at the top of site-packages
    expected = set()
    for package, folder in PACKAGE_DIRS.items():
        for source in (ROOT / folder).glob("*.py"):
            expected.add(package.replace(".", "/") + "/" + source.name)
    for backend in (ROOT / "rewardmodel" / "backends").glob("*.py"):
        expected.add(f"rationalrewards/rewardmodel/backends/{backend.name}")
    modules = {name for name in names if name.endswith(".py")}
    assert modules == expected, (sorted(expected - modules), sorted(modules - expected))
    assert "rationalrewards/py.typed" in names
    assert "rationalrewards/sketch/weights/sketch-flow/unet/diffusion_pytorch_model.safetensors" in names
    top_level = next(n for n in names if n.endswith("top_level.txt"))
    assert zipfile.ZipFile(wheel).read(top_level).decode().split() == ["rationalrewards"]


def test_python_dash_m_runs_the_command_line(tmp_path: Path) -> None:
    result = _run(sys.executable, "-m", "rationalrewards", "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "critique" in result.stdout and "refine" in result.stdout


def test_import_agents_in_the_test_process_is_not_ours() -> None:
    """The repository root is not on sys.path (make test runs `python -P`): `agents` is OpenAI's Agents SDK."""
    import agents

    assert "rationalrewards" not in (agents.__file__ or "")
    assert Path(agents.__file__ or "").resolve() != ROOT / "agents" / "__init__.py"
    assert str(ROOT) not in sys.path and "" not in sys.path
    assert hasattr(agents, "Runner") and hasattr(agents, "function_tool")
    import rationalrewards.agents

    assert Path(rationalrewards.agents.__file__ or "").resolve() == ROOT / "agents" / "__init__.py"


def test_modules_load_from_the_files_being_edited() -> None:
    """An editable install maps the namespace onto the real folders: tracebacks name the files one edits."""
    import rationalrewards.rewardmodel.schemas as schemas
    import rationalrewards.sketch.oracle as oracle

    assert Path(schemas.__file__ or "") == ROOT / "rewardmodel" / "schemas.py"
    assert Path(oracle.__file__ or "") == ROOT / "sketch" / "oracle.py"


DOWNSTREAM = """
from rationalrewards import Critique, parse_critique
from rationalrewards.sketch import parse_scene_spec

critique: Critique = parse_critique("1. Text Faithfulness: ok\\nScore: 3", "t2i")
spec = parse_scene_spec("a photo of two cats")
wrong: int = critique.scores  # the checker must see our types to flag this line
"""


def _mypy_downstream(site: Path, tmp_path: Path, name: str) -> subprocess.CompletedProcess[str]:
    """mypy on a user's file, in a fresh venv whose only copy of rationalrewards is under `site` (its other
    dependencies come from this environment). The two checks share one cache for the libraries we depend on."""
    venv = tmp_path / f"venv-{name}"
    assert _run(sys.executable, "-m", "venv", "--without-pip", str(venv)).returncode == 0
    [venv_site] = (venv / "lib").glob("python3.*/site-packages")
    ours = Path(next(p for p in sys.path if p.endswith("site-packages")))
    (venv_site / "deps.pth").write_text(f"{site}\n{ours}\n")
    project = tmp_path / f"downstream-{name}"
    project.mkdir()
    (project / "use.py").write_text(DOWNSTREAM)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MYPYPATH")}
    return _run(
        sys.executable, "-m", "mypy", "--python-executable", str(venv / "bin" / "python"),
        "--cache-dir", str(tmp_path / "mypy-cache"), "--ignore-missing-imports", "use.py", cwd=project, env=env,
    )  # fmt: skip


def _sees_our_types(result: subprocess.CompletedProcess[str]) -> None:
    out = result.stdout + result.stderr
    assert "py.typed" not in out and "missing library stubs" not in out, out
    assert 'use.py:7: error: Incompatible types in assignment (expression has type "dict[str, float | None]"' in out, (
        out
    )
    assert "Found 1 error in 1 file" in out, out


def _strict_editable_tree(tmp_path: Path) -> Path:
    """An editable install in setuptools' strict mode (a tree of links laid out as installed); the default mode maps
    names with an import hook that no type checker follows (docs/architecture.md, "Packaging")."""
    target = tmp_path / "editable"
    installed = _run(
        sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "-q", "--target", str(target),
        "--config-settings", "editable_mode=strict", "-e", str(ROOT),
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr[-3000:]
    [pth] = [p for p in target.glob("*.pth") if "rationalrewards" in p.name]
    tree = Path(pth.read_text().split()[0])
    assert (tree / "rationalrewards" / "py.typed").exists()
    return tree


@pytest.mark.slow
def test_a_downstream_mypy_sees_our_types_through_the_wheel_and_a_strict_editable_install(
    wheel: Path, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    _sees_our_types(_mypy_downstream(site, tmp_path, "wheel"))
    _sees_our_types(_mypy_downstream(_strict_editable_tree(tmp_path), tmp_path, "editable"))


@pytest.mark.slow
def test_wheel_beside_openai_agents_in_a_fresh_venv(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    assert _run(sys.executable, "-m", "venv", str(venv)).returncode == 0
    python = venv / "bin" / "python"
    install = _run(
        str(python),
        "-m",
        "pip",
        "install",
        "-q",
        "--disable-pip-version-check",
        "-c",
        str(ROOT / "constraints.txt"),
        str(wheel),
        "openai-agents",
    )
    assert install.returncode == 0, install.stderr[-3000:]
    code = """
import sys, asyncio, tempfile
import agents                      # OpenAI's Agents SDK keeps its import name
from agents import Agent, function_tool
import rationalrewards as rr       # ours lives under one namespace beside it
from rationalrewards.sketch.generator import SketchGenerator
from rationalrewards.sketch.oracle import SketchOracle
from rationalrewards.agents.refiner import CriticRefiner
assert "torch" not in sys.modules, "import rationalrewards must not import torch"
try:
    import torch  # noqa: F401
    raise SystemExit("torch should not be installed by `pip install rationalrewards` alone")
except ImportError:
    pass
with tempfile.TemporaryDirectory() as tmp:
    backends = rr.GCRContext(generator=SketchGenerator(tmp), critic=SketchOracle(), refiner=CriticRefiner())
    graph = rr.build_gcr_graph(rr.GCRConfig.preset("paper"), backends=backends)
    out = asyncio.run(graph.ainvoke({"prompt": "a photo of four clocks", "seed": 1}))
    assert out["stop_reason"] in ("passed", "max_rounds"), out["stop_reason"]
print("ok", agents.__name__, rr.__version__, Agent.__name__)
"""
    result = _run(str(python), "-c", code, cwd=tmp_path)  # not the repository root: only installed code is importable
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith("ok agents ")
    assert _run(str(venv / "bin" / "rationalrewards"), "--help", cwd=tmp_path).returncode == 0
    assert _run(str(python), "-m", "rationalrewards", "sketch", "parse", "two cats", cwd=tmp_path).returncode == 0


def test_the_cli_starts_without_the_heavy_libraries() -> None:
    """Every command pays the CLI's import: LangGraph, torch and the HTTP client load only in the commands using them."""
    code = (
        "import sys, rationalrewards.cli.main; "
        "print(sorted(m for m in ('torch', 'transformers', 'trl', 'langgraph', 'aiohttp', 'matplotlib') if m in sys.modules))"
    )
    out = _run(sys.executable, "-c", code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"

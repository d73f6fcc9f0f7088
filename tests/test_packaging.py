"""The distribution: one import namespace, installable beside OpenAI's Agents SDK (import name `agents`), and enough on
its own (no torch, no extras) to build and run the graphs."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str, cwd: Path | None = None, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, cwd=cwd, check=False)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    built = _run(
        sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", str(ROOT), "-w", str(out)
    )
    assert built.returncode == 0, built.stderr
    [path] = out.glob("rationalrewards-*.whl")
    return path


def test_the_wheel_installs_one_top_level_package(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names if not name.startswith("rationalrewards-")}
    assert tops == {"rationalrewards"}, tops  # no `agents`, `cli`, `graphs`, `training` at the top of site-packages
    for sub in ("rewardmodel", "agents", "agents/sketch", "graphs", "training", "cli", "rewardmodel/backends"):
        assert f"rationalrewards/{sub}/__init__.py" in names, sub
    top_level = next(n for n in names if n.endswith("top_level.txt"))
    assert zipfile.ZipFile(wheel).read(top_level).decode().split() == ["rationalrewards"]


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
from rationalrewards.agents.sketch.generator import SketchGenerator
from rationalrewards.agents.sketch.oracle import SketchOracle
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


def test_the_cli_starts_without_the_heavy_libraries() -> None:
    """Every command pays the CLI's import: LangGraph, torch and the HTTP client load only in the commands using them."""
    code = (
        "import sys, rationalrewards.cli.main; "
        "print(sorted(m for m in ('torch', 'transformers', 'langgraph', 'aiohttp', 'matplotlib') if m in sys.modules))"
    )
    out = _run(sys.executable, "-c", code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"

"""Batch runs: run directory, traces, resume (also after SIGKILL), isolation of failing prompts, a critic server that
dies mid-run, the CLI, the HTML report in headless Chromium, and the graph served by `langgraph dev`."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from rationalrewards.agents.refiner import CriticRefiner
from rationalrewards.agents.sketch.generator import SketchGenerator
from rationalrewards.agents.sketch.grader import SketchGrader
from rationalrewards.agents.sketch.oracle import SketchOracle
from rationalrewards.agents.sketch.suites import make_suite
from rationalrewards.agents.suite import write_jsonl
from rationalrewards.graphs.gcr_config import GCRConfig
from rationalrewards.graphs.rundir import RunDirectoryError, read_jsonl
from rationalrewards.graphs.runner import GCRRunner
from rationalrewards.graphs.trace import read_trace
from rationalrewards.rewardmodel.schemas import ImageRef
from tests.helpers import PYTHON, free_port, wait_for_http

ROOT = Path(__file__).resolve().parents[1]


def _runner(run_dir: Path, preset: str = "paper", **kw: Any) -> GCRRunner:
    return GCRRunner(
        run_dir,
        generator=kw.pop("generator", SketchGenerator(run_dir / "images")),
        critic=kw.pop("critic", SketchOracle()),
        refiner=CriticRefiner(),
        config=kw.pop("config", GCRConfig.preset(preset)),
        progress=False,
        grader=kw.pop("grader", SketchGrader()),
        **kw,
    )


def test_a_suite_run_writes_the_run_directory_and_improves_accuracy(tmp_path: Path) -> None:
    rows = make_suite(42, seed=8)
    summary = asyncio.run(_runner(tmp_path / "run").run(rows))
    run = tmp_path / "run"
    for name in ("run.json", "checkpoints.sqlite", "trace.jsonl", "results.jsonl", "summary.json", "report.html"):
        assert (run / name).exists(), name
    assert summary["finished"] == 42 and summary["failed"] == 0
    assert summary["accuracy_final"] > summary["accuracy_initial"]
    assert summary["reward_final"] > summary["reward_initial"]
    events = read_trace(run / "trace.jsonl")
    nodes = {e["node"] for e in events}
    assert {"generate", "critique", "refine", "finish"} <= nodes
    generate = next(e for e in events if e["node"] == "generate")
    assert {"round", "candidate", "prompt", "image", "ms", "sample_id"} <= set(generate)
    critique = next(e for e in events if e["node"] == "critique")
    assert critique["scores"] and "ms" in critique
    results = read_jsonl(run / "results.jsonl")
    for result in results:
        assert Path(result["best"]["image"]["uri"]).parent == (run / "images").resolve()
    again = asyncio.run(_runner(run).run(rows))  # nothing left to do: finished prompts are not redone
    assert again["generations"] == summary["generations"] and len(read_jsonl(run / "results.jsonl")) == 42


def test_run_directory_guards(tmp_path: Path) -> None:
    rows = make_suite(7, seed=1)
    asyncio.run(_runner(tmp_path / "run").run(rows))
    with pytest.raises(RunDirectoryError, match=r"other inputs(.|\n)*config.max_rounds: 2 -> 4"):
        asyncio.run(_runner(tmp_path / "run", preset="deep").run(rows))
    with pytest.raises(RunDirectoryError, match="other inputs"):
        asyncio.run(_runner(tmp_path / "run").run(rows[:6]))
    manifest = json.loads((tmp_path / "run" / "run.json").read_text())
    manifest["version"] = 999
    (tmp_path / "run" / "run.json").write_text(json.dumps(manifest))
    with pytest.raises(RunDirectoryError, match="version: 999 -> 2"):
        asyncio.run(_runner(tmp_path / "run").run(rows))
    with pytest.raises(ValueError, match="empty"):
        asyncio.run(_runner(tmp_path / "other").run([]))


def test_a_run_without_a_grader_has_no_accuracy_columns(tmp_path: Path) -> None:
    summary = asyncio.run(_runner(tmp_path / "run", grader=None).run(make_suite(5, seed=3)))
    assert summary["finished"] == 5 and summary["reward_initial"] is not None
    assert not any(key.startswith(("accuracy", "per_tag")) for key in summary)
    results = read_jsonl(tmp_path / "run" / "results.jsonl")
    assert all("grade_initial" not in r for r in results)
    assert "ground-truth accuracy" not in (tmp_path / "run" / "report.html").read_text()


def test_runner_checkpointer_is_wal_with_normal_sync(tmp_path: Path) -> None:
    from rationalrewards.graphs.checkpoints import sqlite_checkpointer

    async def pragmas() -> tuple[str, int]:
        async with sqlite_checkpointer(tmp_path / "c.sqlite") as saver:
            journal = await (await saver.conn.execute("PRAGMA journal_mode")).fetchone()
            sync = await (await saver.conn.execute("PRAGMA synchronous")).fetchone()
            return journal[0], sync[0]

    assert asyncio.run(pragmas()) == ("wal", 1)  # 1 = NORMAL: committed steps survive a killed process (see kill test)


class _BrokenForOnePrompt(SketchGenerator):
    async def generate(self, prompts: Sequence[str], seeds: Sequence[int], source_images: Any = None) -> list[Any]:
        if any("zebra" in p for p in prompts):
            raise RuntimeError("the generator fell over")
        return await super().generate(prompts, seeds, source_images)


def test_a_failing_prompt_fails_alone(tmp_path: Path) -> None:
    rows = [{"prompt": "a photo of a zebra"}, {"prompt": "a photo of two dogs"}, {"prompt": "a photo of a red car"}]
    summary = asyncio.run(
        _runner(tmp_path / "run", generator=_BrokenForOnePrompt(tmp_path / "run" / "images")).run(rows)
    )
    assert summary["finished"] == 2 and summary["failed"] == 1
    assert "fell over" in summary["failures"][0]["error"]
    assert "fell over" in (tmp_path / "run" / "report.html").read_text()


def test_a_critic_server_that_dies_mid_run(tmp_path: Path) -> None:
    from rationalrewards.rewardmodel.backends.openai_compat import OpenAICompatibleRewardModel
    from rationalrewards.rewardmodel.mock_server import Fault, MockServer

    rows = make_suite(14, seed=2)
    with MockServer(free_port()) as server:
        critic = OpenAICompatibleRewardModel(
            server.base_url, "mock-critic", max_retries=1, retry_max_wait=0.01, on_server_error="abstain", concurrency=4
        )
        server.state.script.extend([Fault()] * 5 + [Fault(status=503)] * 500)  # five answers, then it is gone
        summary = asyncio.run(_runner(tmp_path / "run", critic=critic, concurrency=2).run(rows))
    assert summary["finished"] == 14 and summary["failed"] == 0
    assert summary["abstentions"] > 0
    assert summary["stop_reasons"].get("critic_abstained", 0) > 0


def _cli(*args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-m", "rationalrewards.cli.main", *args], capture_output=True, text=True, timeout=300, **kw
    )


def test_cli_refine_single_prompt_and_report(tmp_path: Path) -> None:
    result = _cli("refine", "a photo of four clocks", "--out", str(tmp_path / "one"), "--seed", "1", "--json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert {"n", "reward_initial", "reward_final", "accuracy_initial", "accuracy_final", "per_tag"} <= set(out)
    assert _cli("report", str(tmp_path / "one")).returncode == 0
    bad = _cli("refine", "--suite", str(tmp_path / "missing.jsonl"))
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    result = _cli("refine", "--suite", str(empty), "--out", str(tmp_path / "e"))
    assert result.returncode == 2 and "no prompts" in result.stderr


@pytest.mark.slow
def test_kill_and_resume_matches_an_uninterrupted_run(tmp_path: Path) -> None:
    suite = write_jsonl(make_suite(350, seed=13), tmp_path / "suite.jsonl")
    args = ["refine", "--suite", str(suite), "--preset", "deep", "--concurrency", "2", "--json"]
    killed = tmp_path / "killed"
    process = subprocess.Popen(
        [PYTHON, "-m", "rationalrewards.cli.main", *args, "--out", str(killed)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(read_jsonl(killed / "results.jsonl")) < 40:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    partial = len(read_jsonl(killed / "results.jsonl"))
    assert 0 < partial < 350, "the kill must land mid-run"
    resumed = _cli(*args, "--out", str(killed))
    assert resumed.returncode == 0, resumed.stderr
    full = _cli(*args, "--out", str(tmp_path / "full"))
    a, b = json.loads(resumed.stdout), json.loads(full.stdout)
    ids = [r["sample_id"] for r in read_jsonl(killed / "results.jsonl")]
    assert len(ids) == len(set(ids)) == 350
    for key in ("reward_initial", "reward_final", "accuracy_initial", "accuracy_final", "per_tag"):
        assert a[key] == b[key], key


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def test_report_renders_in_headless_chromium_with_images(tmp_path: Path) -> None:
    browser = _chromium()
    if browser is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing in CI: .ci/run installs Debian's chromium")
        pytest.skip("chromium not installed here (.ci/run installs it)")
    from PIL import Image

    from rationalrewards.agents.sketch.suites import demo_suite
    from rationalrewards.agents.sketch.vocab import BACKGROUND

    asyncio.run(_runner(tmp_path / "run", preset="deep").run(demo_suite()[:4]))
    shot = tmp_path / "report.png"
    subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--window-size=1400,1200",
            f"--screenshot={shot}",
            (tmp_path / "run" / "report.html").as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=True,
    )
    import numpy as np

    pixels = np.asarray(Image.open(shot).convert("RGB"))
    # Loaded sketch images show their grey background; a broken image shows none of it.
    share = float((pixels == np.array(BACKGROUND, dtype=np.uint8)).all(axis=-1).mean())
    assert share > 0.05, f"only {share:.3f} of the screenshot shows sketch images"


def test_langgraph_dev_serves_the_gcr_graph(tmp_path: Path) -> None:
    exe = Path(PYTHON).parent / "langgraph"
    port = free_port()
    env = {**os.environ, "RATIONALREWARDS_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1"}
    log = (tmp_path / "dev.log").open("wb")
    process = subprocess.Popen(
        [str(exe), "dev", "--port", str(port), "--host", "127.0.0.1", "--no-browser", "--no-reload"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/ok", process, timeout=120)
        from langgraph_sdk import get_client

        async def drive() -> dict[str, Any]:
            client = get_client(url=f"http://127.0.0.1:{port}")
            thread = await client.threads.create()
            kinds = [
                chunk.event
                async for chunk in client.runs.stream(
                    thread["thread_id"],
                    "gcr",
                    input={"prompt": "a photo of four clocks", "seed": 1},
                    stream_mode="updates",
                )
            ]
            assert "updates" in kinds
            return (await client.threads.get_state(thread["thread_id"]))["values"]

        values = asyncio.run(drive())
        assert values["stop_reason"] in ("passed", "max_rounds", "plateau")
        assert values["rounds"][0]["prompt"] == "a photo of four clocks"
        assert ImageRef.model_validate(values["best"]["image"]).uri.startswith(str(tmp_path / "home"))
    finally:
        process.terminate()
        process.wait(30)


def test_cli_demo_json(tmp_path: Path) -> None:
    result = _cli("demo", "--out", str(tmp_path / "demo"), "--json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    for key in ("n", "reward_initial", "reward_final", "accuracy_initial", "accuracy_final", "per_tag"):
        assert key in out and key in out["paper"] and key in out["deep"], key
    assert out["paper"]["accuracy_final"] > out["paper"]["accuracy_initial"]
    assert out["deep"]["accuracy_final"] >= out["paper"]["accuracy_final"]
    assert (tmp_path / "demo" / "paper" / "report.html").exists() and (
        tmp_path / "demo" / "deep" / "report.html"
    ).exists()

"""Batch runs: run directory, traces, resume (also after SIGKILL), isolation of failing prompts, a critic server that
dies mid-run, the CLI, the HTML report in headless Chromium, and the graph served by `langgraph dev`."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from browser import require_chromium

from helpers import PYTHON, free_port, wait_for_http
from helpers import run_cli as _cli
from rationalrewards.agents.refiner import CriticRefiner
from rationalrewards.agents.suite import write_jsonl
from rationalrewards.graphs.gcr_config import GCRConfig
from rationalrewards.graphs.trace import read_trace
from rationalrewards.rewardmodel.images import content_path
from rationalrewards.rewardmodel.schemas import ImageRef
from rationalrewards.runtime.gcr_runner import GCRRunner
from rationalrewards.runtime.rundir import RunDirectoryError, read_jsonl
from rationalrewards.sketch.generator import SketchGenerator
from rationalrewards.sketch.grader import SketchGrader
from rationalrewards.sketch.oracle import SketchOracle
from rationalrewards.sketch.suites import make_suite

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
    for name in ("run.json", "trace.jsonl", "results.jsonl", "summary.json", "report.html"):
        assert (run / name).exists(), name
    assert not (run / "checkpoints.sqlite").exists()  # exit durability, no pause: nothing a checkpoint would serve
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
        best = result["best"]["image"]
        assert Path(best["uri"]) == content_path(run / "images", best["sha256"]).resolve()
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
    from rationalrewards.runtime._checkpoints import sqlite_checkpointer

    async def pragmas() -> tuple[str, int]:
        async with sqlite_checkpointer(tmp_path / "c.sqlite") as saver:
            return await saver.pragma("journal_mode"), await saver.pragma("synchronous")

    assert asyncio.run(pragmas()) == ("wal", 1)  # 1 = NORMAL: committed steps survive a killed process (see kill test)


def test_finished_threads_leave_no_checkpoints_unless_history_is_kept(tmp_path: Path) -> None:
    """A finished prompt's resume key is its results.jsonl line: its checkpoints are deleted, so the database holds
    only the threads in flight (and under the default exit durability there is no database at all); --keep-history
    keeps them all for LangGraph time travel."""
    import sqlite3

    def stored_threads(run: Path) -> tuple[int, int]:
        with sqlite3.connect(run / "checkpoints.sqlite") as db:
            threads = db.execute("SELECT COUNT(DISTINCT thread_id) FROM checkpoints").fetchone()[0]
            writes = db.execute("SELECT COUNT(*) FROM writes").fetchone()[0]
        return threads, writes

    suite = make_suite(6, seed=4)
    default = asyncio.run(_runner(tmp_path / "default", "deep").run(suite))
    pruned = asyncio.run(_runner(tmp_path / "pruned", "deep", durability="async").run(suite))
    named = asyncio.run(_runner(tmp_path / "named", "deep", checkpointer="sqlite").run(suite))
    kept = asyncio.run(_runner(tmp_path / "kept", "deep", keep_history=True).run(suite))
    assert default["finished"] == pruned["finished"] == named["finished"] == kept["finished"] == 6
    assert not (tmp_path / "default" / "checkpoints.sqlite").exists()
    assert stored_threads(tmp_path / "pruned") == (0, 0)  # every step saved while running, pruned once finished
    assert stored_threads(tmp_path / "named") == (0, 0)  # a checkpointer asked for by name is used, then pruned
    assert stored_threads(tmp_path / "kept")[0] == 6
    runs = [read_jsonl(tmp_path / name / "results.jsonl") for name in ("default", "pruned", "named", "kept")]
    by_prompt = [{r["sample_id"]: (r["reward_final"], r["rounds"]) for r in run} for run in runs]
    assert all(other == by_prompt[0] for other in by_prompt[1:])  # checkpointing changes nothing in the results
    rerun = asyncio.run(_runner(tmp_path / "pruned", "deep").run(suite))  # resume of a finished run: nothing redone
    assert rerun["finished"] == 6 and len(read_jsonl(tmp_path / "pruned" / "results.jsonl")) == 6


def test_a_run_that_may_pause_for_a_human_keeps_its_waiting_threads_in_the_database(tmp_path: Path) -> None:
    """Human-in-the-loop threads stop at an interrupt and are resumed from their checkpoint, so the runner attaches
    its SQLite checkpointer even under the default exit durability."""
    import sqlite3

    config = GCRConfig.preset("paper", human_in_the_loop=True)
    summary = asyncio.run(_runner(tmp_path / "run", config=config).run(make_suite(8, seed=5)))
    waiting = summary["waiting_for_human"]
    assert waiting and summary["finished"] + len(waiting) == 8
    with sqlite3.connect(tmp_path / "run" / "checkpoints.sqlite") as db:
        threads = {row[0] for row in db.execute("SELECT DISTINCT thread_id FROM checkpoints")}
    assert threads == set(waiting)  # the paused threads, and not the finished ones


def test_content_addressed_files_fan_out_and_older_flat_run_directories_still_resolve(tmp_path: Path) -> None:
    from PIL import Image

    from rationalrewards.agents.generator import GeneratedImage
    from rationalrewards.graphs.store import GenerationCache
    from rationalrewards.rewardmodel.images import image_ref_from_pil

    ref = image_ref_from_pil(Image.new("RGB", (8, 8), (1, 2, 3)), tmp_path / "images")
    assert Path(ref.uri) == content_path(tmp_path / "images", ref.sha256).resolve()
    assert (Path(ref.uri).parent.parent.name, Path(ref.uri).parent.name) == (ref.sha256[:2], ref.sha256[2:4])
    cache = GenerationCache(tmp_path / "cache")
    made = GeneratedImage(image=ref, prompt="a cat", seed=0, generator="g")
    key = cache.key("g", "a cat", 0, None)
    cache.put(key, made)
    assert content_path(tmp_path / "cache", key, ".json").is_file() and cache.get(key) == made
    flat_key = cache.key("g", "a dog", 1, None)  # an entry written before entries were fanned out
    (tmp_path / "cache" / f"{flat_key}.json").write_text(made.model_dump_json())
    assert cache.get(flat_key) == made
    one_level_key = cache.key("g", "a cow", 2, None)  # ... and one written with one level of fan-out
    (tmp_path / "cache" / one_level_key[:2]).mkdir(exist_ok=True)
    (tmp_path / "cache" / one_level_key[:2] / f"{one_level_key}.json").write_text(made.model_dump_json())
    assert cache.get(one_level_key) == made
    generator = SketchGenerator(tmp_path / "sketch")
    [image] = asyncio.run(generator.generate(["a photo of a cat"], [0]))
    oracle = SketchOracle(image_dirs=[tmp_path / "sketch"])
    inline = image.image.model_copy(  # the same bytes as a data URL: the oracle finds the file by its digest
        update={"uri": "data:image/png;base64," + base64.b64encode(Path(image.image.uri).read_bytes()).decode()}
    )
    scene = oracle.scene_of(image.image)
    assert oracle.scene_of(inline) == scene
    for layout in (Path(image.image.sha256[:2]), Path()):  # the one-level and flat layouts of older run directories
        old = tmp_path / "old" / layout
        old.mkdir(parents=True, exist_ok=True)
        for sidecar in Path(image.image.uri).parent.glob(f"{image.image.sha256}*"):
            (old / sidecar.name).write_bytes(sidecar.read_bytes())
        assert SketchOracle(image_dirs=[tmp_path / "old"]).scene_of(inline) == scene
        for moved in old.glob(f"{image.image.sha256}*"):
            moved.unlink()


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
def test_kills_at_many_points_never_duplicate_a_round(tmp_path: Path) -> None:
    """SIGKILL one run again and again (before any result, between prompts, mid-thread), resume each time: no round
    is ever recorded twice, and the finished run equals an uninterrupted one, generation counts included."""
    import random

    suite = write_jsonl(make_suite(90, seed=13), tmp_path / "suite.jsonl")
    args = ["refine", "--suite", str(suite), "--preset", "deep", "--concurrency", "2", "--json"]
    killed = tmp_path / "killed"
    rng = random.Random(7)
    kills = 0
    for threshold in (0, 1, 4, 9, 15, 24, 36, 50, 66):
        process = subprocess.Popen(
            [PYTHON, "-m", "rationalrewards.cli.main", *args, "--out", str(killed)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            started = (killed / "run.json").exists()
            if started and len(read_jsonl(killed / "results.jsonl")) >= threshold:
                break
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.25))  # land anywhere: between steps, mid-node, mid-append
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
        process.wait()
    assert kills >= 6, "most kills must land mid-run"
    resumed = _cli(*args, "--out", str(killed))
    assert resumed.returncode == 0, resumed.stderr
    full = _cli(*args, "--out", str(tmp_path / "full"))
    a, b = json.loads(resumed.stdout), json.loads(full.stdout)
    results = read_jsonl(killed / "results.jsonl")
    ids = [r["sample_id"] for r in results]
    assert len(ids) == len(set(ids)) == 90
    for result in results:
        rounds = [r["round"] for r in result["rounds"]]
        assert rounds == list(range(len(rounds))), (result["sample_id"], rounds)  # no round recorded twice
        assert len(result["candidates"]) == sum(len(r["candidates"]) for r in result["rounds"])
    for key in (
        "reward_initial",
        "reward_final",
        "accuracy_initial",
        "accuracy_final",
        "per_tag",
        "generations",
        "critique_calls",
        "stop_reasons",
    ):
        assert a[key] == b[key], key


_CRASH_AT_CHECKPOINT = """
import asyncio, os, sys
from rationalrewards.agents.refiner import CriticRefiner
from rationalrewards.sketch.generator import SketchGenerator
from rationalrewards.sketch.oracle import SketchOracle
from rationalrewards.runtime.batch import run_thread
from rationalrewards.runtime._checkpoints import sqlite_checkpointer
from rationalrewards.graphs.gcr import GCRContext, GCRGraph
from rationalrewards.graphs.gcr_config import GCRConfig

db, images, crash_at = sys.argv[1], sys.argv[2], int(sys.argv[3])

async def main():
    async with sqlite_checkpointer(db) as saver:
        real_put, puts = saver.aput, [0]

        async def crashing_put(*args, **kwargs):
            puts[0] += 1
            if puts[0] == crash_at:  # the finished task's writes are saved; its checkpoint is not
                os._exit(9)
            return await real_put(*args, **kwargs)

        saver.aput = crashing_put
        graph = GCRGraph(GCRConfig.preset("deep", max_rounds=3, candidates=2, threshold=4.0)).compile(checkpointer=saver)
        context = GCRContext(generator=SketchGenerator(images), critic=SketchOracle(), refiner=CriticRefiner())

        async def first_input():
            return {"prompt": "a photo of four clocks", "seed": 5, "sample_id": "t"}

        await run_thread(graph, "t", first_input, context=context, recursion_limit=60)

asyncio.run(main())
"""


@pytest.mark.slow
def test_a_crash_between_a_nodes_writes_and_its_checkpoint_resumes_without_duplicates(tmp_path: Path) -> None:
    """The window the random kills rarely hit (1 in 8 trials lost a round to it): a process dies after a task's writes
    are saved but before the checkpoint that follows. Crash there at every checkpoint of a thread, then resume."""
    from rationalrewards.graphs.gcr import GCRContext, GCRGraph
    from rationalrewards.runtime._checkpoints import sqlite_checkpointer
    from rationalrewards.runtime.batch import run_thread
    from rationalrewards.sketch.oracle import SketchOracle

    config = GCRConfig.preset("deep", max_rounds=3, candidates=2, threshold=4.0)

    async def finish(db: Path, images: Path) -> dict[str, Any]:
        async with sqlite_checkpointer(db) as saver:
            graph = GCRGraph(config).compile(checkpointer=saver)
            context = GCRContext(generator=SketchGenerator(images), critic=SketchOracle(), refiner=CriticRefiner())

            async def first_input() -> dict[str, Any]:
                return {"prompt": "a photo of four clocks", "seed": 5, "sample_id": "t"}

            values = await run_thread(graph, "t", first_input, context=context, recursion_limit=60)
            assert values is not None
            return values

    clean = asyncio.run(finish(tmp_path / "clean.sqlite", tmp_path / "images"))
    assert len(clean["rounds"]) >= 2, "the thread must have rounds to duplicate"
    crashed = 0
    for crash_at in range(2, 40):
        db = tmp_path / f"crash-{crash_at}.sqlite"
        run = subprocess.run(
            [PYTHON, "-c", _CRASH_AT_CHECKPOINT, str(db), str(tmp_path / "images"), str(crash_at)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if run.returncode == 0:
            break  # the thread finished before this many checkpoints: every point has been tried
        assert run.returncode == 9, run.stderr
        crashed += 1
        resumed = asyncio.run(finish(db, tmp_path / "images"))
        assert [r["round"] for r in resumed["rounds"]] == list(range(len(resumed["rounds"]))), crash_at
        for key in ("rounds", "best", "stop_reason", "generations", "critique_calls"):
            assert resumed[key] == clean[key], (crash_at, key)

        def made(values: dict[str, Any]) -> dict[str, Any]:  # what was generated, without wall-clock timings
            return {k: {f: v for f, v in c.items() if f != "generate_ms"} for k, c in values["candidates"].items()}

        assert made(resumed) == made(clean), crash_at
    assert crashed >= 8


def _headless(browser: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--window-size=1400,1200",
    ]
    return subprocess.run([browser, *flags, *args], capture_output=True, text=True, timeout=120, check=True)


def test_report_renders_in_headless_chromium_with_images(tmp_path: Path) -> None:
    browser = require_chromium()
    import numpy as np
    from PIL import Image

    from rationalrewards.runtime.report import write_report
    from rationalrewards.sketch._vocab import BACKGROUND
    from rationalrewards.sketch.suites import demo_suite

    run = tmp_path / "run"
    asyncio.run(_runner(run, preset="deep").run(demo_suite()[:5]))
    write_report(run, per_page=2)  # 5 prompts -> 3 pages
    pages = sorted((run / "report").glob("page-*.html"))
    assert len(pages) == 3
    dom = _headless(browser, tmp_path / "p0", "--dump-dom", (run / "report.html").as_uri()).stdout
    assert "first image" in dom and all(f'href="report/{page.name}"' in dom for page in pages)  # every page linked
    assert dom.count('class="thumb"') == 10  # the table: a first and a kept thumbnail per prompt
    shot = tmp_path / "page.png"
    _headless(browser, tmp_path / "p1", f"--screenshot={shot}", pages[0].as_uri())
    pixels = np.asarray(Image.open(shot).convert("RGB"))
    # Loaded sketch images show their grey background; a broken image shows none of it.
    share = float((pixels == np.array(BACKGROUND, dtype=np.uint8)).all(axis=-1).mean())
    assert share > 0.05, f"only {share:.3f} of the screenshot shows sketch images"
    page_dom = _headless(browser, tmp_path / "p2", "--dump-dom", pages[1].as_uri()).stdout
    assert 'href="../report.html"' in page_dom and "previous" in page_dom and "next" in page_dom


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
        url = f"http://127.0.0.1:{port}"
        wait_for_http(f"{url}/ok", process, timeout=120)
        from langgraph_sdk import get_client

        async def drive() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
            client = get_client(url=url)
            [assistant] = await client.assistants.search(graph_id="gcr")
            schemas = await client.assistants.get_schemas(assistant["assistant_id"])
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
            values = (await client.threads.get_state(thread["thread_id"]))["values"]
            # A run's settings (Studio's context form): the paper preset, the kept image inline; the source image
            # of an edit given as a file:// URI, as a remote client would write it.
            edit = await client.runs.wait(
                None,
                "gcr",
                input={"prompt": "add a red cat", "source_image": "file://" + values["best"]["image"]["uri"]},
                context={"preset": "paper", "inline_images": True},
            )
            return schemas, values, edit

        schemas, values, edit = asyncio.run(drive())
        form = schemas["input_schema"]["properties"]
        assert {"prompt", "seed", "source_image"} <= set(form) and "candidates" not in form, sorted(form)
        assert "description" in form["prompt"] and schemas["input_schema"]["required"] == ["prompt"]
        assert "best" in schemas["output_schema"]["properties"]
        assert set(schemas["context_schema"]["properties"]) >= {"preset", "max_rounds", "candidates", "inline_images"}
        assert values["stop_reason"] in ("passed", "max_rounds", "plateau")
        assert values["rounds"][0]["prompt"] == "a photo of four clocks"
        kept = ImageRef.model_validate(values["best"]["image"])
        assert kept.uri.startswith(str(tmp_path / "home"))
        # A client elsewhere fetches the kept image from the same server by its hash.
        served = httpx.get(f"{url}/images/{kept.sha256}.png", timeout=30)
        assert served.status_code == 200 and hashlib.sha256(served.content).hexdigest() == kept.sha256
        assert httpx.get(f"{url}/images/..%2F..%2Fetc%2Fpasswd", timeout=30).status_code == 404
        assert edit["task"] == "edit" and len(edit["rounds"]) <= 2  # the paper preset: at most one refinement
        inline = edit["best"]["data_url"]
        assert hashlib.sha256(base64.b64decode(inline.split(",", 1)[1])).hexdigest() == edit["best"]["image"]["sha256"]
        if edit["best"]["reward"] is None:
            assert "not re-scored" in edit["best"]["reward_note"]
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


@pytest.mark.slow
def test_the_index_of_a_10000_prompt_run_opens_with_plots_and_a_working_filter(tmp_path: Path) -> None:
    """A real 40-prompt run, its results repeated under new ids to 10,000 prompts: the index opens in Chromium with its
    pictures, the status filter (from the address, as a shared link carries it) shows exactly the matching prompts,
    and no file of the report is large."""
    browser = require_chromium()
    from rationalrewards.runtime.report import write_report
    from rationalrewards.runtime.report_index import status_of

    run = tmp_path / "run"
    asyncio.run(_runner(run, preset="paper").run(make_suite(40, seed=3)))
    results = [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines()]
    with (run / "results.jsonl").open("w") as f:
        for k in range(10_000):
            result = dict(results[k % len(results)])
            result["sample_id"], result["prompt"] = f"s{k:05d}", f"{result['prompt']} #{k}"
            f.write(json.dumps(result) + "\n")
    statuses = [status_of(results[k % len(results)]) for k in range(10_000)]
    assert "failed" in statuses and "improved" in statuses
    write_report(run)
    sizes = {p.name: p.stat().st_size for p in (run / "report").iterdir()}
    assert (run / "report.html").stat().st_size < 100_000 and max(sizes.values()) < 3_000_000, max(sizes.values())
    assert len([n for n in sizes if n.startswith("rows-")]) == 10  # 1,000 rows a file
    dom = _headless(
        browser,
        tmp_path / "p0",
        "--virtual-time-budget=20000",
        "--dump-dom",
        (run / "report.html").as_uri() + "#status=failed",
    ).stdout
    assert f'<span id="count">{statuses.count("failed")}</span>' in dom
    assert dom.count('class="status failed"') == min(100, statuses.count("failed"))  # one view of 100 rows
    assert all(f'src="report/plot-{name}.png"' in dom for name in ("accuracy", "rewards", "stops"))
    shot = tmp_path / "index.png"
    _headless(
        browser, tmp_path / "p1", "--virtual-time-budget=20000", f"--screenshot={shot}", (run / "report.html").as_uri()
    )
    assert shot.stat().st_size > 50_000

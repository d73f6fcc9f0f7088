"""What the LangGraph machinery costs: the same GCR workload through the graph and through a plain asyncio loop.

Workload: a 500-prompt sketch suite, up to 3 rounds of 4 candidates (fresh seeds, re-scoring, stop when every aspect
passes), the same backends and the same concurrency in both. Both make one generator call per round with the 4
candidates (the graph's Send fan-out follows the generator's preferred batch, as `GCRRunner` configures it). Measured side by side in one process:
1. sketch backends as they are (CPU-bound), graph with an in-memory checkpointer and with the SQLite checkpointer;
2. a latency-bound critic: an OpenAI-compatible loopback server answering after 200 ms.
Each variant runs `--repeats` times, interleaved with the plain loop (this machine is noisy: a fixed order would bias
whichever runs later), and the medians are compared. Prints the overhead ratios, the graph's per-node overhead in ms,
and peak Python memory (tracemalloc).

    .venv/bin/python benchmarks/gcr_overhead.py [--n 500] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from agents.refiner import CriticRefiner, RefineHistory, RoundMemory
from agents.sketch.generator import SketchGenerator
from agents.sketch.oracle import SketchOracle
from agents.sketch.suites import make_suite
from graphs.gcr import GCRContext, GCRGraph, _critique_record, _seed_for
from graphs.gcr_config import GCRConfig
from rewardmodel.schemas import Critique, CritiqueRequest
from rewardmodel.scoring import passes_threshold, reward_or_none

CONFIG = GCRConfig(max_rounds=3, candidates=4, rescore=True, keep_best=True, seeds="fresh", plateau_rounds=0)


async def plain_loop(rows: list[dict[str, Any]], generator: Any, critic: Any, concurrency: int) -> int:
    """The same protocol without LangGraph: returns the number of images generated."""
    refiner = CriticRefiner()
    semaphore = asyncio.Semaphore(concurrency)
    images = 0

    async def one(index: int, row: dict[str, Any]) -> None:
        nonlocal images
        async with semaphore:
            prompt, memory, best = row["prompt"], [], None
            for round_ in range(CONFIG.max_rounds):
                seeds = [_seed_for(CONFIG, 0, round_, k) for k in range(CONFIG.candidates)]
                made = await generator.generate([prompt] * len(seeds), seeds)
                images += len(made)
                answers = await critic.critique([CritiqueRequest(prompt=row["prompt"], image=m.image) for m in made])
                scored = [(reward_or_none(a), k, a) for k, a in enumerate(answers) if isinstance(a, Critique)]
                if not scored:
                    break
                reward, _, critique = max(scored, key=lambda t: (t[0], -t[1]))
                if best is None or reward > best[0]:
                    best = (reward, critique)
                memory.append(RoundMemory(prompt=prompt, critique=_critique_record(critique), reward=reward))
                if passes_threshold(critique, CONFIG.threshold) or round_ + 1 >= CONFIG.max_rounds:
                    break
                prompt = await refiner.refine(RefineHistory(original_prompt=row["prompt"], rounds=tuple(memory)))

    await asyncio.gather(*(one(i, row) for i, row in enumerate(rows)))
    return images


async def graph_run(rows: list[dict[str, Any]], generator: Any, critic: Any, concurrency: int, sqlite: Path | None) -> tuple[int, int]:
    """The graph over the same rows: (images generated, node executions)."""
    from langgraph.checkpoint.memory import InMemorySaver

    async def run_all(checkpointer: Any) -> tuple[int, int]:
        gcr_config = CONFIG.for_generator(generator)  # as the runner does: the sketch generator renders 4 candidates per call
        graph = GCRGraph(gcr_config).compile(checkpointer=checkpointer)
        context = GCRContext(generator=generator, critic=critic, refiner=CriticRefiner())
        semaphore = asyncio.Semaphore(concurrency)
        totals = [0, 0]

        async def one(index: int, row: dict[str, Any]) -> None:
            async with semaphore:
                config = {"configurable": {"thread_id": f"t{index}"}, "recursion_limit": 100}
                out = await graph.ainvoke({"prompt": row["prompt"], "seed": 0}, config, context=context)
                rounds = len(out["rounds"])
                totals[0] += out["generations"]
                sends = -(-gcr_config.candidates // gcr_config.generate_batch)
                totals[1] += rounds * (sends + 2) + (rounds - 1)  # generate tasks, critique, select; refine

        await asyncio.gather(*(one(i, row) for i, row in enumerate(rows)))
        return totals[0], totals[1]

    if sqlite is None:
        return await run_all(InMemorySaver())
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    async with AsyncSqliteSaver.from_conn_string(str(sqlite)) as saver:
        return await run_all(saver)


def measure(make: Any, trace_memory: bool = False) -> tuple[float, Any, float]:
    """(seconds, result, peak MiB). Peak memory comes from a separate traced run: tracemalloc slows allocation-heavy
    code (the graph allocates far more than the plain loop), so timed runs are never traced."""
    if trace_memory:
        tracemalloc.start()
    start = time.perf_counter()
    result = asyncio.run(make())
    elapsed = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1] / 2**20 if trace_memory else 0.0
    if trace_memory:
        tracemalloc.stop()
    return elapsed, result, peak



def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def compare(label: str, variants: dict[str, Any], repeats: int) -> dict[str, tuple[float, Any, float]]:
    """Run the variants interleaved `repeats` times; per variant (median seconds, last result, max peak MiB)."""
    times: dict[str, list[float]] = {name: [] for name in variants}
    results: dict[str, Any] = {}
    peaks: dict[str, float] = {name: 0.0 for name in variants}
    for _ in range(repeats):
        for name, make in variants.items():
            elapsed, results[name], _ = measure(make)
            times[name].append(elapsed)
    for name, make in variants.items():
        peaks[name] = measure(make, trace_memory=True)[2]
    print(f"  medians over {repeats} interleaved runs ({label}; peak Python memory from one extra traced run):")
    for name in variants:
        print(f"    {name:<34} {_median(times[name]):7.2f} s   peak {peaks[name]:6.1f} MiB")
    return {name: (_median(times[name]), results[name], peaks[name]) for name in variants}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rows = make_suite(args.n, seed=17)
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        counter = iter(range(10_000))

        def fresh() -> SketchGenerator:
            return SketchGenerator(tmp_path / f"images{next(counter)}")  # no file reuse between runs

        critic = SketchOracle()
        print(f"1. sketch backends as they are: {args.n} prompts, <= 3 rounds x 4 candidates, concurrency {args.concurrency}")
        asyncio.run(plain_loop(rows[:20], fresh(), critic, args.concurrency))  # warm caches (glyphs, imports)
        asyncio.run(graph_run(rows[:20], fresh(), critic, args.concurrency, None))
        runs = compare("CPU-bound", {
            "plain asyncio loop": lambda: plain_loop(rows, fresh(), critic, args.concurrency),
            "graph, in-memory checkpointer": lambda: graph_run(rows, fresh(), critic, args.concurrency, None),
            "graph, SQLite checkpointer": lambda: graph_run(rows, fresh(), critic, args.concurrency, tmp_path / f"c{next(counter)}.sqlite"),
        }, args.repeats)
        plain_s, images, _ = runs["plain asyncio loop"]
        graph_s, (graph_images, nodes), _ = runs["graph, in-memory checkpointer"]
        sqlite_s = runs["graph, SQLite checkpointer"][0]
        print(f"  images: plain {images}, graph {graph_images}; node executions in the graph: {nodes}")
        print(f"  overhead ratio (in-memory): {graph_s / plain_s:.3f}  (target <= 1.25)")
        print(f"  overhead ratio (SQLite):    {sqlite_s / plain_s:.3f}")
        print(f"  per-node overhead: {(graph_s - plain_s) / nodes * 1000:.2f} ms in-memory, {(sqlite_s - plain_s) / nodes * 1000:.2f} ms SQLite")

        print("2. latency-bound: an OpenAI-compatible critic on loopback answering after 200 ms, concurrency 8")
        from rewardmodel.backends.openai_compat import OpenAICompatibleRewardModel
        from rewardmodel.mock_server import free_port

        port = free_port()
        server = subprocess.Popen([sys.executable, "-m", "rewardmodel.mock_server", "--port", str(port), "--latency", "0.2", "--no-validate"])
        try:
            asyncio.run(OpenAICompatibleRewardModel(f"http://127.0.0.1:{port}").wait_until_healthy(30))

            async def with_http_critic(run: Any) -> Any:
                http = OpenAICompatibleRewardModel(f"http://127.0.0.1:{port}", "mock-critic", concurrency=64)
                try:
                    return await run(http)
                finally:
                    await http.aclose()

            runs = compare("latency-bound", {
                "plain asyncio loop": lambda: with_http_critic(lambda c: plain_loop(rows, fresh(), c, 8)),
                "graph, in-memory checkpointer": lambda: with_http_critic(lambda c: graph_run(rows, fresh(), c, 8, None)),
            }, args.repeats)
            plain_s = runs["plain asyncio loop"][0]
            graph_s, (_, nodes), _ = runs["graph, in-memory checkpointer"]
            print(f"  overhead ratio: {graph_s / plain_s:.3f}  (target <= 1.02); per-node {(graph_s - plain_s) / nodes * 1000:.2f} ms")
        finally:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    main()

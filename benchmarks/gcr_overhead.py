"""What the LangGraph machinery costs: the same GCR workload through the graph and through a plain asyncio loop.

Workload: a 500-prompt sketch suite, up to 3 rounds of 4 candidates (fresh seeds, re-scoring, stop when every aspect
passes), the same backends and the same concurrency in both. Both make one generator call per round with the 4
candidates (the graph follows the generator's preferred batch, as `GCRRunner` configures it). Measured side by side in
one process:
1. sketch backends as they are (CPU-bound): the graph as `GCRGraph(...).compile()` returns it (no checkpointer), with
   an in-memory checkpointer, as the runner runs it by default (`run_thread`, and a checkpointer only where
   `batch.needs_checkpointer` says one can be read back: by default none), with a SQLite checkpointer under exit
   durability (what `--checkpointer sqlite` asks for; finished threads deleted), and with SQLite saving every step;
   and a floor: the same four nodes wired the
   same way in LangGraph with nothing in them but the backend calls (minimal state, no checkpointer, no records). The
   floor is what LangGraph's supersteps cost by themselves on this machine;
2. latency-bound: an OpenAI-compatible critic on loopback answering after 200 ms.
Each variant runs `--repeats` times, interleaved with the plain loop (this machine is noisy: a fixed order would bias
whichever runs later), and the medians are compared. Prints the overhead ratios, the graph's per-node overhead in ms
(wall, and CPU of the event-loop thread, which is where the graph's own work runs and is steadier than wall time),
and peak Python memory (tracemalloc).

    .venv/bin/python benchmarks/gcr_overhead.py [--n 500] [--concurrency 16] [--repeats 3] [--skip-latency]
"""

from __future__ import annotations

import argparse
import asyncio
import operator
import subprocess
import sys
import tempfile
import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.types import Command

from rationalrewards.agents.refiner import CriticRefiner, RefineHistory, RoundMemory
from rationalrewards.graphs.gcr import GCRContext, GCRGraph, _seed_for
from rationalrewards.graphs.gcr_config import GCRConfig
from rationalrewards.rewardmodel.schemas import Critique, CritiqueRequest
from rationalrewards.rewardmodel.scoring import passes_threshold, reward_or_none
from rationalrewards.runtime.batch import default_durability, needs_checkpointer, run_thread
from rationalrewards.sketch.generator import SketchGenerator
from rationalrewards.sketch.oracle import SketchOracle
from rationalrewards.sketch.suites import make_suite

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
                memory.append(RoundMemory(prompt=prompt, critique=critique, reward=reward))
                if passes_threshold(critique, CONFIG.threshold) or round_ + 1 >= CONFIG.max_rounds:
                    break
                prompt = await refiner.refine(RefineHistory(original_prompt=row["prompt"], rounds=tuple(memory)))

    await asyncio.gather(*(one(i, row) for i, row in enumerate(rows)))
    return images


RUNNER_DURABILITY = default_durability(None, keep_history=False)  # what `GCRRunner` uses unless told otherwise
RUNNER_SAVES = needs_checkpointer(
    pauses=CONFIG.human_in_the_loop, keep_history=False, durability=RUNNER_DURABILITY, checkpointer=None
)


async def graph_run(
    rows: list[dict[str, Any]],
    generator: Any,
    critic: Any,
    concurrency: int,
    checkpointer: Literal["none", "memory"] | Path = "none",
    durability: Any = "async",
    as_runner: bool = False,
) -> tuple[int, int]:
    """The graph over the same rows, as `GCRGraph(...).compile()` builds it (no checkpointer), with an in-memory one,
    or with a SQLite one at the given path: (images generated, node executions). `as_runner`: each thread through
    the runner's `run_thread` (its state reads and writes), as `GCRRunner` runs it."""
    from langgraph.checkpoint.memory import InMemorySaver

    saver: Any = None

    async def run_all(checkpointer: Any) -> tuple[int, int]:
        gcr_config = CONFIG.for_generator(
            generator
        )  # as the runner does: the sketch generator renders 4 candidates per call
        graph = GCRGraph(gcr_config).compile(checkpointer=checkpointer)
        context = GCRContext(generator=generator, critic=critic, refiner=CriticRefiner())
        semaphore = asyncio.Semaphore(concurrency)
        totals = [0, 0]

        async def one(index: int, row: dict[str, Any]) -> None:
            async with semaphore:
                config = {"configurable": {"thread_id": f"t{index}"}, "recursion_limit": 100}
                if as_runner:

                    async def first_input() -> dict[str, Any]:
                        return {"prompt": row["prompt"], "seed": 0}

                    values = await run_thread(
                        graph, f"t{index}", first_input, context=context, recursion_limit=100, durability=durability
                    )
                    assert values is not None
                    out = values
                else:
                    out = await graph.ainvoke(
                        {"prompt": row["prompt"], "seed": 0}, config, context=context, durability=durability
                    )
                if saver is not None:  # the SQLite run: as the runner does once a prompt's results line is written
                    await saver.adelete_thread(f"t{index}")
                rounds = len(out["rounds"])
                totals[0] += out["generations"]
                sends = -(-gcr_config.candidates // gcr_config.generate_batch)
                totals[1] += rounds * (sends + 2) + (rounds - 1)  # generate tasks, critique, select; refine

        await asyncio.gather(*(one(i, row) for i, row in enumerate(rows)))
        return totals[0], totals[1]

    if checkpointer == "none":
        return await run_all(None)
    if checkpointer == "memory":
        return await run_all(InMemorySaver())
    from rationalrewards.runtime._checkpoints import sqlite_checkpointer

    async with sqlite_checkpointer(checkpointer) as sqlite_saver:
        saver = sqlite_saver
        return await run_all(saver)


class _FloorState(TypedDict, total=False):
    prompt: str
    current_prompt: str
    round: int
    made: list[Any]
    answers: list[Any]
    memory: Annotated[list[RoundMemory], operator.add]
    best_reward: float


def floor_graph(generator: Any, critic: Any) -> Any:
    """generate -> critique -> select -> refine -> generate, wired as the GCR graph wires it when one generator call
    makes every candidate (edges into generate, select and refine routing by Command), holding only what the plain
    loop holds."""
    refiner = CriticRefiner()

    async def generate(state: _FloorState) -> dict[str, Any]:
        round_ = state.get("round", 0)
        seeds = [_seed_for(CONFIG, 0, round_, k) for k in range(CONFIG.candidates)]
        return {"made": await generator.generate([state.get("current_prompt") or state["prompt"]] * len(seeds), seeds)}

    async def critique(state: _FloorState) -> dict[str, Any]:
        return {
            "answers": await critic.critique(
                [CritiqueRequest(prompt=state["prompt"], image=m.image) for m in state["made"]]
            )
        }

    async def select(state: _FloorState) -> Command[Any]:
        scored = [(reward_or_none(a), k, a) for k, a in enumerate(state["answers"]) if isinstance(a, Critique)]
        if not scored:
            return Command(goto=END)
        reward, _, critique = max(scored, key=lambda t: (t[0], -t[1]))
        round_ = state.get("round", 0)
        stop = passes_threshold(critique, CONFIG.threshold) or round_ + 1 >= CONFIG.max_rounds
        memory = RoundMemory(prompt=state.get("current_prompt") or state["prompt"], critique=critique, reward=reward)
        return Command(
            update={"best_reward": max(reward, state.get("best_reward", reward)), "memory": [memory]},
            goto=END if stop else "refine",
        )

    async def refine(state: _FloorState) -> Command[Any]:
        prompt = await refiner.refine(RefineHistory(original_prompt=state["prompt"], rounds=tuple(state["memory"])))
        return Command(update={"current_prompt": prompt, "round": state.get("round", 0) + 1}, goto="generate")

    builder = StateGraph(_FloorState)
    builder.add_node("generate", generate)
    builder.add_node("critique", critique)
    builder.add_node("select", select, destinations=("refine", END))
    builder.add_node("refine", refine, destinations=("generate",))
    builder.add_edge(START, "generate")
    builder.add_edge("generate", "critique")
    builder.add_edge("critique", "select")
    return builder.compile()


async def floor_run(rows: list[dict[str, Any]], generator: Any, critic: Any, concurrency: int) -> None:
    graph = floor_graph(generator, critic)
    semaphore = asyncio.Semaphore(concurrency)

    async def one(row: dict[str, Any]) -> None:
        async with semaphore:
            await graph.ainvoke({"prompt": row["prompt"]}, {"recursion_limit": 100})

    await asyncio.gather(*(one(row) for row in rows))


@dataclass
class Measured:
    seconds: float  # median wall time
    loop_cpu: float  # median CPU seconds of the event-loop thread: where the graph's own work runs; steadier than wall
    peak_mib: float  # peak Python memory, from one extra traced run
    result: Any


def _timed(make: Any) -> tuple[float, float, Any]:
    wall, cpu = time.perf_counter(), time.thread_time()
    result = asyncio.run(make())
    return time.perf_counter() - wall, time.thread_time() - cpu, result


def _peak_mib(make: Any) -> float:
    """tracemalloc slows allocation-heavy code (the graph allocates far more than the plain loop), so timed runs are
    never traced; the peak comes from a separate run."""
    tracemalloc.start()
    asyncio.run(make())
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return peak


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def compare(label: str, n: int, variants: dict[str, Any], repeats: int) -> dict[str, Measured]:
    """Run the variants interleaved `repeats` times and print, per variant, medians and peak memory."""
    walls: dict[str, list[float]] = {name: [] for name in variants}
    cpus: dict[str, list[float]] = {name: [] for name in variants}
    results: dict[str, Any] = {}
    for _ in range(repeats):
        for name, make in variants.items():
            wall, cpu, results[name] = _timed(make)
            walls[name].append(wall)
            cpus[name].append(cpu)
    measured = {
        name: Measured(_median(walls[name]), _median(cpus[name]), _peak_mib(make), results[name])
        for name, make in variants.items()
    }
    print(f"  medians over {repeats} interleaved runs ({label}):")
    print(f"    {'':<46} {'wall':>8}  {'event-loop CPU/prompt':>21}  {'peak Python memory':>18}")
    for name, m in measured.items():
        print(f"    {name:<46} {m.seconds:7.2f}s  {m.loop_cpu / n * 1000:18.2f} ms  {m.peak_mib:14.1f} MiB")
    return measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-latency", action="store_true", help="only the CPU-bound comparison")
    parser.add_argument("--skip-cpu-bound", action="store_true", help="only the latency-bound comparison")
    args = parser.parse_args()
    rows, conc = make_suite(args.n, seed=17), args.concurrency
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        counter = iter(range(10_000))

        def fresh() -> SketchGenerator:
            return SketchGenerator(tmp_path / f"images{next(counter)}")  # no file reuse between runs

        def runner_saver() -> Literal["none"] | Path:
            return tmp_path / f"c{next(counter)}.sqlite" if RUNNER_SAVES else "none"

        if not args.skip_cpu_bound:
            cpu_bound(rows, fresh, runner_saver, lambda: tmp_path / f"c{next(counter)}.sqlite", conc, args.repeats)
        if not args.skip_latency:
            latency_bound(rows, fresh, runner_saver, args.repeats)


def cpu_bound(
    rows: list[dict[str, Any]], fresh: Any, runner_saver: Any, sqlite_path: Any, conc: int, repeats: int
) -> None:
    n = len(rows)
    critic = SketchOracle()
    print(f"1. sketch backends as they are: {n} prompts, <= 3 rounds x 4 candidates, concurrency {conc}")
    asyncio.run(plain_loop(rows[:20], fresh(), critic, conc))  # warm caches (glyphs, imports)
    asyncio.run(graph_run(rows[:20], fresh(), critic, conc))
    asyncio.run(floor_run(rows[:20], fresh(), critic, conc))
    runs = compare(
        "CPU-bound",
        n,
        {
            "plain asyncio loop": lambda: plain_loop(rows, fresh(), critic, conc),
            "floor: same wiring, nothing else": lambda: floor_run(rows, fresh(), critic, conc),
            "graph as compiled (no checkpointer)": lambda: graph_run(rows, fresh(), critic, conc),
            "graph, in-memory checkpointer": lambda: graph_run(rows, fresh(), critic, conc, "memory"),
            "graph, as the runner runs it": lambda: graph_run(
                rows, fresh(), critic, conc, runner_saver(), RUNNER_DURABILITY, as_runner=True
            ),
            "graph, SQLite at exit (--checkpointer sqlite)": lambda: graph_run(
                rows, fresh(), critic, conc, sqlite_path(), "exit", as_runner=True
            ),
            "graph, SQLite saving every step": lambda: graph_run(rows, fresh(), critic, conc, sqlite_path(), "async"),
        },
        repeats,
    )
    plain = runs["plain asyncio loop"]
    graph, floor = runs["graph as compiled (no checkpointer)"], runs["floor: same wiring, nothing else"]
    graph_images, nodes = graph.result
    print(f"  images: plain {plain.result}, graph {graph_images}; node executions in the graph: {nodes}")
    print(f"  floor ratio (LangGraph alone, same wiring): {floor.seconds / plain.seconds:.3f}")
    print(f"  overhead ratio, graph as compiled: {graph.seconds / plain.seconds:.3f}  (target <= 1.25)")
    print(f"  the runner's default (exit durability, no pause) attaches a checkpointer: {RUNNER_SAVES}")
    for name in (
        "graph, in-memory checkpointer",
        "graph, as the runner runs it",
        "graph, SQLite at exit (--checkpointer sqlite)",
        "graph, SQLite saving every step",
    ):
        target = "  (target <= 1.25)" if "runner" in name else ""
        print(f"  overhead ratio, {name.removeprefix('graph, ')}: {runs[name].seconds / plain.seconds:.3f}{target}")
    print(
        "  per-node overhead (wall, event-loop CPU): "
        + ", ".join(
            f"{name.removeprefix('graph').strip(' ,') or 'as compiled'} {(m.seconds - plain.seconds) / nodes * 1000:.2f} / "
            f"{(m.loop_cpu - plain.loop_cpu) / nodes * 1000:.2f} ms"
            for name, m in runs.items()
            if name.startswith("graph")
        )
    )


def latency_bound(rows: list[dict[str, Any]], fresh: Any, runner_saver: Any, repeats: int) -> None:
    print("2. latency-bound: an OpenAI-compatible critic on loopback answering after 200 ms, concurrency 8")
    from rationalrewards.rewardmodel.backends.openai_compat import OpenAICompatibleRewardModel
    from rationalrewards.rewardmodel.mock_server import free_port

    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rationalrewards.rewardmodel.mock_server",
            "--port",
            str(port),
            "--latency",
            "0.2",
            "--no-validate",
        ]
    )
    try:
        asyncio.run(OpenAICompatibleRewardModel(f"http://127.0.0.1:{port}").wait_until_healthy(30))

        async def with_http_critic(run: Any) -> Any:
            http = OpenAICompatibleRewardModel(f"http://127.0.0.1:{port}", "mock-critic", concurrency=64)
            try:
                return await run(http)
            finally:
                await http.aclose()

        runs = compare(
            "latency-bound",
            len(rows),
            {
                "plain asyncio loop": lambda: with_http_critic(lambda c: plain_loop(rows, fresh(), c, 8)),
                "graph as compiled (no checkpointer)": lambda: with_http_critic(
                    lambda c: graph_run(rows, fresh(), c, 8)
                ),
                "graph, in-memory checkpointer": lambda: with_http_critic(
                    lambda c: graph_run(rows, fresh(), c, 8, "memory")
                ),
                "graph, as the runner runs it": lambda: with_http_critic(
                    lambda c: graph_run(rows, fresh(), c, 8, runner_saver(), RUNNER_DURABILITY, as_runner=True)
                ),
            },
            repeats,
        )
        plain = runs["plain asyncio loop"]
        for name in (
            "graph as compiled (no checkpointer)",
            "graph, in-memory checkpointer",
            "graph, as the runner runs it",
        ):
            graph = runs[name]
            print(
                f"  overhead ratio, {name}: {graph.seconds / plain.seconds:.3f}  (target <= 1.05); "
                f"per node {(graph.seconds - plain.seconds) / graph.result[1] * 1000:.2f} ms"
            )
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()

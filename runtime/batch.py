"""The batch runner every job shares (GCR, PARROT; evaluation and RL jobs build on the same pieces).

One LangGraph thread per item, a bounded number in flight, a progress bar, and failure isolation: an item whose
thread raises is recorded in `failures.jsonl` with its error (secrets redacted) and retried on the next run; the others
carry on. A finished item appends one line to `results.jsonl`, which
is the resume key: a resumed run skips every item already there.

Checkpointer (`BatchRunner.needs_checkpointer`): a SQLite database in the run directory, or a shared `postgres://`
one, attached only where a checkpoint can be read back: a thread that may pause for a human, every step saved
(`async`/`sync` durability), history kept for time travel, or a checkpointer the user named. Under the default `exit`
durability with none of these, LangGraph would write one checkpoint per thread as it ends, and the runner would
delete it once the results line is written: pure cost (about 2.5 ms per prompt, 10% of a CPU-bound GCR run), since a
crash redoes the items in flight from their start either way.

Resume rule (`run_thread`): a thread that has any checkpoint is never sent its input again (the graph's list reducers
would append a second copy); it is continued from its checkpoint, or read as finished. "Continued" is decided by the
checkpoint's tasks, not by `next`: a process killed after a task's writes were saved but before the next checkpoint
leaves a snapshot whose `next` is empty while the task (with its saved writes) is still there to be applied.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import json
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar, overload

import structlog

from rationalrewards.plumbing.choices import choice
from rationalrewards.plumbing.redact import redact
from rationalrewards.plumbing.telemetry import configure as configure_telemetry
from rationalrewards.plumbing.telemetry import job_trace_id, span
from rationalrewards.runtime._checkpoints import (
    CheckpointerSpec,
    open_checkpointer,
    parse_checkpointer,
    shared_checkpointer,
)
from rationalrewards.runtime.rundir import RunDirectory

log = structlog.get_logger(__name__)
Item = TypeVar("Item")
RESULTS = "results.jsonl"
FAILURES = "failures.jsonl"


def content_hash(items: object) -> str:
    """sha256 of a JSON value's canonical form: the identity of a run's inputs. A list (or any iterable of items) is
    hashed item by item, so 100,000 rows never sit in memory as one JSON string; the digest is the one of the whole
    list's JSON text (`json.dumps(list(items), sort_keys=True, ensure_ascii=False)`), as run directories record it."""
    if isinstance(items, dict) or not isinstance(items, Iterable) or isinstance(items, (str, bytes)):
        return hashlib.sha256(json.dumps(items, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()
    digest = hashlib.sha256(b"[")
    for index, item in enumerate(items):
        if index:
            digest.update(b", ")
        digest.update(json.dumps(item, sort_keys=True, ensure_ascii=False, default=str).encode())
    digest.update(b"]")
    return digest.hexdigest()


@dataclass
class BatchOutcome:
    """What one `BatchRunner.run` call did (earlier runs' results stay in `results.jsonl`)."""

    ran: int = 0  # items attempted in this call
    finished: int = 0  # ... of which finished now
    failures: list[dict[str, Any]] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)  # threads paused for a human
    seconds: float = 0.0


Durability = Literal["exit", "async", "sync"]
DURABILITIES: tuple[str, ...] = ("exit", "async", "sync")


def default_durability(durability: str | None, keep_history: bool) -> Durability:
    """When a thread's state is saved. Default `exit`: when it finishes, fails or pauses for a human. A crash then
    redoes the items in flight from their start (their generations come back from the run's generation cache), and
    nothing else: finished items are in `results.jsonl`. Saving every step cost the CPU-bound GCR benchmark 14% of its
    wall time (`benchmarks/gcr_overhead.py`) to spare a crash a few steps of at most `concurrency` items. With
    `keep_history` (time travel wants every step) the default is `async`: every step, saved in the background."""
    if durability is None:
        return "async" if keep_history else "exit"
    return choice(durability, Durability, "durability")


def needs_checkpointer(
    *, pauses: bool, keep_history: bool, durability: Durability, checkpointer: CheckpointerSpec | None
) -> bool:
    """Whether a thread's checkpoint can ever be read back (see the module docstring): it may pause for a human,
    history is kept, every step is saved, or the user named a checkpointer."""
    return pauses or keep_history or durability != "exit" or checkpointer is not None


async def run_thread(
    graph: Any,
    thread_id: str,
    make_input: Callable[[], Awaitable[dict[str, object]]],
    *,
    context: Any,
    recursion_limit: int,
    durability: Durability = "async",
) -> dict[str, object] | None:
    """Start, continue or read one thread; its final values, or None while it waits at a human-in-the-loop interrupt.
    `durability` is LangGraph's: `exit` saves a thread when it finishes, fails or pauses for a human; `async` and
    `sync` save every step (in the background, or before the next step starts)."""
    config = {"configurable": {"thread_id": thread_id}, "recursion_limit": recursion_limit}
    if graph.checkpointer is None:  # nothing is saved, so nothing to continue: the thread runs from its input
        # Every state channel, not only the output schema's: the job's result record reads the whole state.
        values = await graph.ainvoke(
            await make_input(), config, context=context, output_keys=graph.stream_channels_asis
        )
        return dict(values)
    snapshot = await graph.aget_state(config)
    if snapshot.created_at is None:  # no checkpoint at all: the only case that sends the input
        await graph.ainvoke(await make_input(), config, context=context, durability=durability)
    elif snapshot.tasks:  # interrupted mid-run (crash, Ctrl-C), or waiting for a human
        if any(task.interrupts for task in snapshot.tasks):
            return None
        await graph.ainvoke(None, config, context=context, durability=durability)
    snapshot = await graph.aget_state(config)
    return None if snapshot.next else dict(snapshot.values)


class JobRunner:
    """What every job's runner shares: its run directory, the settings recorded in it, and how it runs a batch."""

    job: str = "job"  # recorded in run.json

    def __init__(
        self,
        path: str | Path,
        *,
        concurrency: int,
        progress: bool,
        settings: dict[str, object],
        force_new: bool,
        keep_history: bool = False,
        durability: str | None = None,
        checkpointer: str | CheckpointerSpec | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.path = Path(path)
        self.concurrency, self.progress, self.settings, self.force_new = concurrency, progress, settings, force_new
        self.keep_history = keep_history
        self.durability = default_durability(durability, keep_history)
        self.checkpointer = parse_checkpointer(checkpointer)  # a bad URL is refused now, before anything runs
        configure_telemetry()  # export settings from the environment, before the first graph runs

    def open(self) -> RunDirectory:
        """Lock the run directory and check (or record) its settings."""
        return RunDirectory(self.path).open(self.job, self.settings, force_new=self.force_new)

    def batch(self, run_dir: RunDirectory, key: str) -> BatchRunner[Any]:
        return BatchRunner(
            run_dir,
            label=self.job.upper(),
            key=key,
            concurrency=self.concurrency,
            progress=self.progress,
            keep_history=self.keep_history,
            durability=self.durability,
            checkpointer=self.checkpointer,
        )


class Keyed(Sequence[tuple[str, Item]]):
    """(id, item) pairs over a list of ids and a sequence of items that may build each item on access (a compact
    `Suite`): the runner reads the ids up front and an item only when a worker takes it."""

    def __init__(self, ids: list[str], items: Sequence[Item]) -> None:
        if len(ids) != len(items):
            raise ValueError(f"{len(ids)} ids for {len(items)} items")
        self.ids, self.items = ids, items

    def __len__(self) -> int:
        return len(self.ids)

    @overload
    def __getitem__(self, index: int) -> tuple[str, Item]: ...

    @overload
    def __getitem__(self, index: slice) -> Keyed[Item]: ...

    def __getitem__(self, index: int | slice) -> tuple[str, Item] | Keyed[Item]:
        if isinstance(index, slice):
            return Keyed(self.ids[index], self.items[index])
        return self.ids[index], self.items[index]


class BatchRunner(Generic[Item]):
    def __init__(
        self,
        run_dir: RunDirectory,
        *,
        label: str,
        key: str,
        concurrency: int = 8,
        progress: bool = True,
        keep_history: bool = False,
        durability: str | None = None,
        checkpointer: str | CheckpointerSpec | None = None,
    ) -> None:
        """`keep_history`: keep every checkpoint of finished threads (LangGraph time travel). By default a thread's
        checkpoints are deleted once its line is in `results.jsonl`, which is what resume reads for finished items:
        the database then holds only the threads in flight instead of growing with every step of every item.
        `durability`: see `default_durability`. `checkpointer`: None for SQLite in the run directory, or a
        `postgres://` URL of a database several workers share (threads are then named `<run id>:<item id>`)."""
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.run_dir, self.label, self.key = run_dir, label, key
        self.concurrency, self.progress, self.keep_history = concurrency, progress, keep_history
        self.durability = default_durability(durability, keep_history)
        self.checkpointer = parse_checkpointer(checkpointer)
        self.thread_prefix = f"{run_dir.run_id}:" if shared_checkpointer(self.checkpointer) else ""

    def needs_checkpointer(self, pauses: bool) -> bool:
        return needs_checkpointer(
            pauses=pauses, keep_history=self.keep_history, durability=self.durability, checkpointer=self.checkpointer
        )

    def thread_id(self, item_id: str) -> str:
        """The LangGraph thread of an item: its id, prefixed by the run's id in a shared database."""
        return self.thread_prefix + item_id

    def _run_span(self, pending: int) -> Any:
        """The run's span, in the trace every process of this job shares (`telemetry.job_trace_id`)."""
        manifest = self.run_dir.manifest()
        settings = manifest.get("settings") or {}
        inputs = settings.get("shard_of") or (manifest.get("inputs") or {}).get("sha256", "")
        return span(
            f"{self.label.lower()}.run",
            parent_trace_id=job_trace_id(str(manifest.get("job")), settings, str(inputs)),
            job=manifest.get("job"),
            run_id=self.run_dir.run_id,
            run_dir=str(self.run_dir.path),
            shard=settings.get("shard"),
            items=pending,
            concurrency=self.concurrency,
        )

    def finished_ids(self) -> set[str]:
        return set(self.run_dir.records(RESULTS, self.key))

    async def run(
        self,
        items: Sequence[tuple[str, Item]],
        *,
        build_graph: Callable[[Any], Any],
        work: Callable[[Any, str, Item], Awaitable[dict[str, object] | None]],
        pauses: bool = False,
    ) -> BatchOutcome:
        """Run `work(graph, id, item)` for every item not finished yet. It returns the result record (appended to
        `results.jsonl` with `key` set), or None when the thread waits for a human. `build_graph(checkpointer)`
        compiles the job's graph (the checkpointer None where none is needed); `pauses`: its threads may stop for a
        human (they then need a checkpointer to be resumed from)."""
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        ids = items.ids if isinstance(items, Keyed) else [item_id for item_id, _ in items]
        if len(set(ids)) != len(ids):
            raise ValueError(f"two {self.label} items share an id; ids must be unique")
        done = self.finished_ids()
        # Positions, not items: a lazy sequence (`Keyed` over a compact `Suite`) builds each item only when its turn comes.
        pending = [index for index, item_id in enumerate(ids) if item_id not in done]
        del ids, done
        outcome = BatchOutcome(ran=len(pending))
        started = time.perf_counter()
        database = (
            open_checkpointer(self.checkpointer, self.run_dir.file("checkpoints.sqlite"))
            if self.needs_checkpointer(pauses)
            else contextlib.nullcontext()
        )
        async with database as saver:
            graph = build_graph(saver)
            columns = (TextColumn(f"[bold]{self.label}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
            with Progress(*columns, disable=not self.progress) as bar:
                task = bar.add_task(self.label, total=len(items), completed=len(items) - len(pending))

                async def one(item_id: str, item: Item) -> None:
                    try:
                        with span(f"{self.label.lower()}.thread", item=item_id, thread=self.thread_id(item_id)):
                            record = await work(graph, item_id, item)
                    except Exception as e:  # noqa: BLE001 - the runner's boundary: one failing item must not sink the run
                        error = redact(f"{type(e).__name__}: {e}")
                        log.error("batch.item_failed", job=self.label, item=item_id, error=error)
                        failure = {self.key: item_id, "error": error}
                        outcome.failures.append(failure)
                        self.run_dir.append(FAILURES, failure)
                    else:
                        if record is None:
                            outcome.waiting.append(item_id)
                        else:
                            self.run_dir.append(RESULTS, {self.key: item_id, **record})
                            outcome.finished += 1
                            if saver is not None and not self.keep_history:  # the line above is the resume key now
                                await saver.adelete_thread(self.thread_id(item_id))
                    bar.advance(task)

                # `concurrency` workers take items from one shared iterator: at most that many tasks exist at a time,
                # where one task per item (100,000 of them, each with its frame) grew memory with the run's size.
                queue = iter(pending)

                async def worker() -> None:
                    for index in queue:
                        await one(*items[index])

                # Everything made during set-up (graph, backends, the items) is moved out of the collector's reach for
                # the run: full collections then scan only what the run itself allocates (they paused PARROT's event
                # loop for 120-200 ms every few seconds). Young collections run every 10,000 allocations instead of
                # 700 (measured: collector time 1.5 s -> 0.4 s in a 24 s PARROT run). Both undone after, so the host
                # process keeps its own settings.
                threshold = gc.get_threshold()
                gc.freeze()
                gc.set_threshold(max(threshold[0], 10_000), *threshold[1:])
                try:
                    with self._run_span(len(pending)):
                        await asyncio.gather(*(worker() for _ in range(min(self.concurrency, len(pending)))))
                finally:
                    gc.set_threshold(*threshold)
                    gc.unfreeze()
        outcome.seconds = round(time.perf_counter() - started, 2)
        return outcome

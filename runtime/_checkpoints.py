"""The SQLite checkpointer the batch runners share.

LangGraph's `AsyncSqliteSaver` goes through aiosqlite, which hops to its worker thread and back for every cursor,
statement and commit: four or more event-loop wake-ups and one commit per checkpoint operation. Measured in
`benchmarks/parrot_throughput.py`, that cost PARROT a quarter of its throughput (0.66 of ideal against 0.87 with no
database). `ThreadedSqliteSaver` runs LangGraph's own synchronous `SqliteSaver` (same tables, same rows: `langgraph
dev`, time travel and older run directories read it unchanged) on one thread that serves operations in groups: all
operations queued while it worked run together, are committed once (group commit), and are answered with one
event-loop wake-up. An operation is answered only after its commit, so what the graph was told is saved is saved.

The database is in WAL mode with `synchronous=NORMAL`: every committed step survives a crash or kill of this process
(what resume needs); only an operating-system crash or power loss can roll back the last few steps, and those threads
then redo them on resume.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import unquote, urlsplit

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import ChannelVersions, Checkpoint, CheckpointMetadata, CheckpointTuple
from langgraph.checkpoint.sqlite import SqliteSaver

from rationalrewards.plumbing.redact import Secret, redact, register_secret
from rationalrewards.plumbing.urls import masked_url

T = TypeVar("T")
_SETUP_LOCK = 0x5252_4350  # "RRCP": the advisory lock key for creating the checkpoint tables
MAX_GROUP = 256  # operations per commit at most, so one group never keeps the first caller waiting long

Job = tuple[Callable[[], Any], "asyncio.Future[Any]", asyncio.AbstractEventLoop]


class ThreadedSqliteSaver(SqliteSaver):
    """LangGraph's SQLite saver with its async API served by one worker thread with group commit."""

    def __init__(self, conn: sqlite3.Connection, **kwargs: Any) -> None:
        super().__init__(conn, **kwargs)
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name="checkpoints", daemon=True)
        self._thread.start()

    @contextmanager
    def cursor(self, transaction: bool = True) -> Iterator[sqlite3.Cursor]:
        # As LangGraph's, without the commit per statement: the serving thread commits each group once.
        with self.lock:
            self.setup()
            cur = self.conn.cursor()
            try:
                yield cur
            finally:
                cur.close()

    def _serve(self) -> None:
        while (first := self._jobs.get()) is not None:
            group, stop = [first], False
            while len(group) < MAX_GROUP:
                try:
                    job = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    stop = True
                    break
                group.append(job)
            outcomes: list[tuple[bool, Any]] = []
            for fn, _, _ in group:
                try:
                    outcomes.append((True, fn()))
                except BaseException as e:  # noqa: BLE001 - handed to the caller that asked for this operation
                    outcomes.append((False, e))
            try:
                with self.lock:
                    self.conn.commit()
            except sqlite3.Error as e:  # nothing in this group was saved: every caller hears so
                outcomes = [(False, e)] * len(group)
            loops: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], bool, Any]]] = {}
            for (_, future, loop), (ok, value) in zip(group, outcomes, strict=True):
                loops.setdefault(loop, []).append((future, ok, value))
            for loop, answers in loops.items():
                with contextlib.suppress(RuntimeError):  # that event loop has closed: nobody is waiting any more
                    loop.call_soon_threadsafe(_answer, answers)  # one wake-up for the whole group
            if stop:
                break

    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if not self._thread.is_alive():
            raise RuntimeError("the checkpointer is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put((partial(fn, *args, **kwargs), future, loop))
        return await future

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return await self._call(self.get_tuple, config)

    async def alist(  # the same listing, read in the worker thread and yielded here
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, object] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        rows = await self._call(lambda: list(self.list(config, filter=filter, before=before, limit=limit)))
        for row in rows:
            yield row

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return await self._call(self.put, config, checkpoint, metadata, new_versions)

    async def aput_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, object]], task_id: str, task_path: str = ""
    ) -> None:
        await self._call(self.put_writes, config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        await self._call(self.delete_thread, thread_id)

    async def aget_delta_channel_history(self, *, config: object, channels: Sequence[str]) -> Mapping[str, Any]:
        return await self._call(self.get_delta_channel_history, config=config, channels=channels)

    async def pragma(self, name: str) -> object:
        """A SQLite setting of the saver's connection (e.g. `journal_mode`, `synchronous`)."""
        if not name.isidentifier():
            raise ValueError(f"not a pragma name: {name!r}")
        return await self._call(lambda: self.conn.execute(f"PRAGMA {name}").fetchone()[0])

    def close(self) -> None:
        """Finish the queued operations, commit them, and stop the worker thread."""
        if self._thread.is_alive():
            self._jobs.put(None)
            self._thread.join()


def _answer(answers: list[tuple[asyncio.Future[Any], bool, Any]]) -> None:
    for future, ok, value in answers:
        if future.cancelled():
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)


@asynccontextmanager
async def sqlite_checkpointer(path: str | Path) -> AsyncIterator[ThreadedSqliteSaver]:
    conn = sqlite3.connect(str(path), check_same_thread=False)  # used from the saver's one worker thread
    saver = ThreadedSqliteSaver(conn)
    try:
        await saver._call(saver.setup)
        await saver._call(conn.execute, "PRAGMA synchronous=NORMAL")
        yield saver
    finally:
        saver.close()
        conn.close()


class CheckpointerError(ValueError):
    """A checkpointer that cannot be used (a malformed URL, a database that refuses): said in one line, with any
    password masked."""


@dataclass(frozen=True)
class CheckpointerSpec:
    """Where threads are checkpointed: SQLite in the run directory, or a shared Postgres. A Postgres URL is held as a
    `Secret` (it may carry a password); `text` is what manifests and messages show."""

    kind: Literal["sqlite", "postgres"]
    text: str = "sqlite"
    dsn: Secret | None = field(default=None, compare=False)


def parse_checkpointer(spec: str | CheckpointerSpec | None) -> CheckpointerSpec | None:
    """None and `sqlite` (the run directory's database), or a `postgres://` URL, checked to be a URL at all."""
    if spec is None or isinstance(spec, CheckpointerSpec):
        return spec
    if spec in ("", "sqlite"):
        return CheckpointerSpec("sqlite")
    if not spec.startswith(("postgres://", "postgresql://")):
        shown = masked_url(spec)
        raise CheckpointerError(
            f"unknown checkpointer {shown!r}: use 'sqlite' (the default, in the run directory) or a postgres:// URL"
        )
    shown = masked_url(spec)
    try:
        parts = urlsplit(spec)
        parts.port  # noqa: B018 - parsing the port is the check (a bad one raises here)
        if not (parts.hostname or parts.path.strip("/")):
            raise ValueError("no host or database")
    except ValueError as e:
        raise CheckpointerError(f"--checkpointer {shown} is not a valid postgres:// URL ({e})") from None
    if parts.password:
        register_secret(parts.password)
        register_secret(unquote(parts.password))
    return CheckpointerSpec("postgres", text=shown, dsn=Secret(spec))


def shared_checkpointer(spec: CheckpointerSpec | None) -> bool:
    """Whether the checkpointer is a database outside the run directory (shared with other runs)."""
    return spec is not None and spec.kind == "postgres"


async def _try_lock(connection: Any) -> bool:
    row = await (await connection.execute("SELECT pg_try_advisory_lock(%s)", (_SETUP_LOCK,))).fetchone()
    return bool(row and row[0])


@asynccontextmanager
async def open_checkpointer(spec: CheckpointerSpec | None, sqlite_path: str | Path) -> AsyncIterator[Any]:
    """The run's checkpointer: SQLite at `sqlite_path`, or LangGraph's Postgres saver for a `postgres://` URL (the
    `postgres` extra: `pip install 'rationalrewards[postgres]'`), its tables created on first use. A database that
    cannot be reached or refuses is a `CheckpointerError` naming it (password masked)."""
    if not shared_checkpointer(spec):
        async with sqlite_checkpointer(sqlite_path) as saver:
            yield saver
        return
    assert spec is not None and spec.dsn is not None
    import psycopg
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver  # ImportError: the CLI names the extra

    try:
        async with _postgres(AsyncPostgresSaver, psycopg, spec.dsn.reveal()) as saver:
            yield saver
    except psycopg.Error as e:
        raise CheckpointerError(f"the checkpointer {spec.text} failed: {redact(str(e)).strip()}") from None


@asynccontextmanager
async def _postgres(saver_class: Any, psycopg: Any, dsn: str) -> AsyncIterator[Any]:
    async with saver_class.from_conn_string(dsn) as saver:
        # Workers starting together on a fresh database would race through the saver's migrations (duplicate
        # tables and migration rows): one at a time, under a Postgres advisory lock. Taken by polling, not by a
        # blocking `pg_advisory_lock`: a waiter blocked inside its SELECT is an open transaction, which the
        # migrations' `CREATE INDEX CONCURRENTLY` would wait for while the waiter waits for it (a deadlock).
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as lock:
            while not await _try_lock(lock):  # noqa: ASYNC110 - the lock lives in another process: polling is the point
                await asyncio.sleep(0.2)
            try:
                await saver.setup()
            finally:
                await lock.execute("SELECT pg_advisory_unlock(%s)", (_SETUP_LOCK,))
        yield saver

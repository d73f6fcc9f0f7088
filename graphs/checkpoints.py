"""The SQLite checkpointer the batch runners share.

LangGraph's `AsyncSqliteSaver` opens the database in WAL mode with SQLite's default `synchronous=FULL`, which syncs the
log to disk on every commit: one commit per graph step per thread. In WAL mode `synchronous=NORMAL` keeps every committed
step across a crash or kill of this process (what resume needs); only an operating-system crash or power loss can roll
back the last few steps, and those threads then redo them on resume. Measured in `benchmarks/gcr_overhead.py`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any


@asynccontextmanager
async def sqlite_checkpointer(path: str | Path) -> AsyncIterator[Any]:
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    async with AsyncSqliteSaver.from_conn_string(str(path)) as saver:
        await saver.setup()
        await saver.conn.execute("PRAGMA synchronous=NORMAL")
        yield saver

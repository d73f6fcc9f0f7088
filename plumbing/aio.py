"""Calling async backends from sync code.

- `run_sync(coro)`: one call, also from inside a running event loop (notebooks), on a fresh loop.
- `BackgroundLoop`: one event loop on a daemon thread, reused by every call. Backends keep their HTTP sessions per
  loop, so a sync caller that makes many calls (a trainer's reward function) reuses one connection pool instead of
  opening one per call.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import weakref
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from sync code, also when the caller already sits inside a running loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    box: dict[str, Any] = {}

    def _worker() -> None:
        try:
            box["value"] = asyncio.run(coroutine)
        except BaseException as error:  # noqa: BLE001 - re-raised in the caller's thread below
            box["error"] = error

    thread = threading.Thread(target=_worker)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    value: T = box["value"]
    return value


def _stop(loop: asyncio.AbstractEventLoop, thread: threading.Thread) -> None:
    if loop.is_running():
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
    if not loop.is_running() and not loop.is_closed():
        loop.close()


class BackgroundLoop:
    """An event loop on its own daemon thread; `run(coro)` blocks until the coroutine finishes there."""

    def __init__(self, name: str = "rationalrewards-loop") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()
        # Stop the thread when the owner is garbage-collected without calling close().
        self._finalizer = weakref.finalize(self, _stop, self.loop, self._thread)

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        if threading.current_thread() is self._thread:
            raise RuntimeError("BackgroundLoop.run() was called from its own loop thread; await the coroutine instead")
        return self.submit(coroutine).result(timeout)

    def submit(self, coroutine: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Start the coroutine on the loop and return at once: the caller keeps working and reads the future later."""
        if self.loop.is_closed():
            coroutine.close()
            raise RuntimeError("this BackgroundLoop is closed")
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def close(self) -> None:
        self._finalizer()

    @property
    def closed(self) -> bool:
        return not self._finalizer.alive

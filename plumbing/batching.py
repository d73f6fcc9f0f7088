"""Dynamic batching: requests from many concurrent callers (prompts, rounds, candidates) gathered into micro-batches
for one model call each.

A GPU pipeline makes 8 images in little more time than 1, but a GCR run asks for them one prompt at a time. The
batcher queues every request; a single worker takes the first, waits up to `max_wait` seconds for more (or until
`max_size` are queued), and runs one call on a worker thread for each group of requests that can share a call
(`key`: an editing request and a text-to-image one cannot). Calls run one at a time, as a pipeline is not re-entrant.
Each caller gets its own results back, or the batch's exception.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

Request = TypeVar("Request")
Result = TypeVar("Result")


@dataclass
class _Pending(Generic[Request, Result]):
    request: Request
    future: asyncio.Future[Result]


class MicroBatcher(Generic[Request, Result]):
    def __init__(
        self,
        run_batch: Callable[[list[Request]], list[Result]],
        *,
        max_size: int = 8,
        max_wait: float = 0.01,
        key: Callable[[Request], Hashable] = lambda request: None,
    ) -> None:
        if max_size < 1:
            raise ValueError(f"max_size must be at least 1, got {max_size}")
        if max_wait < 0:
            raise ValueError(f"max_wait must be 0 or more, got {max_wait}")
        self.run_batch, self.max_size, self.max_wait, self.key = run_batch, max_size, max_wait, key
        self.batch_sizes: list[int] = []  # every call's size, for benchmarks and tests
        self._queue: asyncio.Queue[_Pending[Request, Result]] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def submit(self, requests: Sequence[Request]) -> list[Result]:
        """Results in the order of `requests`, each computed in whatever batch it landed in."""
        queue = self._ensure_worker()
        loop = asyncio.get_running_loop()
        pending = [_Pending(request, loop.create_future()) for request in requests]
        for item in pending:
            queue.put_nowait(item)
        return list(await asyncio.gather(*(item.future for item in pending)))

    def _ensure_worker(self) -> asyncio.Queue[_Pending[Request, Result]]:
        loop = asyncio.get_running_loop()
        if self._queue is None or self._loop is not loop or self._worker is None or self._worker.done():
            # A new event loop (each `asyncio.run` of a runner makes one) gets its own queue and worker.
            self._loop, self._queue = loop, asyncio.Queue()
            self._worker = loop.create_task(self._work(self._queue), name="micro-batcher")
        return self._queue

    async def _work(self, queue: asyncio.Queue[_Pending[Request, Result]]) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await queue.get()]
            deadline = loop.time() + self.max_wait
            while len(batch) < self.max_size:
                remaining = deadline - loop.time()
                try:
                    batch.append(
                        queue.get_nowait() if remaining <= 0 else await asyncio.wait_for(queue.get(), remaining)
                    )
                except (asyncio.QueueEmpty, TimeoutError):
                    break
            groups: dict[Hashable, list[_Pending[Request, Result]]] = {}
            for item in batch:
                groups.setdefault(self.key(item.request), []).append(item)
            for group in groups.values():
                live = [item for item in group if not item.future.done()]  # a cancelled caller needs no image
                if live:
                    await self._run(live)

    async def _run(self, group: list[_Pending[Request, Result]]) -> None:
        self.batch_sizes.append(len(group))
        try:
            results = await asyncio.to_thread(self.run_batch, [item.request for item in group])
            if len(results) != len(group):
                raise RuntimeError(f"a batch of {len(group)} requests returned {len(results)} results")
        except Exception as error:  # noqa: BLE001  (any failure of the call goes to every caller in the batch)
            for item in group:
                if not item.future.done():
                    item.future.set_exception(error)
            return
        for item, result in zip(group, results, strict=True):
            if not item.future.done():
                item.future.set_result(result)

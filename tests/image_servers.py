"""Real image servers on loopback for the scale-out tests: `serve-generator`'s aiohttp app over the sketch world, run
in a background thread, with a script of faults (status codes, delays, garbage bodies) served before real answers."""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from rationalrewards.agents.generator_server import GeneratorService, make_app
from rationalrewards.rewardmodel.mock_server import free_port
from rationalrewards.sketch.generator import SketchGenerator


@dataclass
class ImageFault:
    status: int = 500
    body: bytes = b'{"error": {"message": "injected"}}'
    delay: float = 0.0


@dataclass
class FaultScript:
    faults: deque[ImageFault] = field(default_factory=deque)
    requests: int = 0
    latency: float = 0.0


class ImageServer:
    """`with ImageServer(tmp) as server:` a sketch generator served at `server.base_url` until the block ends."""

    def __init__(self, work_dir: Path, *, latency: float = 0.0) -> None:
        self.port = free_port()
        self.script = FaultScript(latency=latency)
        self.service = GeneratorService(SketchGenerator(work_dir / "images"), work_dir)
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def fail_next(self, *faults: ImageFault) -> None:
        self.script.faults.extend(faults)

    def _app(self) -> web.Application:
        script = self.script

        @web.middleware
        async def faults(request: web.Request, handler: Any) -> web.StreamResponse:
            if request.path.startswith("/v1/images"):
                script.requests += 1
                if script.faults:
                    fault = script.faults.popleft()
                    await asyncio.sleep(fault.delay)
                    return web.Response(status=fault.status, body=fault.body, content_type="application/json")
                await asyncio.sleep(script.latency)
            return await handler(request)

        app = make_app(self.service)
        app.middlewares.append(faults)
        return app

    async def _start(self) -> None:
        self._runner = web.AppRunner(self._app())
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    def __enter__(self) -> ImageServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
            self._runner = None

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

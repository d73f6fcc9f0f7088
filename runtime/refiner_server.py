"""`rationalrewards serve-refiner`: Generate-Critique-Refine behind the OpenAI Images API. An application that already
calls `images.generate` / `images.edit` points its base URL here and gets refined images, unchanged otherwise.

Every request runs the GCR graph with the configured generator, critic and preset (n images: n runs from seeds seed,
seed + c, seed + 2c, ... where c is the preset's candidates per round, so no two runs share a candidate), and answers in the API's own shape: `b64_json` (or `url`, served by this app by content hash), plus fields
a plain client ignores:
- `revised_prompt` (OpenAI's own field): the request the kept image was made from;
- `seed`, and `scene` for the sketch world (its ground truth, so graders work across the wire);
- `rationalrewards`: `stop_reason`, `rounds` (each round's prompt and reward), `generations`, and the kept image's
  `reward`, `reward_note` and `critique` (scores, justifications, refined request).
A request may also name a `preset` (paper, release, deep) for itself.

Concurrent requests share the backends, so a batching generator batches across them. At most `max_in_flight` runs go
at once; up to `queue` more wait; beyond that the answer is 429 with Retry-After. The edge (bearer key, connection
cap, body deadlines, prompt cap, 4xx for malformed requests) is `serve-generator`'s (`agents/generator_server.py`).
Spans are the CLI's: one trace per graph run when OpenTelemetry is configured; `trace=` writes `trace.jsonl` too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from rationalrewards.agents.generator_server import (
    BadRequest,
    Busy,
    image_item,
    make_app,
    read_generation_fields,
    uploaded,
)
from rationalrewards.agents.world import ground_truth_of
from rationalrewards.graphs.gcr import GCRContext, build_gcr_graph
from rationalrewards.graphs.gcr_config import PRESETS, GCRConfig
from rationalrewards.graphs.outcome import refine_outcome
from rationalrewards.graphs.state import GCRInput, image_ref_dict
from rationalrewards.plumbing.redact import Secret
from rationalrewards.plumbing.serving import ConnectionEdge, EdgeLimits, check_binding, run_guarded
from rationalrewards.rewardmodel.schemas import ImageRef

log = structlog.get_logger(__name__)


@dataclass
class RefinerService:
    """Validated Images API requests in, refined images out (the HTTP layer is `generator_server.make_app`)."""

    context: GCRContext
    config: GCRConfig
    work_dir: Path
    max_in_flight: int = 32
    queue: int = 64
    name: str = "rationalrewards-gcr"
    files: Path | None = None  # where `url` answers are read from: the generator's images (default work_dir/images)
    served: int = 0
    waiting: int = 0
    _slots: asyncio.Semaphore | None = field(default=None, repr=False)
    _graphs: dict[str, object] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.max_in_flight < 1 or self.queue < 0:
            raise ValueError("max_in_flight must be at least 1 and queue at least 0")
        self.files = self.files or self.work_dir / "images"

    def _config(self, fields: dict[str, object]) -> GCRConfig:
        preset = fields.get("preset")
        if preset in (None, ""):
            return self.config
        if preset not in PRESETS:
            raise BadRequest(f"preset must be one of {', '.join(PRESETS)}, got {str(preset)[:40]!r}")
        return GCRConfig.preset(str(preset))

    async def generate(self, fields: dict[str, object], source: bytes | None = None) -> dict[str, object]:
        request = read_generation_fields(fields, self.context.generator, formats=("b64_json", "url"))
        config = self._config(fields)
        runs = request.n
        if self.waiting + runs > self.max_in_flight + self.queue:
            raise Busy(f"{self.waiting} images are being refined or waiting; the server takes {self.max_in_flight} "
                       f"at once and queues {self.queue}")  # fmt: skip
        self.waiting += runs
        try:
            with uploaded(self.work_dir, source, fields.get("scene")) as source_ref:
                graph = self._graph(config)
                seeds = [request.seed + k * config.candidates for k in range(runs)]  # no two runs share a candidate
                made = await asyncio.gather(*(self._one(graph, request.prompt, s, source_ref) for s in seeds))
        finally:
            self.waiting -= runs
        items = [self._item(out, seed, request.response_format == "url") for out, seed in zip(made, seeds, strict=True)]
        self.served += len(items)
        return {"created": int(time.time()), "data": items}

    def _graph(self, config: GCRConfig) -> object:
        """One compiled graph per configuration, reused by every request (compiling costs milliseconds)."""
        key = repr(config)
        if key not in self._graphs:
            self._graphs[key] = build_gcr_graph(config)
        return self._graphs[key]

    async def _one(self, graph: object, prompt: str, seed: int, source: ImageRef | None) -> dict[str, object]:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.max_in_flight)
        inputs = GCRInput(prompt=prompt, seed=seed)
        if source is not None:
            inputs["source_image"] = image_ref_dict(source)
        async with self._slots:
            return await graph.ainvoke(inputs, context=self.context)  # type: ignore[attr-defined]

    def _item(self, out: dict[str, object], seed: int, as_url: bool) -> dict[str, object]:
        outcome, kept = refine_outcome(out)
        if kept is None:
            raise RuntimeError(f"the loop kept no image ({outcome.get('stop_reason')})")
        path = Path(kept.uri.removeprefix("file://"))
        truth = ground_truth_of(path) if not kept.uri.startswith("data:") else None
        item = image_item(kept, seed, as_url=as_url)
        if truth is not None:
            item["scene"] = json.loads(truth)
        return item | {"revised_prompt": outcome.get("prompt"), "rationalrewards": outcome}


def serve_refiner(
    service: RefinerService,
    *,
    host: str = "127.0.0.1",
    port: int = 8200,
    api_key: Secret | None = None,
    limits: EdgeLimits | None = None,
) -> None:
    """Serve until interrupted (blocking). Refuses to bind beyond loopback without an API key."""
    check_binding(host, api_key)
    edge = ConnectionEdge(limits or EdgeLimits())
    app = make_app(service, api_key=api_key, edge=edge)
    log.info("refiner_server.start", url=f"http://{host}:{port}/v1", auth=api_key is not None)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_guarded(app, host, port, edge))


__all__ = ["RefinerService", "serve_refiner"]

"""`rationalrewards serve-generator`: any `ImageGenerator` (a diffusers pipeline, or the sketch world) behind the
OpenAI Images API, for tests and for pipelines no inference engine serves.

Routes: `GET /health`, `GET /v1/models`, `POST /v1/images/generations` (JSON) and `POST /v1/images/edits` (multipart:
`image`, `prompt`, ...), answering `{"created": ..., "data": [{"b64_json": ..., "seed": ...}]}`. Beyond OpenAI's fields
it reads `seed` (image k of a request gets seed + k), `num_inference_steps` and `size`, which vLLM-Omni and SGLang's
diffusion server accept too. For the sketch world every answer also carries the image's scene graph (`scene`), and an
edit request may send its source image's scene graph (form field `scene`), so the sketch critic and grader keep working
on either side of the wire.

At the edge (`plumbing/serving.py`): a bearer token (`--api-key` or $RATIONALREWARDS_SERVE_API_KEY; required to bind
beyond loopback), bounded connections that a half-sent request cannot hold, bodies read within a deadline, a prompt of
at most `MAX_PROMPT_CHARS`, and a 4xx for every malformed request. Answers name no path of the server. An uploaded
source image lives in a folder of its request and is deleted when the request is answered (generated images stay in
the work directory, content-addressed, as the generator's cache).

Why aiohttp and not Ray Serve: aiohttp is already a core dependency (the clients use it), one process per GPU is how
vLLM and SGLang are deployed too, and batching needs no framework: concurrent requests reach the generator together,
and `DiffusersGenerator` gathers them into micro-batches itself (`plumbing/batching.py`). Ray Serve would add a
cluster runtime to a single-box tool; `--generator ray:DIR` covers clusters.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import structlog
from aiohttp.http_exceptions import HttpProcessingError

from rationalrewards.agents.generator import GeneratedImage, ImageGenerator
from rationalrewards.plumbing.redact import Secret
from rationalrewards.plumbing.serving import (
    ConnectionEdge,
    EdgeLimits,
    bearer_middleware,
    check_binding,
    read_body,
    run_guarded,
)
from rationalrewards.rewardmodel.images import decode_image, max_image_bytes, read_image_bytes
from rationalrewards.rewardmodel.schemas import ImageRef

log = structlog.get_logger(__name__)
MAX_IMAGES_PER_REQUEST = 16
MAX_PROMPT_CHARS = 10_000  # a prompt longer than any model reads is refused before it costs anything
MAX_JSON_BYTES = 1 << 20  # a generation request is a prompt and a few numbers


class BadRequest(ValueError):
    """A request the server refuses with HTTP 400 (its message says why)."""


class Busy(RuntimeError):
    """The server's queue is full: HTTP 429, try again shortly."""


class ImagesService(Protocol):
    """What the HTTP layer serves: validated requests in, OpenAI Images API answers out (`GeneratorService` here,
    `runtime.refiner_server.RefinerService` for Generate-Critique-Refine). A `url` item naming `FILES_ROUTE` is made
    absolute with the request's own address."""

    name: str
    served: int
    files: Path | None

    async def generate(self, fields: dict[str, object], source: bytes | None = None) -> dict[str, object]: ...


FILES_ROUTE = "/v1/images/files/"


@dataclass(frozen=True)
class GenerationFields:
    """The fields of a generation or edit request every Images API server reads."""

    prompt: str
    n: int
    seed: int
    response_format: str


def read_generation_fields(
    fields: dict[str, object], generator: object, *, formats: tuple[str, ...] = ("b64_json",)
) -> GenerationFields:
    """Validated `prompt`, `n`, `seed` and `response_format`; `size` and `num_inference_steps` are checked against
    what `generator` makes (a request it cannot honour is refused, never silently served otherwise)."""
    prompt = fields.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise BadRequest("prompt must be a non-empty string")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise BadRequest(f"prompt is {len(prompt)} characters; at most {MAX_PROMPT_CHARS} are read")
    n = _positive_int(fields.get("n"), "n", default=1, most=MAX_IMAGES_PER_REQUEST) or 1
    seed = _positive_int(fields.get("seed"), "seed", default=0) or 0
    size = read_size(fields.get("size"))
    steps = _positive_int(fields.get("num_inference_steps"), "num_inference_steps")
    response_format = str(fields.get("response_format") or "b64_json")
    if response_format not in formats:
        raise BadRequest(f"response_format must be {' or '.join(formats)}, got {response_format!r}")
    for name, value in (("size", size), ("num_inference_steps", steps)):
        own = getattr(generator, "size" if name == "size" else "steps", None)
        own = own[0] if isinstance(own, tuple) else own
        if value is not None and own is not None and value != own:
            raise BadRequest(f"this server generates with {name} {own}; it cannot honour {value}")
    return GenerationFields(prompt, n, seed, response_format)


def _positive_int(value: object, name: str, *, default: int | None = None, most: int | None = None) -> int | None:
    """A whole number from JSON (an int, or a float with no fraction) or a form field (digits): `1.9`, `true`,
    `Infinity` and `"3 "` are refused, never rounded."""
    if value is None or value == "":
        return default
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise BadRequest(f"{name} must be a whole number, got {str(value)[:40]!r}")
    if isinstance(value, float) and not (value.is_integer() and abs(value) < 2**63):
        raise BadRequest(f"{name} must be a whole number, got {value!r}")
    if isinstance(value, str) and not value.isdigit():
        raise BadRequest(f"{name} must be a whole number, got {value[:40]!r}")
    number = int(value)
    if number < (0 if name == "seed" else 1) or (most is not None and number > most):
        raise BadRequest(f"{name} must be {'0' if name == 'seed' else '1'} to {most or 'any'}, got {number}")
    return number


def read_size(value: object) -> int | None:
    """OpenAI's `WxH` (square only here) or `auto`/absent: None keeps the generator's own size."""
    if value in (None, "", "auto"):
        return None
    width, _, height = str(value).partition("x")
    if not (width.isdigit() and height.isdigit()) or width != height:
        raise BadRequest(f"size must be a square WxH such as 256x256, got {value!r}")
    return int(width)


class GeneratorService:
    """The part of the server that knows generators, not HTTP: validated requests in, response items out."""

    files: Path | None = None  # images are answered inline (b64_json) only

    def __init__(self, generator: ImageGenerator, work_dir: str | Path, *, name: str | None = None) -> None:
        self.generator = generator
        self.work_dir = Path(work_dir)
        self.name = name or generator.name
        self.served = 0

    async def generate(self, fields: dict[str, object], source: bytes | None = None) -> dict[str, object]:
        request = read_generation_fields(fields, self.generator)
        prompt, n, seed = request.prompt, request.n, request.seed
        with uploaded(self.work_dir, source, fields.get("scene")) as source_ref:  # lives as long as the request
            made = await self.generator.generate([prompt] * n, [seed + k for k in range(n)], [source_ref] * n)
            items = [image_item(image.image, image.seed, image.sidecar) for image in made]
        self.served += len(made)
        return {"created": int(time.time()), "data": items}


@contextlib.contextmanager
def uploaded(work_dir: Path, data: bytes | None, scene: object) -> Iterator[ImageRef | None]:
    """An uploaded source image (with its scene graph, for the sketch world), checked and stored in a folder of its
    request that is deleted when the request is answered. Errors name no path of the server."""
    if data is None:
        yield None
        return
    from rationalrewards.agents.served_generator import store_image

    uploads = work_dir / "uploads"
    uploads.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=uploads) as folder:
        try:
            decode_image(data, "the uploaded image")  # the intake's checks, before anything is written
            ref, _ = store_image(data, Path(folder), scene)
        except ValueError as e:
            raise BadRequest(f"image: {str(e).replace(str(folder), '<upload>')}") from e
        yield ref


def image_item(
    image: ImageRef, seed: int, sidecar: str | Path | None = None, *, as_url: bool = False
) -> dict[str, object]:
    """One answer item: the image inline (`b64_json`) or as a URL under `FILES_ROUTE` (by content hash), its seed,
    and for the sketch world its scene graph."""
    item: dict[str, object] = (
        {"url": f"{FILES_ROUTE}{image.sha256}.png"}
        if as_url
        else {"b64_json": base64.b64encode(read_image_bytes(image)).decode("ascii")}
    )
    item["seed"] = seed
    if sidecar and Path(sidecar).is_file():
        item["scene"] = json.loads(Path(sidecar).read_text())
    return item


class OneAtATime:
    """A generator that takes `latency` seconds per image, one call at a time: a stand-in for a GPU's occupancy, so
    benchmarks can measure how a run scales over several servers (`serve-generator --latency`)."""

    def __init__(self, generator: ImageGenerator, latency: float) -> None:
        import asyncio

        self.generator, self.latency, self.name = generator, latency, generator.name
        self.size = getattr(generator, "size", None)
        self._lock = asyncio.Lock()

    async def generate(
        self, prompts: Sequence[str], seeds: Sequence[int], source_images: Sequence[ImageRef | None] | None = None
    ) -> list[GeneratedImage]:
        import asyncio

        async with self._lock:
            await asyncio.sleep(self.latency * len(prompts))
            return await self.generator.generate(prompts, seeds, source_images)


def make_app(service: ImagesService, *, api_key: Secret | None = None, edge: ConnectionEdge | None = None) -> Any:
    from aiohttp import BodyPartReader, web

    edge = edge or ConnectionEdge(EdgeLimits())
    timeout = edge.limits.request_timeout

    def error(status: int, message: str, kind: str = "invalid_request_error") -> web.Response:
        return web.json_response({"error": {"message": message, "type": kind}}, status=status)

    async def answer(request: web.Request, fields: dict[str, object], source: bytes | None = None) -> web.Response:
        try:
            body = await service.generate(fields, source)
        except BadRequest as e:
            return error(400, str(e))
        except Busy as e:
            response = error(429, str(e), "rate_limit_error")
            response.headers["Retry-After"] = "1"
            return response
        except ValueError as e:  # the generator refused the prompt (e.g. an unreadable sketch prompt)
            return error(400, f"{type(e).__name__}: {e}")
        except Exception as e:
            log.exception("generator_server.failed")
            return error(500, f"{type(e).__name__}: {e}", "server_error")
        origin = f"{request.scheme}://{request.host}"
        for item in body.get("data") or []:  # type: ignore[attr-defined]
            if isinstance(item, dict) and str(item.get("url", "")).startswith(FILES_ROUTE):
                item["url"] = origin + item["url"]
        return web.json_response(body)

    async def health(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "served": service.served, "connections": len(edge.open)})

    async def models(_: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": service.name, "object": "model"}]})

    async def generations(request: web.Request) -> web.Response:
        body = await read_body(request, MAX_JSON_BYTES, timeout)
        try:
            fields = json.loads(body)
        except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested deeper than a request ever is
            return error(400, "the body is not a JSON object")
        if not isinstance(fields, dict):
            return error(400, "the body must be a JSON object")
        return await answer(request, fields)

    async def edits(request: web.Request) -> web.Response:
        if not request.content_type.startswith("multipart/"):
            return error(400, "edits take multipart/form-data with an image file and a prompt")
        fields: dict[str, object] = {}
        source: bytes | None = None

        async def parts() -> web.Response | None:
            nonlocal source
            async for part in await request.multipart():
                if not isinstance(part, BodyPartReader):
                    return error(400, "nested multipart bodies are not read")
                if part.name in ("image", "image[]"):
                    if source is not None:
                        return error(400, "one source image per edit request")
                    source = await part.read()
                    if len(source) > max_image_bytes():
                        return error(413, "the image is larger than an image may be")
                elif part.name:
                    fields[part.name] = (await part.read()).decode("utf-8")
            return None

        try:
            refused = await asyncio.wait_for(parts(), timeout)
        except TimeoutError:
            return error(408, "the request body did not arrive in time")
        except UnicodeDecodeError:
            return error(400, "form fields must be UTF-8 text")
        except (ValueError, AssertionError, aiohttp.ClientError, HttpProcessingError) as e:  # a broken body
            return error(400, f"malformed multipart body ({type(e).__name__})")
        if refused is not None:
            return refused
        if not source:
            return error(400, "edits need an image file")
        return await answer(request, fields, source)

    app = web.Application(
        client_max_size=max_image_bytes() + MAX_JSON_BYTES,
        middlewares=[edge.middleware(), bearer_middleware(api_key)],  # type: ignore[list-item]
    )
    app.router.add_get("/health", health)
    app.router.add_get("/v1/models", models)
    app.router.add_post("/v1/images/generations", generations)
    app.router.add_post("/v1/images/edits", edits)
    if service.files is not None:
        files = service.files

        async def file(request: web.Request) -> web.StreamResponse:
            from rationalrewards.rewardmodel.images import content_candidates

            digest = request.match_info["name"].removesuffix(".png")
            if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):  # content hashes only
                return error(404, "an image is addressed by its sha256: /v1/images/files/<64 hex digits>.png")
            for path in content_candidates(files, digest):
                if path.is_file():
                    return web.FileResponse(path, headers={"Content-Type": "image/png"})
            return error(404, f"no image {digest}")

        app.router.add_get(FILES_ROUTE + "{name}", file)
    return app


def serve(
    generator: ImageGenerator,
    work_dir: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8100,
    latency: float = 0.0,
    api_key: Secret | None = None,
    limits: EdgeLimits | None = None,
) -> None:
    """Serve until interrupted (blocking). `latency`: see `OneAtATime` (benchmarks only). Refuses to bind beyond
    loopback without an API key."""
    check_binding(host, api_key)
    if latency > 0:
        generator = OneAtATime(generator, latency)
    edge = ConnectionEdge(limits or EdgeLimits())
    app = make_app(GeneratorService(generator, work_dir), api_key=api_key, edge=edge)
    log.info(
        "generator_server.start", generator=generator.name, url=f"http://{host}:{port}/v1", auth=api_key is not None
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_guarded(app, host, port, edge))

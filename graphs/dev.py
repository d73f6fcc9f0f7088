"""What `langgraph dev` serves (`langgraph.json`): the GCR graph with the sketch world's backends, and an HTTP route
that serves its images to remote clients.

- `make_gcr_graph` is a graph factory: the server calls it for each run with the run's configuration, so a run picks
  its preset and overrides (`StudioSettings`, shown as the run's context form in Studio; also read from
  `configurable`). Importing this module builds nothing.
- Studio's input form shows what a user gives (`GCRInput`: prompt, seed, source image as a path, `file://` URI or
  `data:` URL); the output is the kept image, its critique and the rounds.
- Results hold image refs whose `uri` is a path on the server. A client elsewhere fetches the image from the same
  server at `GET /images/{sha256}.png` (`app` below), or asks for it inline with `inline_images: true`.

Images go under $RATIONALREWARDS_HOME (default ./runs/langgraph-dev)/images.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

from langchain_core.runnables import RunnableConfig
from pydantic import Field
from typing_extensions import TypedDict

from rationalrewards.graphs.gcr import CompiledGCRGraph, GCRContext, GCRGraph
from rationalrewards.graphs.gcr_config import GCRConfig


class StudioSettings(TypedDict, total=False):
    """Per-run settings: a preset and the overrides people reach for first."""

    preset: Annotated[
        Literal["paper", "release", "deep"],
        Field(description="paper: one refinement; release: the released script's rule; deep: rounds, best-of-N."),
    ]
    max_rounds: Annotated[int, Field(description="Generation rounds, the first included (overrides the preset).")]
    candidates: Annotated[int, Field(description="Images per round, best-of-N (overrides the preset).")]
    threshold: Annotated[float, Field(description="The 1-4 score every active aspect must reach to stop.")]
    inline_images: Annotated[bool, Field(description="Also return the kept image as a data: URL.")]


DEFAULT_SETTINGS = StudioSettings(preset="deep", max_rounds=3, candidates=2)
_OVERRIDES = ("max_rounds", "candidates", "threshold")


def images_dir(home: str | Path | None = None) -> Path:
    return Path(home or os.environ.get("RATIONALREWARDS_HOME", "runs/langgraph-dev")) / "images"


def sketch_backends(home: str | Path | None = None) -> GCRContext:
    """The sketch world's generator and oracle critic (the refiner: the critique's refined request), under `home`."""
    from rationalrewards.agents.world import world_named

    world = world_named("sketch")
    images = images_dir(home)
    return GCRContext(generator=world.generator(images), critic=world.critic(image_dirs=[images]))


def run_settings(config: RunnableConfig | None) -> GCRConfig:
    """The loop's configuration for one run: `DEFAULT_SETTINGS` under what the run's context (or `configurable`) sets."""
    given: Mapping[str, object] = (config or {}).get("configurable", {}) or {}
    context = (config or {}).get("context")  # newer servers hand the run's context over here too
    if isinstance(context, Mapping):
        given = {**given, **context}
    preset = str(given.get("preset") or DEFAULT_SETTINGS["preset"])
    overrides: dict[str, object] = {}
    for key in _OVERRIDES:
        value = given.get(key)
        if value is not None:
            overrides[key] = value
        elif preset == DEFAULT_SETTINGS["preset"] and key in DEFAULT_SETTINGS:
            overrides[key] = DEFAULT_SETTINGS[key]  # type: ignore[literal-required]  # key is one of _OVERRIDES
    inline = bool(given.get("inline_images", False))
    return GCRConfig.preset(preset, inline_best_image=inline, **overrides)


def make_gcr_graph(config: RunnableConfig | None = None) -> CompiledGCRGraph:
    """The GCR loop over the sketch world, set up from the run's settings (see the module docstring)."""
    return GCRGraph(run_settings(config), backends=sketch_backends(), settings=StudioSettings).compile()


_DIGEST = re.compile(r"[0-9a-f]{64}")


def _image_app() -> object:
    """`GET /images/{sha256}.png`: a generated image by its content hash, from the images folder only."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import FileResponse, PlainTextResponse, Response
    from starlette.routing import Route

    from rationalrewards.rewardmodel.images import content_candidates

    async def image(request: Request) -> Response:
        name = str(request.path_params["name"])
        digest = name.removesuffix(".png")
        if not _DIGEST.fullmatch(digest):  # only content hashes: no path reaches the file system from the URL
            return PlainTextResponse("an image is addressed by its sha256: /images/<64 hex digits>.png", 404)
        for path in content_candidates(images_dir(), digest):
            if path.is_file():
                return FileResponse(path, media_type="image/png")
        return PlainTextResponse(f"no image {digest}", 404)

    return Starlette(routes=[Route("/images/{name}", image)])


app = _image_app()

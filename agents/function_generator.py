"""A generator from a plain Python function (`FunctionGenerator(make_image)`, `--generator py:module:function`): how
your own pipeline, a remote API wrapper or a procedural drawing enters the loop without writing a class.

The function is called once per image with the keyword arguments it declares among `prompt`, `seed` and
`source_image` (a PIL image, None for text-to-image); a function that declares no `source_image` cannot edit, and an
edit request to it is refused by name. It may be sync (run in a worker thread, off the event loop) or async, and may
return a PIL image, encoded image bytes, a file path, a `file://` or `data:` URL, an `ImageRef`, or a whole
`GeneratedImage`. Returned images are read through the image intake (formats, sizes) and stored content-addressed
under `out_dir`, so the loop's state holds small refs, never pixels.
"""

from __future__ import annotations

import asyncio
import inspect
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from rationalrewards.agents.generator import GeneratedImage, batch_sources
from rationalrewards.rewardmodel.images import as_image_ref, image_ref_from_pil, load_pil
from rationalrewards.rewardmodel.schemas import ImageRef

ImageFunction = Callable[..., object]
ARGUMENTS = ("prompt", "seed", "source_image")


def default_image_dir() -> Path:
    """Where a `FunctionGenerator` without `out_dir` keeps its images (content-addressed, so runs share files)."""
    return Path(tempfile.gettempdir()) / "rationalrewards" / "images"


class FunctionGenerator:
    """An `ImageGenerator` from a function (see the module docstring)."""

    def __init__(self, function: ImageFunction, out_dir: str | Path | None = None, *, name: str | None = None) -> None:
        if not callable(function):
            raise TypeError(f"FunctionGenerator needs a function, got {type(function).__name__}")
        self.function = function
        self.out_dir = Path(out_dir) if out_dir is not None else default_image_dir()
        self.name = name or f"function:{getattr(function, '__qualname__', type(function).__name__)}"
        self._declared = _declared_arguments(function)
        if "prompt" not in self._declared:
            raise TypeError(f"{self.name} must take a `prompt` argument (and optionally `seed`, `source_image`)")

    @property
    def edits(self) -> bool:
        return "source_image" in self._declared

    async def generate(
        self, prompts: Sequence[str], seeds: Sequence[int], source_images: Sequence[ImageRef | None] | None = None
    ) -> list[GeneratedImage]:
        sources = batch_sources(prompts, seeds, source_images)
        if any(source is not None for source in sources) and not self.edits:
            raise ValueError(f"{self.name} takes no `source_image` argument, so it cannot edit an image")
        return [await self._one(p, s, src) for p, s, src in zip(prompts, seeds, sources, strict=True)]

    async def _one(self, prompt: str, seed: int, source: ImageRef | None) -> GeneratedImage:
        given: dict[str, object] = {"prompt": prompt, "seed": int(seed)}
        if self.edits:
            given["source_image"] = load_pil(source) if source is not None else None
        arguments = {k: v for k, v in given.items() if k in self._declared}
        if inspect.iscoroutinefunction(self.function):
            made = await self.function(**arguments)
        else:
            made = await asyncio.to_thread(self.function, **arguments)
        if isinstance(made, GeneratedImage):
            return made
        try:
            ref = self._store(made)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{self.name} returned something that is not an image: {e}") from e
        return GeneratedImage(image=ref, prompt=prompt, seed=int(seed), generator=self.name, source_image=source)

    def _store(self, made: object) -> ImageRef:
        if made is None:
            raise ValueError("None")
        ref = as_image_ref(made, f"the image {self.name} returned")
        # Inline and outside images are copied into out_dir: the loop's state keeps paths, and a caller's temporary
        # file may be gone by the time the image is critiqued again or written to a report.
        if ref.uri.startswith("data:") or not Path(ref.uri.removeprefix("file://")).is_relative_to(self.out_dir):
            ref = image_ref_from_pil(load_pil(ref), self.out_dir)
        return ref


def _declared_arguments(function: ImageFunction) -> frozenset[str]:
    parameters = inspect.signature(function).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return frozenset(ARGUMENTS)
    return frozenset(p.name for p in parameters if p.name in ARGUMENTS)


__all__ = ["FunctionGenerator", "ImageFunction", "default_image_dir"]

"""The `ImageGenerator` role: text-to-image and editing backends (sketch world, diffusers, HTTP) share this contract."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from rationalrewards.rewardmodel.schemas import ImageRef


class GeneratedImage(BaseModel):
    """One generated (or edited) image and how it was made. Holds a ref, never pixels."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["generated_image"] = "generated_image"
    image: ImageRef
    prompt: str
    seed: int
    generator: str
    source_image: ImageRef | None = None
    sidecar: str | None = None  # path of a scene-graph sidecar, for generators that know their ground truth
    metadata: dict[str, Any] = Field(default_factory=dict)


@runtime_checkable
class ImageGenerator(Protocol):
    name: str

    async def generate(
        self, prompts: Sequence[str], seeds: Sequence[int], source_images: Sequence[ImageRef | None] | None = None
    ) -> list[GeneratedImage]: ...


def batch_sources(
    prompts: Sequence[str], seeds: Sequence[int], source_images: Sequence[ImageRef | None] | None
) -> list[ImageRef | None]:
    """Check a `generate` call's arguments line up; the source image of each prompt (None for text-to-image)."""
    if len(prompts) != len(seeds):
        raise ValueError(f"{len(prompts)} prompts but {len(seeds)} seeds")
    sources: list[ImageRef | None] = list(source_images) if source_images is not None else [None] * len(prompts)
    if len(sources) != len(prompts):
        raise ValueError(f"{len(prompts)} prompts but {len(sources)} source images")
    return sources

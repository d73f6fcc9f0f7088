"""Ray pools: generators and in-process critics as Ray actors, so one run uses every GPU of a Ray cluster.

`--generator ray:PIPELINE_DIR --replicas N` (or `ray:sketch`) starts N replicas, each an async actor holding its own
generator (one GPU each when the device is CUDA; on CPU, N per node). `--critic ray:MODEL_DIR --replicas N` does the
same for a local critic. `ray.init()` joins the cluster named by `RAY_ADDRESS` when it is set, and otherwise starts a
local one. Ray is the optional `ray` extra.

Replicas may run on other machines, so nothing crosses by path: requests carry images as bytes (sources with their
sketch scene graphs), answers come back as PNG bytes that the pool stores under the run's own image folder
(`served_generator.store_image`). Each call goes to the replica with the fewest calls in flight; a call whose replica
died is retried on another one (and Ray restarts the dead replica).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rationalrewards.agents.generator import GeneratedImage, ImageGenerator, batch_sources
from rationalrewards.rewardmodel.errors import RewardServerError
from rationalrewards.rewardmodel.images import read_image_bytes
from rationalrewards.rewardmodel.schemas import ImageRef


def _ray() -> Any:
    import ray  # a missing extra is reported by name at the CLI's boundary (`plumbing/extras.py`)

    if not ray.is_initialized():
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        # With RAY_ADDRESS set this joins that cluster; without, it starts a local one for this process.
        ray.init(include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    return ray


class GeneratorReplica:
    """One replica (a Ray actor): a generator and a private folder for its images and uploaded sources."""

    def __init__(self, build: Callable[[Path], ImageGenerator]) -> None:
        import tempfile

        self.work_dir = Path(tempfile.mkdtemp(prefix="rr-replica-"))
        self.generator = build(self.work_dir / "images")

    def name(self) -> str:
        return str(self.generator.name)

    async def generate(
        self, prompts: list[str], seeds: list[int], sources: list[tuple[bytes, str | None] | None]
    ) -> list[dict[str, object]]:
        from rationalrewards.agents.served_generator import store_image

        refs = [store_image(s[0], self.work_dir / "sources", s[1])[0] if s else None for s in sources]
        made = await self.generator.generate(prompts, seeds, refs if any(refs) else None)
        return [_shipped(image) for image in made]


def _shipped(image: GeneratedImage) -> dict[str, object]:
    """What a replica sends back for one image: its bytes, its scene graph (sketch world), its metadata."""
    scene = Path(image.sidecar).read_text() if image.sidecar else None
    return {"png": read_image_bytes(image.image), "scene": scene, "metadata": image.metadata}


class CriticReplica:
    """One replica of an in-process critic (a local model directory, usually)."""

    def __init__(self, build: Callable[[], Any]) -> None:
        self.critic: Any = build()

    async def critique(self, requests: list[object]) -> list[object]:
        return list(await self.critic.critique(requests))

    async def compare(self, requests: list[object]) -> list[object]:
        return list(await self.critic.compare(requests))


class _Pool:
    """Least-busy routing over actors, with a retry on another replica when one dies."""

    def __init__(self, actors: list[Any]) -> None:
        self.actors = actors
        self.in_flight = [0] * len(actors)

    async def call(self, method: str, *args: Any) -> Any:
        ray = _ray()
        tried: set[int] = set()
        while True:
            index = min((i for i in range(len(self.actors)) if i not in tried), key=lambda i: self.in_flight[i])
            self.in_flight[index] += 1
            try:
                return await getattr(self.actors[index], method).remote(*args)
            except ray.exceptions.RayActorError as e:
                tried.add(index)
                if len(tried) == len(self.actors):
                    raise RewardServerError(f"every Ray replica failed ({type(e).__name__}: {e})") from e
            finally:
                self.in_flight[index] -= 1


def _replicas(cls: type, replicas: int, device: str, *args: Any) -> list[object]:
    if replicas < 1:
        raise ValueError("--replicas must be at least 1")
    ray = _ray()
    gpus = 1 if device.startswith("cuda") else 0
    actor = ray.remote(num_cpus=1 if not gpus else 0, num_gpus=gpus, max_restarts=3)(cls)
    return [actor.remote(*args) for _ in range(replicas)]


class RayGeneratorPool:
    """An `ImageGenerator` spread over Ray replicas, each built by `build(out_dir)` inside its actor (the factory hands
    a picklable partial of itself, so this module never imports the factory)."""

    batch_size = 8

    def __init__(
        self,
        build: Callable[[Path], ImageGenerator],
        out_dir: str | Path,
        *,
        name: str,
        replicas: int = 1,
        device: str = "cpu",
    ) -> None:
        self.pool = _Pool(_replicas(GeneratorReplica, replicas, device, build))
        self.out_dir = Path(out_dir)
        # The replicas' own generator name (the generation cache is keyed by it); `name` is the spec, for messages.
        self.name = f"ray:{_ray().get(self.pool.actors[0].name.remote())}"
        self.spec = name
        self.replicas = replicas

    async def generate(
        self, prompts: Sequence[str], seeds: Sequence[int], source_images: Sequence[ImageRef | None] | None = None
    ) -> list[GeneratedImage]:
        from rationalrewards.agents.served_generator import scene_text, store_image

        sources = batch_sources(prompts, seeds, source_images)
        shipped = [(read_image_bytes(s), scene_text(s)) if s is not None else None for s in sources]
        answers = await self.pool.call("generate", list(prompts), list(seeds), shipped)
        made = []
        for prompt, seed, source, answer in zip(prompts, seeds, sources, answers, strict=True):
            ref, sidecar = store_image(answer["png"], self.out_dir, answer["scene"])
            made.append(
                GeneratedImage(
                    image=ref,
                    prompt=prompt,
                    seed=seed,
                    generator=self.name,
                    source_image=source,
                    sidecar=sidecar,
                    metadata=answer["metadata"],
                )
            )
        return made


class RayRewardModel:
    """A critic spread over Ray replicas, each built by `build()` inside its actor. Images travel as data URLs, so
    replicas on other machines read them."""

    def __init__(self, build: Callable[[], Any], *, name: str, replicas: int = 1, device: str = "cpu") -> None:
        self.pool = _Pool(_replicas(CriticReplica, replicas, device, build))
        self.name = name

    async def critique(self, requests: Sequence[object]) -> list[object]:
        return list(await self.pool.call("critique", [_inline(r) for r in requests]))

    async def compare(self, requests: Sequence[object]) -> list[object]:
        return list(await self.pool.call("compare", [_inline(r) for r in requests]))


def _inline(request: Any) -> object:
    """The request with every image as a data URL (same bytes, same sha256)."""
    from rationalrewards.rewardmodel.images import png_data_url

    update = {
        name: value.model_copy(update={"uri": png_data_url(value)})
        for name in ("image", "image_a", "image_b", "source_image")
        if isinstance(value := getattr(request, name, None), ImageRef) and not value.uri.startswith("data:")
    }
    return request.model_copy(update=update) if update else request

"""An `ImageGenerator` over the OpenAI Images API: vLLM-Omni, SGLang's diffusion server, `rationalrewards
serve-generator`, or several of them at once (one per GPU).

Each image is one request (`n=1` with its own seed), so an image depends on its prompt and seed only, never on which
server or batch it landed in; servers batch concurrent requests themselves. Text-to-image posts JSON to
`/v1/images/generations`; an edit posts multipart to `/v1/images/edits` with the source image. Transport rules are the
critic client's (`plumbing.http`): bounded concurrency, timeouts, jittered retries on transient faults only, typed
errors, least-busy routing over several endpoints with ejection. An answer that does not hold a decodable image is a
transient fault (retried), never a placeholder image: a prompt whose images cannot be made fails with
`RewardServerError` and the batch runner records it for the next run.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp

from rationalrewards.agents.generator import GeneratedImage, batch_sources
from rationalrewards.agents.world import attach_ground_truth, ground_truth_of
from rationalrewards.plumbing.http import HttpEndpoints, Transient
from rationalrewards.plumbing.redact import Secret
from rationalrewards.rewardmodel.images import content_path, decode_image, image_ref_from_path, read_image_bytes
from rationalrewards.rewardmodel.schemas import ImageRef


class ServedGenerator:
    """`ImageGenerator` for one or several OpenAI-compatible image servers (a URL, a list, or URLs joined by commas)."""

    batch_size = 8  # candidates per generate call the graph sends; each becomes its own request

    def __init__(
        self,
        base_url: str | Sequence[str],
        out_dir: str | Path,
        *,
        model: str | None = None,
        size: int | None = None,
        steps: int | None = None,
        api_key: str | None = None,
        credentials: Secret | None = None,
        trust_scenes: bool = False,
        concurrency: int = 16,
        timeout: float = 300.0,
        max_retries: int = 5,
        retry_max_wait: float = 20.0,
        deadline: float | None = 900.0,
        max_response_bytes: int = 64 * 2**20,
    ) -> None:
        self.http = HttpEndpoints(
            base_url,
            api_key=api_key,
            credentials=credentials,
            concurrency=concurrency,
            timeout=timeout,
            max_retries=max_retries,
            retry_max_wait=retry_max_wait,
            deadline=deadline,
            max_response_bytes=max_response_bytes,
        )
        self.out_dir = Path(out_dir)
        self.model, self.size, self.steps = model, size, steps
        # Ground truth a server sends with an image (a sketch scene graph) is a claim about the image, not a fact:
        # taken only when the user trusts the server, and then only for the exact bytes it describes.
        self.trust_scenes = trust_scenes
        self.name = "served:" + (model or self.http.name)

    def __repr__(self) -> str:
        return f"ServedGenerator({self.http.name!r}, model={self.model!r})"

    async def aclose(self) -> None:
        await self.http.aclose()

    async def wait_until_healthy(self, timeout: float = 300.0) -> None:  # noqa: ASYNC109 - a deadline
        await self.http.wait_until_healthy(timeout)

    async def generate(
        self, prompts: Sequence[str], seeds: Sequence[int], source_images: Sequence[ImageRef | None] | None = None
    ) -> list[GeneratedImage]:
        sources = batch_sources(prompts, seeds, source_images)
        return list(
            await asyncio.gather(*(self._one(p, s, src) for p, s, src in zip(prompts, seeds, sources, strict=True)))
        )

    def _fields(self, prompt: str, seed: int) -> dict[str, object]:
        fields: dict[str, object] = {"prompt": prompt, "n": 1, "seed": seed, "response_format": "b64_json"}
        if self.model:
            fields["model"] = self.model
        if self.size:
            fields["size"] = f"{self.size}x{self.size}"
        if self.steps:
            fields["num_inference_steps"] = self.steps
        return fields

    async def _one(self, prompt: str, seed: int, source: ImageRef | None) -> GeneratedImage:
        fields = self._fields(prompt, seed)
        source_bytes = read_image_bytes(source) if source is not None else None
        source_scene = scene_text(source) if source is not None else None

        async def attempt(url: str, within: float) -> GeneratedImage:
            if source_bytes is None:
                body = await self.http.request(url, "POST", "/images/generations", json=fields, within=within)
            else:
                form = aiohttp.FormData()
                form.add_field("image", source_bytes, filename="source.png", content_type="image/png")
                for key, value in fields.items():
                    form.add_field(key, str(value))
                if source_scene is not None:
                    form.add_field("scene", source_scene)
                body = await self.http.request(url, "POST", "/images/edits", data=form, within=within)
            return self._save(body, prompt, seed, source)

        async with self.http.state().semaphore:
            return await self.http.retrying(attempt, "image generation" if source is None else "image edit")

    def _save(self, body: Any, prompt: str, seed: int, source: ImageRef | None) -> GeneratedImage:
        """The answer's image, checked against the request (one image, of the size asked for) and to decode, stored
        content-addressed, with the scene graph it came with only when the server is trusted."""
        try:
            items = body["data"]
            if not isinstance(items, list) or len(items) != 1:
                raise ValueError(f"{len(items) if isinstance(items, list) else 'no'} images for a request of one")
            item = items[0]
            data = base64.b64decode(item["b64_json"], validate=True)
        except (KeyError, IndexError, TypeError, binascii.Error, ValueError) as e:
            raise Transient(f"the answer holds no base64 image ({type(e).__name__}: {e})") from e
        scene = item.get("scene") if self.trust_scenes else None
        try:
            ref, sidecar = store_image(data, self.out_dir, scene)
        except ValueError as e:  # garbage is caught here, not by the critic
            raise Transient(f"the answer's image is not usable ({e})") from e
        if self.size and (ref.width, ref.height) != (self.size, self.size):
            raise Transient(f"the answer is {ref.width}x{ref.height}; {self.size}x{self.size} was asked for")
        metadata = {"server_seed": item.get("seed")} if item.get("seed") not in (None, seed) else {}
        return GeneratedImage(
            image=ref,
            prompt=prompt,
            seed=seed,
            generator=self.name,
            source_image=source,
            sidecar=sidecar,
            metadata=metadata,
        )


def scene_text(source: ImageRef) -> str | None:
    """The ground truth a world keeps beside an image (a sketch scene graph), sent along with it to another process."""
    if source.uri.startswith("data:"):
        return None
    return ground_truth_of(Path(source.uri.removeprefix("file://")))


def store_image(data: bytes, out_dir: str | Path, scene: Any = None) -> tuple[ImageRef, str | None]:
    """Image bytes made elsewhere (a server, a Ray replica), checked to decode and stored content-addressed under
    `out_dir`, with the ground truth that came with them written beside (for these bytes' digest) by the world it
    belongs to. Raises ValueError for bytes that are not an image or ground truth no world reads: nothing is kept
    then."""
    import hashlib

    from rationalrewards.plumbing.files import atomic_write_bytes

    try:
        decode_image(data, "the image")  # checked before anything is written: a refused image leaves nothing behind
    except ValueError as e:
        raise ValueError(f"the image does not decode ({e})") from e
    digest = hashlib.sha256(data).hexdigest()
    path = content_path(out_dir, digest)
    if not path.exists():
        atomic_write_bytes(path, data)
    ref = image_ref_from_path(path)
    if not scene:
        return ref, None
    return ref, str(attach_ground_truth(path, scene, digest))

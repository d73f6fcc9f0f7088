"""Dynamic batching of generation (issue 15): requests from concurrent callers share pipeline calls, and an image does
not depend on the batch it landed in."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rationalrewards.plumbing.batching import MicroBatcher


async def test_concurrent_callers_share_calls_and_get_their_own_results() -> None:
    threads: set[str] = set()

    def square(batch: list[int]) -> list[int]:
        threads.add(threading.current_thread().name)
        time.sleep(0.01)
        return [n * n for n in batch]

    batcher = MicroBatcher(square, max_size=4, max_wait=0.05)
    results = await asyncio.gather(*(batcher.submit([n]) for n in range(10)))
    assert results == [[n * n] for n in range(10)]
    assert sorted(batcher.batch_sizes, reverse=True)[:2] == [4, 4] and sum(batcher.batch_sizes) == 10
    assert threading.main_thread().name not in threads  # the call runs off the event loop


async def test_requests_that_cannot_share_a_call_are_kept_apart_and_failures_reach_only_their_batch() -> None:
    seen: list[list[str]] = []

    def run(batch: list[str]) -> list[str]:
        seen.append(batch)
        if "bad" in batch:
            raise RuntimeError("the pipeline failed")
        return [item.upper() for item in batch]

    batcher = MicroBatcher(run, max_size=8, max_wait=0.05, key=lambda item: item.startswith("edit"))
    good = batcher.submit(["a", "b", "edit-c"])
    bad = batcher.submit(["bad"])
    results = await asyncio.gather(good, bad, return_exceptions=True)
    assert all(all(x.startswith("edit") for x in b) or not any(x.startswith("edit") for x in b) for b in seen)
    assert isinstance(results[1], RuntimeError)
    # "bad" shared a call with the other text-to-image requests, so they failed with it; the edit did not.
    assert isinstance(results[0], RuntimeError) or results[0] == ["A", "B", "EDIT-C"]
    assert await batcher.submit(["after"]) == ["AFTER"]  # the worker survives a failed batch
    with pytest.raises(ValueError, match="max_size"):
        MicroBatcher(run, max_size=0)


@pytest.mark.slow
async def test_an_image_is_the_same_alone_and_in_a_batch_of_eight(tmp_path: Path) -> None:
    from rationalrewards.agents.diffusers_generator import DiffusersGenerator, save_tiny_sd_pipeline

    pipeline = save_tiny_sd_pipeline(tmp_path / "tiny-sd")
    generator = DiffusersGenerator(pipeline, tmp_path / "images", steps=3, size=32, max_batch=8, max_wait=0.2)
    [alone] = await generator.generate(["a photo of two dogs"], [5])
    prompts = ["a photo of two dogs"] + [f"a photo of {n} cats" for n in range(2, 9)]
    together = await asyncio.gather(*(generator.generate([p], [5 if i == 0 else i]) for i, p in enumerate(prompts)))
    assert generator.batcher.batch_sizes[-1] == 8  # the eight concurrent prompts made one pipeline call
    pixels = [np.asarray(Image.open(image.image.uri), dtype=np.int16) for image in (alone, together[0][0])]
    assert np.abs(pixels[0] - pixels[1]).max() <= 1  # float tolerance: at most one grey level after rounding
    assert together[1][0].image.sha256 != together[0][0].image.sha256


def test_inputs_are_hashed_item_by_item_to_the_digest_run_directories_record() -> None:
    import hashlib
    import json

    from rationalrewards.runtime.batch import content_hash

    for value in ([], [1], [{"b": 1, "a": [1, 2]}, "x", None, "é"], [[1, [2]], {"k": {"z": 1}}]):
        whole = hashlib.sha256(json.dumps(value, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
        assert content_hash(value) == content_hash(item for item in value) == whole
    assert content_hash({"a": 1}) == hashlib.sha256(b'{"a": 1}').hexdigest()

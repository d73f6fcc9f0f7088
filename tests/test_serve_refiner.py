"""`serve-refiner`: Generate-Critique-Refine behind the OpenAI Images API, called with the official `openai` client as
an application calls it (base URL changed, nothing else)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import free_port, run_cli, wait_for_http

openai = pytest.importorskip("openai")


def _start(*args: str, cwd: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "rationalrewards", *args, "--port", str(port)],
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    wait_for_http(f"http://127.0.0.1:{port}/health", process)
    return process, f"http://127.0.0.1:{port}/v1"


@pytest.fixture(scope="module")
def refiner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    work = tmp_path_factory.mktemp("refiner")
    process, url = _start("serve-refiner", "--preset", "deep", "--work-dir", str(work / "server"), cwd=work)
    yield url
    process.terminate()
    process.wait(10)


def test_an_unchanged_images_generate_call_gets_a_refined_image(refiner: str, tmp_path: Path) -> None:
    client = openai.OpenAI(base_url=refiner, api_key="unused")
    answer = client.images.generate(model="any", prompt="a photo of four clocks", n=2, extra_body={"seed": 1})
    assert len(answer.data) == 2
    digests = set()
    for item in answer.data:
        png = base64.b64decode(item.b64_json)
        assert png.startswith(b"\x89PNG")
        digests.add(hashlib.sha256(png).hexdigest())
        extra = item.model_extra["rationalrewards"]
        assert extra["stop_reason"] in ("passed", "max_rounds", "plateau") and extra["rounds"]
        assert item.revised_prompt == extra["prompt"]  # OpenAI's own field: the request the kept image was made from
        assert set(extra["critique"]["scores"]) >= {"text_faithfulness", "physical_quality"}
    assert len(digests) == 2  # n runs from seeds that share no candidate
    as_url = client.images.generate(model="any", prompt="a photo of two cats", response_format="url")
    import httpx

    fetched = httpx.get(as_url.data[0].url, timeout=10)
    assert fetched.status_code == 200 and fetched.content.startswith(b"\x89PNG")
    models = client.models.list()
    assert models.data and models.data[0].id


def test_images_edit_through_the_official_client(refiner: str, tmp_path: Path) -> None:
    run_cli("sketch", "render", "a photo of a blue ball", "--seed", "2", "--out", str(tmp_path / "src.png"), check=True)
    client = openai.OpenAI(base_url=refiner, api_key="unused")
    with (tmp_path / "src.png").open("rb") as image:
        answer = client.images.edit(
            model="any",
            image=image,
            prompt="change the color of the ball to red",
            extra_body={"scene": (tmp_path / "src.scene.json").read_text(), "seed": 4},
        )
    extra = answer.data[0].model_extra["rationalrewards"]
    assert extra["critique"]["task"] == "edit" and "image_faithfulness" in extra["critique"]["scores"]


def test_bad_requests_are_answered_as_the_api_does(refiner: str) -> None:
    client = openai.OpenAI(base_url=refiner, api_key="unused", max_retries=0)
    for kwargs in ({"prompt": ""}, {"prompt": "a cat", "n": 0}, {"prompt": "a cat", "extra_body": {"preset": "x"}}):
        with pytest.raises(openai.BadRequestError):
            client.images.generate(model="any", **kwargs)  # type: ignore[arg-type]


def test_32_concurrent_requests_each_answered_once(refiner: str) -> None:
    async def run() -> list[object]:
        async with openai.AsyncOpenAI(base_url=refiner, api_key="unused", timeout=300) as client:
            return await asyncio.gather(
                *(
                    client.images.generate(model="any", prompt=f"a photo of {1 + k % 4} apples", extra_body={"seed": k})
                    for k in range(32)
                )
            )

    answers = asyncio.run(run())
    seeds = [a.data[0].model_extra["seed"] for a in answers]  # type: ignore[attr-defined]
    assert sorted(seeds) == list(range(32))  # none lost, none duplicated, each the answer to its own request
    prompts = [a.data[0].model_extra["rationalrewards"]["rounds"][0]["prompt"] for a in answers]  # type: ignore[attr-defined]
    assert prompts == [f"a photo of {1 + k % 4} apples" for k in range(32)]


def test_a_full_queue_answers_429(tmp_path: Path) -> None:
    """One image at a time, none waiting: a second request while the first runs is told to come back."""
    (tmp_path / "slow.py").write_text(
        "import time\nfrom PIL import Image\n\n"
        "def draw(prompt, seed):\n    time.sleep(2)\n    return Image.new('RGB', (16, 16), (seed, 0, 0))\n\n"
        "def score(request):\n    return 0.5\n"
    )
    process, url = _start(
        "serve-refiner", "--generator", "py:slow:draw", "--critic", "py:slow:score", "--preset", "paper",
        "--max-in-flight", "1", "--queue", "0", "--work-dir", str(tmp_path / "server"), cwd=tmp_path,
    )  # fmt: skip
    try:

        async def run() -> list[object]:
            async with openai.AsyncOpenAI(base_url=url, api_key="unused", max_retries=0) as client:
                first = asyncio.create_task(client.images.generate(model="any", prompt="a cat"))
                await asyncio.sleep(0.5)
                second = client.images.generate(model="any", prompt="a dog")
                return list(await asyncio.gather(first, second, return_exceptions=True))

        first, second = asyncio.run(run())
        assert not isinstance(first, BaseException) and isinstance(second, openai.RateLimitError)
    finally:
        process.terminate()
        process.wait(10)


@pytest.mark.slow
def test_refined_images_are_right_more_often_than_the_generator_alone(tmp_path: Path) -> None:
    """The same prompts and seeds through `serve-generator` and through `serve-refiner` (deep), each image graded
    against its GenEval spec by the sketch world's grader from the ground truth sent with it."""
    from rationalrewards.agents.suite import SuiteRow
    from rationalrewards.agents.world import attach_ground_truth, world_named
    from rationalrewards.rewardmodel.images import image_ref_from_path

    world = world_named("sketch")
    rows = [SuiteRow.model_validate(r) for r in world.suite("t2i", 24, seed=5)]
    grader = world.grader()
    accuracy = {}
    for name, args in (
        ("generator", ("serve-generator", "sketch", "--work-dir", str(tmp_path / "gen"))),
        ("refiner", ("serve-refiner", "--preset", "deep", "--work-dir", str(tmp_path / "ref"))),
    ):
        process, url = _start(*args, cwd=tmp_path)
        try:
            client = openai.OpenAI(base_url=url, api_key="unused", timeout=300)
            correct = 0
            for k, row in enumerate(rows):
                item = client.images.generate(model="any", prompt=row.prompt, extra_body={"seed": row.seed}).data[0]
                png = base64.b64decode(item.b64_json)
                path = tmp_path / "graded" / name / f"{k}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(png)
                attach_ground_truth(path, json.dumps(item.model_extra["scene"]), hashlib.sha256(png).hexdigest())
                grade = grader.grade(row, row.prompt, image_ref_from_path(path), None)
                correct += bool(grade and grade.correct)
            accuracy[name] = correct / len(rows)
        finally:
            process.terminate()
            process.wait(10)
    assert accuracy["refiner"] > accuracy["generator"], accuracy
    (tmp_path / "accuracy.json").write_text(json.dumps(accuracy))

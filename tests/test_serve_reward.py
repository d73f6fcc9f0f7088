"""`serve-reward`: the remote reward protocol RL frameworks call (`POST /compute`, `GET /health`), driven by a client
written to that protocol, over real critics on loopback."""

from __future__ import annotations

import asyncio
import base64
import io
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from helpers import free_port, wait_for_http

CRITIC = """
from PIL import ImageStat
import rationalrewards as rr

def score(request):
    red = ImageStat.Stat(rr.load_pil(request.image)).mean[0] / 255
    return None if red > 0.95 else red  # a critic that cannot judge the reddest images
"""


def b64_png(red: int) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (red, 80, 80)).save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def _serve(cwd: Path, *args: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], str]:
    import os

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "rationalrewards", "serve-reward", *args, "--port", str(port)],
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=os.environ | (env or {}),
    )
    wait_for_http(f"http://127.0.0.1:{port}/health", process)
    return process, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    work = tmp_path_factory.mktemp("reward")
    (work / "brightness.py").write_text(CRITIC)
    process, url = _serve(work, "--critic", "py:brightness:score")
    yield url
    process.terminate()
    process.wait(10)


def test_64_samples_in_one_request_in_order(server: str) -> None:
    reds = [(k * 3) % 240 for k in range(64)]
    answer = httpx.post(
        f"{server}/compute", json={"prompts": ["a red ball"] * 64, "images": [b64_png(r) for r in reds]}, timeout=60
    ).json()
    assert answer["mask"] == [1] * 64 and len(answer["rewards"]) == 64
    assert answer["rewards"] == pytest.approx([r / 255 for r in reds], abs=1e-4)
    assert httpx.get(f"{server}/health").json()["status"] == "ok"


def test_an_abstention_is_never_a_number_without_its_mask(server: str) -> None:
    reds = [40, 250, 120, 255]  # the two reddest: the critic abstains
    answer = httpx.post(
        f"{server}/compute", json={"prompts": ["a red ball"] * 4, "images": [b64_png(r) for r in reds]}, timeout=60
    ).json()
    assert answer["mask"] == [1, 0, 1, 0]
    assert answer["abstentions"][1] and answer["abstentions"][0] is None
    fallback = (40 / 255 + 120 / 255) / 2  # the mean of the scored samples: neutral for group advantages
    assert answer["fallback"] == pytest.approx(fallback, abs=1e-4) and answer["rewards"][1] == answer["fallback"]
    assert (
        answer["scores"][0]["text_faithfulness"] == pytest.approx(1 + 3 * 40 / 255, abs=1e-3)
        and answer["scores"][1] is None
    )


def test_concurrent_requests_lose_no_sample(server: str) -> None:
    async def run() -> list[dict[str, object]]:
        async with httpx.AsyncClient(timeout=60) as client:

            async def one(k: int) -> dict[str, object]:
                reds = [(k * 8 + i) * 3 % 240 for i in range(8)]
                body = {"prompts": [f"prompt {k}-{i}" for i in range(8)], "images": [b64_png(r) for r in reds]}
                answer = (await client.post(f"{server}/compute", json=body)).json()
                return {"k": k, "reds": reds, **answer}

            return list(await asyncio.gather(*(one(k) for k in range(8))))

    for answer in asyncio.run(run()):
        assert answer["rewards"] == pytest.approx([r / 255 for r in answer["reds"]], abs=1e-4)  # type: ignore[union-attr]


def test_edits_and_malformed_requests(server: str, tmp_path: Path) -> None:
    edit = {"prompts": ["make it red"], "images": [b64_png(200)], "condition_images": [[b64_png(10)]]}
    assert httpx.post(f"{server}/compute", json=edit, timeout=60).json()["mask"] == [1]
    for body, message in (
        ({"prompts": ["a"], "images": []}, "one image per prompt"),
        ({"prompts": ["a"], "images": ["not base64!"]}, "not valid base64"),
        ({"prompts": ["a"], "images": [b64_png(1)], "condition_images": [[b64_png(1), b64_png(2)]]}, "one source"),
        ({"prompts": [""], "images": [b64_png(1)]}, "non-empty strings"),
        ({"prompts": ["a"], "images": [base64.b64encode(b"GIF89a-not-really").decode()]}, ""),
    ):
        answer = httpx.post(f"{server}/compute", json=body, timeout=60)
        assert answer.status_code == 400 and message in answer.json()["detail"], (body, answer.text)


def test_an_api_key_is_required_when_given(tmp_path: Path) -> None:
    (tmp_path / "brightness.py").write_text(CRITIC)
    process, url = _serve(tmp_path, "--critic", "py:brightness:score", env={"RATIONALREWARDS_SERVE_API_KEY": "k3y"})
    try:
        body = {"prompts": ["a"], "images": [b64_png(10)]}
        assert httpx.post(f"{url}/compute", json=body).status_code == 401
        answer = httpx.post(f"{url}/compute", json=body, headers={"Authorization": "Bearer k3y"})
        assert answer.status_code == 200 and answer.json()["mask"] == [1]
    finally:
        process.terminate()
        process.wait(10)


def test_served_rewards_equal_the_rl_path(tmp_path: Path) -> None:
    """The same HTTP critic through `serve-reward` and through the RL trainers' reward function: equal rewards."""
    from rationalrewards.agents.factory import reward_model_from_spec
    from rationalrewards.rewardmodel.mock_server import MockServer
    from rationalrewards.rewardmodel.reward_fn import CritiqueReward

    reds = [10, 90, 170]
    with MockServer(free_port()) as critic:
        process, url = _serve(tmp_path, "--critic", critic.base_url, "--model", "mock-critic")
        try:
            served = httpx.post(
                f"{url}/compute", json={"prompts": ["a red ball"] * 3, "images": [b64_png(r) for r in reds]}, timeout=60
            ).json()
        finally:
            process.terminate()
            process.wait(10)
        with CritiqueReward(reward_model_from_spec(critic.base_url, model="mock-critic")) as reward:
            direct = reward(["a red ball"] * 3, images=[base64.b64decode(b64_png(r)) for r in reds])
    assert served["mask"] == [1, 1, 1] and served["rewards"] == pytest.approx(direct)

"""The OpenAI-compatible client against a loopback fault-injection server of the tests' own (real HTTP)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import structlog

from rationalrewards.rewardmodel import Abstention, Critique, CritiqueRequest, RewardRequestError, RewardServerError
from rationalrewards.rewardmodel.backends.openai_compat import OpenAICompatibleRewardModel, normalise_base_url
from rationalrewards.rewardmodel.images import image_ref_from_path
from rationalrewards.rewardmodel.mock_server import Fault, MockServer
from rationalrewards.rewardmodel.schemas import CompareRequest


@pytest.fixture
def server(port: int):
    with MockServer(port) as mock:
        yield mock


def _client(server: MockServer, **kw) -> OpenAICompatibleRewardModel:
    defaults = dict(max_retries=2, retry_max_wait=0.05, timeout=5.0)
    return OpenAICompatibleRewardModel(server.base_url, "mock-critic", **(defaults | kw))


@pytest.fixture
def request_(png_file: Path) -> CritiqueRequest:
    return CritiqueRequest(prompt="a red ball", image=image_ref_from_path(png_file))


async def test_success_parses_a_typed_critique_and_sends_png_data_urls(
    server: MockServer, request_: CritiqueRequest
) -> None:
    [result] = await _client(server).critique([request_])
    assert isinstance(result, Critique)
    assert result.scores["text_faithfulness"] == 3.5 and result.refined_request
    assert result.usage and result.usage["completion_tokens"] == 300
    body = server.state.requests[-1]
    assert body["temperature"] == 0.1 and body["max_tokens"] == 20480 and body["model"] == "mock-critic"
    assert server.state.images_seen == 1


async def test_500_then_200_is_retried_and_succeeds(server: MockServer, request_: CritiqueRequest) -> None:
    server.state.script.extend([Fault(status=500), Fault(status=503)])
    [result] = await _client(server).critique([request_])
    assert isinstance(result, Critique)
    assert len(server.state.requests) == 3


async def test_429_honours_retry_after(server: MockServer, request_: CritiqueRequest) -> None:
    server.state.script.append(Fault(status=429, headers={"retry-after": "0.3"}))
    start = time.monotonic()
    [result] = await _client(server, retry_max_wait=1.0).critique([request_])
    assert isinstance(result, Critique) and time.monotonic() - start >= 0.3


async def test_400_is_not_retried_and_raises_clearly(server: MockServer, request_: CritiqueRequest) -> None:
    server.state.script.append(Fault(status=400))
    with pytest.raises(RewardRequestError, match=r"HTTP 400.*not retried") as info:
        await _client(server).critique([request_])
    assert info.value.status_code == 400
    assert len(server.state.requests) == 1


async def test_slow_response_past_timeout_becomes_timeout_abstention(
    server: MockServer, request_: CritiqueRequest
) -> None:
    server.state.script.extend([Fault(delay=2.0)] * 2)
    [result] = await _client(server, timeout=0.3, max_retries=1).critique([request_])
    assert isinstance(result, Abstention) and result.reason == "timeout"
    assert "2 attempt" in result.detail


async def test_malformed_json_is_retried_then_a_server_error(server: MockServer, request_: CritiqueRequest) -> None:
    server.state.script.extend([Fault(malformed=True)] * 3)
    with pytest.raises(RewardServerError, match="not JSON"):
        await _client(server).critique([request_])
    server.state.script.extend([Fault(malformed=True)] * 3)
    [result] = await _client(server, on_server_error="abstain").critique([request_])
    assert isinstance(result, Abstention) and result.reason == "server_error"


async def test_truncated_and_garbage_completions_abstain_with_raw_text(
    server: MockServer, request_: CritiqueRequest
) -> None:
    server.state.script.append(Fault(finish_reason="length", text="# User Request Analysis\nThe user wa"))
    server.state.script.append(Fault(text="I'm sorry, I can't see any image."))
    truncated, garbage = await _client(server, concurrency=1).critique([request_, request_])
    assert isinstance(truncated, Abstention) and truncated.reason == "truncated"
    assert truncated.raw_text.endswith("The user wa")
    assert isinstance(garbage, Abstention) and garbage.reason == "parse_error"
    assert garbage.raw_text == "I'm sorry, I can't see any image."


async def test_connection_refused_raises_after_retry_budget(port: int, request_: CritiqueRequest) -> None:
    client = OpenAICompatibleRewardModel(f"http://127.0.0.1:{port}", "m", max_retries=2, retry_max_wait=0.05)
    with pytest.raises(RewardServerError, match=r"3 attempt.*connection failed"):
        await client.critique([request_])
    with pytest.raises(RewardServerError, match="not healthy"):
        await client.wait_until_healthy(timeout=0.5, interval=0.1)


async def test_model_discovery_compare_and_health(server: MockServer, png_file: Path) -> None:
    client = OpenAICompatibleRewardModel(server.base_url.removesuffix("/v1"))  # bare host: /v1 added
    await client.wait_until_healthy(timeout=5)
    assert await client.served_model() == "mock-critic"
    ref = image_ref_from_path(png_file)
    server.state.text = "1. Text Faithfulness:\n## Score A: 4\n## Score B: 2\n2. Physical and Visual Quality:\n## Score A: 3\n## Score B: 3\n3. Text Rendering:\n## Score A: N/A\n## Score B: N/A\n"
    [judgement] = await client.compare([CompareRequest(prompt="p", image_a=ref, image_b=ref)])
    assert judgement.preferred == "A"
    assert server.state.images_seen == 2


async def test_bounded_concurrency(port: int, request_: CritiqueRequest) -> None:
    with MockServer(port, latency=0.2) as server:
        start = time.monotonic()
        results = await _client(server, concurrency=4).critique([request_] * 8)
        elapsed = time.monotonic() - start
    assert all(isinstance(r, Critique) for r in results)
    assert 0.4 <= elapsed < 1.5  # 8 requests, 4 at a time, 0.2 s each: two waves


def test_api_key_never_printed_or_logged(server: MockServer, request_: CritiqueRequest, capsys) -> None:
    from rationalrewards.plumbing.aio import run_sync
    from rationalrewards.plumbing.logs import configure_logging

    configure_logging(json=True, level="DEBUG", force=True)
    secret = "sk-very-secret-123"
    client = _client(server, api_key=secret)
    assert secret not in repr(client) and "***" in repr(client)
    server.state.script.append(Fault(status=502))
    from rationalrewards.plumbing.logs import bound_contextvars

    with bound_contextvars(run_id="run-7", sample_id="s-42"):
        run_sync(client.critique([request_]))
    captured = capsys.readouterr()
    retry_lines = [json.loads(line) for line in captured.err.splitlines() if "reward_server.retry" in line]
    assert retry_lines and retry_lines[0]["run_id"] == "run-7" and retry_lines[0]["sample_id"] == "s-42"
    assert secret not in captured.err + captured.out
    structlog.reset_defaults()


def test_bad_configuration_is_rejected() -> None:
    with pytest.raises(ValueError, match="http"):
        normalise_base_url("localhost:8000")
    with pytest.raises(ValueError, match="concurrency"):
        OpenAICompatibleRewardModel("http://127.0.0.1:1", concurrency=0)
    assert normalise_base_url("https://api.example.com/openai/v1/") == "https://api.example.com/openai/v1"

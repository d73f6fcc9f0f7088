"""Real parts: `transformers serve` (a server we did not write) with real SmolLM2 weights, the in-process tiny Qwen-VL
critic, and the image wire format decoded by a real Qwen-VL processor."""

from __future__ import annotations

import base64
import io
import subprocess
from pathlib import Path

import pytest

from helpers import PYTHON, free_port, wait_for_http
from rationalrewards.rewardmodel import Abstention, CritiqueRequest
from rationalrewards.rewardmodel.backends.openai_compat import OpenAICompatibleRewardModel
from rationalrewards.rewardmodel.images import image_ref_from_path
from rationalrewards.rewardmodel.mock_server import MockServer
from rationalrewards.rewardmodel.prompts import build_messages, parse_repredict
from rationalrewards.rewardmodel.schemas import RepredictRequest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def transformers_serve(smollm2_dir: Path, tmp_path_factory: pytest.TempPathFactory):

    port = free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                PYTHON,
                "-m",
                "transformers.cli.transformers",
                "serve",
                str(smollm2_dir),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--device",
                "cpu",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/health", process, timeout=180)
        yield f"http://127.0.0.1:{port}", smollm2_dir
    finally:
        process.terminate()
        process.wait(30)


async def test_transformers_serve_text_path(transformers_serve) -> None:
    url, model_dir = transformers_serve
    client = OpenAICompatibleRewardModel(url, max_tokens=48, temperature=0.0, timeout=120)
    await client.wait_until_healthy(timeout=30)
    assert await client.served_model() == str(model_dir)  # discovered from /v1/models
    rationale = "1. Text Faithfulness:\n## Justification: Image A shows four clocks, Image B three.\n## Score A: 4\n## Score B: 2\n"
    completion = await client.complete(build_messages(RepredictRequest(prompt="four clocks", rationale=rationale)))
    assert completion.text.strip(), "a real model answers with text"
    assert completion.usage and completion.usage["prompt_tokens"] > 50
    assert parse_repredict(completion.text) in ("A", "B", "tie", None)  # a 135M model may not follow the format


async def test_transformers_serve_truncation_and_unparseable_critique(transformers_serve, png_file: Path) -> None:
    url, _ = transformers_serve
    short = OpenAICompatibleRewardModel(url, max_tokens=4, temperature=0.0, timeout=120)
    completion = await short.complete([{"role": "user", "content": "Write a long story about clocks."}])
    assert completion.truncated
    # A text-only LLM asked for a critique answers prose that is not a critique: an Abstention, never a score.
    text_only = OpenAICompatibleRewardModel(url, max_tokens=64, temperature=0.0, timeout=120)
    from rationalrewards.rewardmodel.backends.base import critique_from_completion

    request = CritiqueRequest(prompt="a red ball", image=image_ref_from_path(png_file))
    answer = await text_only.complete([{"role": "user", "content": "Judge an image of a red ball."}])
    result = critique_from_completion(answer, request)
    assert isinstance(result, Abstention) and result.reason in ("parse_error", "truncated")
    assert result.raw_text == answer.text


async def test_image_wire_format_decodes_in_a_real_qwen_vl_processor(
    port: int, png_file: Path, tiny_vlm_dir: Path
) -> None:
    """`transformers serve` cannot load a Qwen-VL processor here (its video processor needs torchvision), so the
    image path is proven against our loopback server: what the client sends must decode into pixel values."""
    from PIL import Image

    from rationalrewards.rewardmodel.backends.local import _to_hf_messages
    from rationalrewards.rewardmodel.tiny import load_processor

    with MockServer(port) as server:
        client = OpenAICompatibleRewardModel(server.base_url, "mock-critic")
        await client.critique(
            [
                CritiqueRequest(
                    task="edit",
                    prompt="make it blue",
                    image=image_ref_from_path(png_file),
                    source_image=image_ref_from_path(png_file),
                )
            ]
        )
    body = server.state.requests[-1]
    parts = body["messages"][0]["content"]
    image_parts = [p for p in parts if p["type"] == "image_url"]
    positions = [i for i, p in enumerate(parts) if p["type"] == "image_url"]
    assert len(positions) == 2 and "before the edit" in parts[positions[0] - 1]["text"]
    assert "after the edit" in parts[positions[1] - 1]["text"]
    decoded = Image.open(io.BytesIO(base64.b64decode(image_parts[0]["image_url"]["url"].split(",", 1)[1])))
    assert decoded.size == (96, 64)
    processor = load_processor(tiny_vlm_dir)
    inputs = processor.apply_chat_template(
        [_to_hf_messages(body["messages"])],
        tokenize=True,
        return_dict=True,
        return_tensors="pt",
        add_generation_prompt=True,
    )
    assert inputs["image_grid_thw"].shape[0] == 2  # both images became vision tokens
    image_token = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert int((inputs["input_ids"] == image_token).sum()) == int(inputs["image_grid_thw"].prod(-1).sum() // 4)


async def test_in_process_tiny_qwen_vl_abstains_with_raw_text(tiny_vlm_dir: Path, png_file: Path) -> None:
    from rationalrewards.rewardmodel.backends.local import TransformersRewardModel

    request = CritiqueRequest(prompt="a red ball", image=image_ref_from_path(png_file))
    # Random weights write random text: the critic must abstain and keep the text, never score it.
    critic = TransformersRewardModel(tiny_vlm_dir, max_new_tokens=12, temperature=0.0)
    [truncated] = await critic.critique([request])
    assert isinstance(truncated, Abstention) and truncated.reason == "truncated" and truncated.raw_text
    critic.model.generation_config.eos_token_id = list(range(len(critic.processor.tokenizer)))  # every token stops
    [stopped] = await critic.critique([request])
    assert isinstance(stopped, Abstention) and stopped.reason == "parse_error"
    assert stopped.raw_text is not None and "lacks a readable score" in stopped.detail


async def test_in_process_batches_and_families(tmp_path: Path, png_file: Path) -> None:
    from rationalrewards.rewardmodel.backends.local import TransformersRewardModel
    from rationalrewards.rewardmodel.schemas import CompareRequest
    from rationalrewards.rewardmodel.tiny import FAMILIES, save_tiny_vlm

    ref = image_ref_from_path(png_file)
    for family in FAMILIES:
        critic = TransformersRewardModel(save_tiny_vlm(tmp_path / family, family), max_new_tokens=4, batch_size=2)
        results = await critic.critique([CritiqueRequest(prompt=f"ball {i}", image=ref) for i in range(3)])
        assert [r.reason for r in results] == ["truncated"] * 3, family
        [pair] = await critic.compare([CompareRequest(prompt="ball", image_a=ref, image_b=ref)])
        assert isinstance(pair, Abstention)


def test_local_backend_refuses_pickle_only_and_missing_dirs(tmp_path: Path) -> None:
    from rationalrewards.rewardmodel import RewardModelError
    from rationalrewards.rewardmodel.backends.local import TransformersRewardModel

    with pytest.raises(RewardModelError, match="not found"):
        TransformersRewardModel(tmp_path / "nope")
    (tmp_path / "pytorch_model.bin").write_bytes(b"\x80\x04")
    with pytest.raises(RewardModelError, match="safetensors"):
        TransformersRewardModel(tmp_path)

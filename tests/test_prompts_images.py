"""Message builders (exact headers, interleaved PNG data URLs, PARROT prompts) and image input validation."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from rationalrewards.rewardmodel import InvalidImageError, Task
from rationalrewards.rewardmodel.images import image_ref_from_path, image_ref_from_pil, load_pil, png_data_url
from rationalrewards.rewardmodel.prompts import (
    anchored_pairwise_messages,
    pairwise_messages,
    parse_repredict,
    pointwise_messages,
    projection_messages,
    repredict_messages,
)

URL = "data:image/png;base64,AAAA"


def _texts(messages: list[dict]) -> str:
    return "\n".join(p["text"] for p in messages[0]["content"] if p["type"] == "text")


def _kinds(messages: list[dict]) -> list[str]:
    return [p["type"] for p in messages[0]["content"]]


def test_pointwise_t2i_has_released_headers_and_three_numbered_aspects() -> None:
    text = _texts(pointwise_messages("four clocks", URL))
    for header in ["# User Request Analysis", "# Detailed Judgement", "## Justification:", "## Score:", "# Summary:",
                   "# User Request Refinement:", "## Refinement Comments:", "## Refined Request:"]:
        assert header in text
    assert "1. Text Faithfulness:" in text and "2. Physical and Visual Quality:" in text and "3. Text Rendering:" in text
    assert "Image Faithfulness" not in text
    assert "# User Request Refinement:" not in _texts(pointwise_messages("x", URL, with_refinement=False))


def test_pointwise_edit_interleaves_source_then_edited_image() -> None:
    messages = pointwise_messages("make the car red", "data:image/png;base64,EDIT", "edit", source_image_url="data:image/png;base64,SRC")
    urls = [p["image_url"]["url"] for p in messages[0]["content"] if p["type"] == "image_url"]
    assert urls == ["data:image/png;base64,SRC", "data:image/png;base64,EDIT"]
    assert "2. Image Faithfulness:" in _texts(messages) and "4. Text Rendering:" in _texts(messages)
    with pytest.raises(ValueError, match="source image"):
        pointwise_messages("x", URL, "edit")


def test_pairwise_and_anchored_prompts() -> None:
    plain = pairwise_messages("a cat", URL, URL)
    assert _kinds(plain).count("image_url") == 2
    assert "## Score A:" in _texts(plain) and "## Winner:" in _texts(plain)
    assert "Human preference" not in _texts(plain)
    anchored = anchored_pairwise_messages("a cat", URL, URL, "B", Task.t2i)
    assert "Human preference is: Image B" in _texts(anchored)


def test_repredict_hides_winner_lines_and_reads_answers() -> None:
    rationale = "1. Text Faithfulness:\n## Justification: A has the cat.\n## Score A: 4\n## Score B: 2\n## Winner: Image A\n"
    messages = repredict_messages("a cat", rationale)
    assert "Winner" not in _texts(messages) and "A has the cat" in _texts(messages)
    assert "image_url" not in _kinds(messages)
    assert _kinds(repredict_messages("a cat", rationale, image_a_url=URL, image_b_url=URL)).count("image_url") == 2
    assert parse_repredict("Answer: B") == "B"
    assert parse_repredict("After reading it... **Answer: Image A**") == "A"
    assert parse_repredict("answer: tie") == "tie"
    assert parse_repredict("I am not sure") is None


def test_projection_puts_hidden_reference_before_the_format() -> None:
    messages = projection_messages("a cat", URL, "A shows the cat clearly.")
    content = messages[0]["content"]
    assert "A shows the cat clearly." in content[-2]["text"] and "never mention" in content[-2]["text"]
    assert content[-1]["text"].startswith("Answer in exactly this format")


def test_png_data_url_round_trip(png_file: Path) -> None:
    ref = image_ref_from_path(png_file)
    assert (ref.width, ref.height) == (96, 64)
    url = png_data_url(ref)
    assert base64.b64decode(url.split(",", 1)[1]) == png_file.read_bytes()
    assert load_pil(url).size == (96, 64)
    jpeg = png_file.with_suffix(".jpg")
    load_pil(png_file).save(jpeg)
    assert png_data_url(jpeg).startswith("data:image/png;base64,iVBOR")  # re-encoded as PNG
    inline = image_ref_from_pil(load_pil(png_file))
    assert inline.uri.startswith("data:image/png") and load_pil(inline).size == (96, 64)


def test_bad_images_raise_typed_errors(tmp_path: Path, png_file: Path) -> None:
    text_file = tmp_path / "notes.txt"
    text_file.write_text("not an image")
    with pytest.raises(InvalidImageError, match="not a readable image"):
        image_ref_from_path(text_file)
    with pytest.raises(InvalidImageError, match="not found"):
        image_ref_from_path(tmp_path / "missing.png")
    with pytest.raises(InvalidImageError, match="only local files"):
        png_data_url("https://example.com/cat.png")
    ref = image_ref_from_path(png_file)
    png_file.write_bytes(png_file.read_bytes() + b"tampered")
    with pytest.raises(InvalidImageError, match="sha256"):
        load_pil(ref)


def test_suite_cannot_reach_beyond_loopback() -> None:
    import socket

    with socket.socket() as s, pytest.raises(ConnectionRefusedError, match="loopback"):
        s.connect(("192.0.2.1", 80))  # TEST-NET-1: refused by the guard before any packet is sent


def test_schema_modules_import_no_heavy_libraries() -> None:
    import subprocess
    import sys

    code = "import sys, rewardmodel, rewardmodel.prompts, rewardmodel.format; print(sorted(m for m in ('torch', 'transformers', 'PIL', 'aiohttp') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"

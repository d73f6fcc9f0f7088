"""Message builders (exact headers, interleaved PNG data URLs, PARROT prompts) and image input validation."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from rationalrewards.rewardmodel import InvalidImageError
from rationalrewards.rewardmodel.errors import PromptFormatError
from rationalrewards.rewardmodel.images import image_ref_from_path, image_ref_from_pil, load_pil, png_data_url
from rationalrewards.rewardmodel.prompts import build_messages, parse_repredict, read_messages
from rationalrewards.rewardmodel.schemas import (
    AnchoredRequest,
    CompareRequest,
    CritiqueRequest,
    ImageRef,
    ProjectRequest,
    RepredictRequest,
)


def _ref(name: str) -> ImageRef:
    return ImageRef(uri=f"data:image/png;base64,{name}", sha256=name * 8, width=8, height=8)


A, B, SRC = _ref("AAAA"), _ref("BBBB"), _ref("SSSS")


def _texts(messages: list[dict]) -> str:
    return "\n".join(p["text"] for p in messages[0]["content"] if p["type"] == "text")


def _kinds(messages: list[dict]) -> list[str]:
    return [p["type"] for p in messages[0]["content"]]


def _urls(messages: list[dict]) -> list[str]:
    return [p["image_url"]["url"] for p in messages[0]["content"] if p["type"] == "image_url"]


def _build(request: object) -> list[dict]:
    return build_messages(request, image_url=lambda ref: ref.uri)  # type: ignore[arg-type]


def test_pointwise_t2i_has_released_headers_and_three_numbered_aspects() -> None:
    text = _texts(_build(CritiqueRequest(prompt="four clocks", image=A)))
    for header in [
        "# User Request Analysis",
        "# Detailed Judgement",
        "## Justification:",
        "## Score:",
        "# Summary:",
        "# User Request Refinement:",
        "## Refinement Comments:",
        "## Refined Request:",
    ]:
        assert header in text
    assert (
        "1. Text Faithfulness:" in text and "2. Physical and Visual Quality:" in text and "3. Text Rendering:" in text
    )
    assert "Image Faithfulness" not in text
    assert "# User Request Refinement:" not in _texts(
        _build(CritiqueRequest(prompt="x", image=A, with_refinement=False))
    )


def test_pointwise_edit_interleaves_source_then_edited_image() -> None:
    messages = _build(CritiqueRequest(task="edit", prompt="make the car red", image=A, source_image=SRC))
    assert _urls(messages) == [SRC.uri, A.uri]
    assert "2. Image Faithfulness:" in _texts(messages) and "4. Text Rendering:" in _texts(messages)
    with pytest.raises(ValueError, match="source_image"):
        CritiqueRequest(task="edit", prompt="x", image=A)


def test_pairwise_and_anchored_prompts() -> None:
    plain = _build(CompareRequest(prompt="a cat", image_a=A, image_b=B))
    assert _urls(plain) == [A.uri, B.uri]
    assert "## Score A:" in _texts(plain) and "## Winner:" in _texts(plain)
    assert "Human preference" not in _texts(plain)
    anchored = _build(AnchoredRequest(prompt="a cat", image_a=A, image_b=B, label="B"))
    assert "Human preference is: Image B" in _texts(anchored)


def test_repredict_hides_winner_lines_and_reads_answers() -> None:
    rationale = (
        "1. Text Faithfulness:\n## Justification: A has the cat.\n## Score A: 4\n## Score B: 2\n## Winner: Image A\n"
    )
    messages = _build(RepredictRequest(prompt="a cat", rationale=rationale))
    assert "Winner" not in _texts(messages) and "A has the cat" in _texts(messages)
    assert "image_url" not in _kinds(messages)
    assert _urls(_build(RepredictRequest(prompt="a cat", rationale=rationale, image_a=A, image_b=B))) == [A.uri, B.uri]
    with pytest.raises(ValueError, match="both image_a and image_b"):
        RepredictRequest(prompt="a cat", rationale=rationale, image_a=A)
    assert parse_repredict("Answer: B") == "B"
    assert parse_repredict("After reading it... **Answer: Image A**") == "A"
    assert parse_repredict("answer: tie") == "tie"
    assert parse_repredict("I am not sure") is None


def test_projection_puts_hidden_reference_before_the_format() -> None:
    content = _build(ProjectRequest(prompt="a cat", image=A, reference_rationale="A shows the cat clearly."))[0][
        "content"
    ]
    assert "A shows the cat clearly." in content[-2]["text"] and "never mention" in content[-2]["text"]
    assert content[-1]["text"].startswith("Answer in exactly this format")


def _real(png_file: Path, color: str) -> ImageRef:
    from PIL import Image

    path = png_file.with_name(f"{color}.png")
    Image.new("RGB", (12, 10), color).save(path)
    return image_ref_from_path(path)


def test_read_messages_is_the_exact_inverse_of_build_messages(png_file: Path) -> None:
    a, b, source = _real(png_file, "red"), _real(png_file, "blue"), _real(png_file, "green")
    rationale = "1. Text Faithfulness:\n## Justification: A has it.\n## Score A: 4\n## Score B: 2"
    requests = [
        CritiqueRequest(prompt="four clocks", image=a),
        CritiqueRequest(prompt="x", image=a, with_refinement=False),
        CritiqueRequest(task="edit", prompt="make it blue", image=a, source_image=source),
        CompareRequest(prompt="a cat", image_a=a, image_b=b),
        CompareRequest(task="edit", prompt="add a dog", image_a=a, image_b=b, source_image=source),
        *[AnchoredRequest(prompt="a cat", image_a=a, image_b=b, label=label) for label in ("A", "B", "tie")],
        AnchoredRequest(task="edit", prompt="add a dog", image_a=a, image_b=b, source_image=source, label="B"),
        RepredictRequest(prompt="a cat", rationale=rationale),
        RepredictRequest(prompt="a cat", rationale=rationale, image_a=a, image_b=b),
        RepredictRequest(task="edit", prompt="add a dog", rationale=rationale),
        ProjectRequest(prompt="a cat", image=b, reference_rationale=rationale),
        ProjectRequest(task="edit", prompt="add a dog", image=b, source_image=source, reference_rationale=rationale),
    ]
    for request in requests:
        back = read_messages(build_messages(request))
        assert type(back) is type(request)
        for name in type(request).model_fields:
            value, read = getattr(request, name), getattr(back, name)
            if isinstance(value, ImageRef):
                assert read is not None and (read.sha256, read.width, read.height) == (
                    value.sha256,
                    value.width,
                    value.height,
                ), name
            else:
                assert read == value, (type(request).__name__, name)
    with pytest.raises(PromptFormatError):
        read_messages([{"role": "user", "content": "Write a poem about clocks."}])


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

    code = (
        "import sys, rationalrewards, rationalrewards.rewardmodel.prompts, rationalrewards.rewardmodel.format, "
        "rationalrewards.graphs.state; print(sorted(m for m in ('torch', 'transformers', 'PIL', 'aiohttp', 'langgraph') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"

"""Chat messages for the critic and for PARROT's teacher (PAPER.md, "Output format" and "PARROT").

The rubric is in our own words; the output headers are exactly those the released checkpoints were trained on. Images
travel as PNG base64 data URLs in `image_url` content parts, interleaved with the text that names them. Builders take
data URLs (see `images.png_data_url`) so this module stays pure and cheap.
"""

from __future__ import annotations

import re
from typing import Any

from rationalrewards.rewardmodel.format import WINNER_TEXT
from rationalrewards.rewardmodel.schemas import Aspect, Task, Winner

Message = dict[str, Any]

_RUBRIC = {
    Aspect.text_faithfulness: (
        "Does the image do what the request asks? Check every object, count, colour, attribute, spatial relation and "
        "action; anything missing, wrong or added without being asked lowers the score."
    ),
    Aspect.image_faithfulness: (
        "Does the edited image keep what the instruction did not ask to change: background, identity, layout, style "
        "and lighting of the source image?"
    ),
    Aspect.physical_quality: (
        "Is the image physically plausible (lighting, shadows, geometry, anatomy, perspective) and free of artifacts "
        "such as seams, blur, noise, smudges or cut-off objects?"
    ),
    Aspect.text_rendering: (
        "Is the text the request asks for spelled correctly and legible? Write N/A as the score when the request asks "
        "for no text."
    ),
}
_LEVELS = (
    "Score each dimension with a number from 1 to 4: 4 = fully matches, no flaws; 3 = minor issues; 2 = clear issues; "
    "1 = major failure. Anchor on the level that fits, then adjust by the evidence (decimals such as 3.5 are fine)."
)


def _text(text: str) -> dict[str, str]:
    return {"type": "text", "text": text}


def _image(url: str) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": url}}


def _rubric(task: Task) -> str:
    lines = [f"{n}. {a.title}: {_RUBRIC[a]}" for n, a in enumerate(task.aspects, start=1)]
    return "Evaluation dimensions:\n" + "\n".join(lines) + "\n\n" + _LEVELS


def _pointwise_format(task: Task, with_refinement: bool) -> str:
    lines = ["# User Request Analysis", "<what the request asks for, element by element>", "# Detailed Judgement"]
    for n, aspect in enumerate(task.aspects, start=1):
        lines += [f"{n}. {aspect.title}:", "## Justification: <evidence from the image>", "## Score: <1-4 or N/A>"]
    lines.append("# Summary: <one or two sentences>")
    if with_refinement:
        lines += [
            "# User Request Refinement:",
            "## Refinement Comments: <what the image got wrong and how a clearer request would prevent it>",
            "## Refined Request: <a complete, stand-alone rewritten request that fixes those problems>",
        ]
    return "Answer in exactly this format:\n" + "\n".join(lines)


def _pairwise_format(task: Task) -> str:
    lines = ["# User Request Analysis", "<what the request asks for>", "# Detailed Judgement"]
    for n, aspect in enumerate(task.aspects, start=1):
        lines += [
            f"{n}. {aspect.title}:",
            "## Justification: <compare the two images on this dimension>",
            "## Score A: <1-4 or N/A>",
            "## Score B: <1-4 or N/A>",
            "## Winner: <Image A | Image B | It's a tie>",
        ]
    lines.append("# Summary: <which image is better overall and why>")
    return "Answer in exactly this format:\n" + "\n".join(lines)


def _request_parts(task: Task, prompt: str, source_image_url: str | None) -> list[dict[str, Any]]:
    if task is Task.edit:
        if source_image_url is None:
            raise ValueError("an edit prompt needs the source image")
        return [_text(f"Editing instruction: {prompt}\nSource image (before the edit):"), _image(source_image_url)]
    return [_text(f"User request: {prompt}")]


def pointwise_messages(
    prompt: str,
    image_url: str,
    task: Task | str = Task.t2i,
    *,
    source_image_url: str | None = None,
    with_refinement: bool = True,
) -> list[Message]:
    """Critique one generated (or edited) image."""
    task = Task(task)
    what = "an AI-generated image" if task is Task.t2i else "an AI-edited image"
    intro = (
        f"You are an expert judge of {what}. Analyse the request, then judge the image on each dimension with a "
        "justification before its score."
    )
    content = [_text(intro + "\n\n" + _rubric(task))]
    content += _request_parts(task, prompt, source_image_url)
    content += [_text("Image to evaluate:" if task is Task.t2i else "Edited image (after the edit):"), _image(image_url)]
    content.append(_text(_pointwise_format(task, with_refinement)))
    return [{"role": "user", "content": content}]


def pairwise_messages(
    prompt: str,
    image_a_url: str,
    image_b_url: str,
    task: Task | str = Task.t2i,
    *,
    source_image_url: str | None = None,
    label_hint: Winner | None = None,
) -> list[Message]:
    """Compare two images for the same request. `label_hint` turns this into PARROT's anchored generation prompt."""
    task = Task(task)
    intro = (
        "You are an expert judge comparing two AI-generated images made for the same request. For each dimension, "
        "compare them with a justification, then score each image."
    )
    content = [_text(intro + "\n\n" + _rubric(task))]
    content += _request_parts(task, prompt, source_image_url)
    content += [_text("Image A:"), _image(image_a_url), _text("Image B:"), _image(image_b_url)]
    if label_hint is not None:
        content.append(_text(_anchor_text(label_hint)))
    content.append(_text(_pairwise_format(task)))
    return [{"role": "user", "content": content}]


def _anchor_text(label: Winner) -> str:
    preference = WINNER_TEXT[label] if label != "tie" else "a tie (both images are equally good)"
    return (
        f"Human preference is: {preference}. Explain this preference: find the concrete visual evidence that supports "
        "it, dimension by dimension, and score consistently with it. Only describe what is really visible; never "
        "mention that you were told the preference."
    )


def anchored_pairwise_messages(
    prompt: str,
    image_a_url: str,
    image_b_url: str,
    label: Winner,
    task: Task | str = Task.t2i,
    *,
    source_image_url: str | None = None,
) -> list[Message]:
    """PARROT phase 1: the teacher writes a pairwise rationale while told the human preference."""
    return pairwise_messages(
        prompt, image_a_url, image_b_url, task, source_image_url=source_image_url, label_hint=label
    )


def repredict_messages(
    prompt: str,
    rationale: str,
    *,
    image_a_url: str | None = None,
    image_b_url: str | None = None,
) -> list[Message]:
    """PARROT phase 2: read a rationale without the label and predict which image it supports (images optional)."""
    content = [
        _text(
            "Below is a comparison of two images (Image A and Image B) generated for the same request. Read it and "
            "decide which image it shows to be better, judging only by the evidence it gives."
        ),
        _text(f"Request: {prompt}"),
    ]
    if image_a_url is not None and image_b_url is not None:
        content += [_text("Image A:"), _image(image_a_url), _text("Image B:"), _image(image_b_url)]
    content += [
        _text("Comparison:\n" + _strip_winner_lines(rationale)),
        _text("Answer with exactly one line: `Answer: A`, `Answer: B` or `Answer: tie`."),
    ]
    return [{"role": "user", "content": content}]


def _strip_winner_lines(rationale: str) -> str:
    # The verdict lines would hand the answer over; the filter must test whether the *evidence* predicts the label.
    return re.sub(r"(?im)^\s*(?:#+\s*)?(?:\*\*)?winner\b.*$\n?", "", rationale)


_ANSWER = re.compile(r"answer\s*[:=]?\s*\**\s*(image\s*)?(?P<w>a|b|tie)\b", re.I)


def parse_repredict(text: str) -> Winner | None:
    """The re-predicted winner, or None when the answer is not readable (the filter then rejects the sample)."""
    match = _ANSWER.search(text or "")
    if match is None:
        return None
    word = match.group("w").lower()
    return "tie" if word == "tie" else word.upper()  # type: ignore[return-value]


def projection_messages(
    prompt: str,
    image_url: str,
    reference_rationale: str,
    task: Task | str = Task.t2i,
    *,
    source_image_url: str | None = None,
) -> list[Message]:
    """PARROT's pointwise projection: an absolute critique of one image, a validated rationale as hidden reference."""
    messages = pointwise_messages(prompt, image_url, task, source_image_url=source_image_url, with_refinement=True)
    hidden = _text(
        "Reference notes from an earlier comparison of this image with another one (for your eyes only: use them to "
        "check details, but judge this image on its own and never mention the notes, another image or a comparison):\n"
        + reference_rationale
    )
    content = messages[0]["content"]
    messages[0]["content"] = content[:-1] + [hidden, content[-1]]
    return messages

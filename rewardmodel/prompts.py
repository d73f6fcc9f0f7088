"""Chat messages for the critic and for PARROT's teacher, built from typed requests (docs/method.md, "Output format").

`build_messages(request, profile=...)` turns any request (critique, compare, and the teacher's anchored / re-predict /
project requests) into OpenAI-style messages; images travel as PNG base64 data URLs in `image_url` parts interleaved
with the text that names them (or any URL `image_url=` gives, e.g. paths in SFT exports). Two prompt profiles:

- `release`: critic requests exactly as the released checkpoints were trained on them (`rewardmodel._release_format`):
  the default whenever the critic is a RationalRewards checkpoint (`resolve_profile`).
- `house`: our own wording (a rubric before the images, `User request:` lines), for other models and teachers. The
  output headers are the released ones in both. Teacher requests always use it: no PARROT prompt was released.
- `compact`: the house request without the rubric and with a one-line answer format (about 110 tokens instead of
  430): for small students trained on a CPU, where every prompt token costs training time. Critic requests only.

`read_messages(messages)` is its exact inverse, for servers that only see the wire (the mock server, the sketch
oracle behind HTTP): it reads the request back from the same text constants the builders write, and a round-trip test
holds every request kind to `read_messages(build_messages(r)) == r`. Nothing else in the project reads prompt text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from rationalrewards.plumbing.choices import choice
from rationalrewards.rewardmodel import _release_format as release_format
from rationalrewards.rewardmodel.errors import PromptFormatError
from rationalrewards.rewardmodel.format import WINNER_TEXT
from rationalrewards.rewardmodel.schemas import (
    AnchoredRequest,
    Aspect,
    CompareRequest,
    CritiquePurpose,
    CritiqueRequest,
    ImageRef,
    ProjectRequest,
    RepredictRequest,
    Task,
    Winner,
)

Message = dict[str, Any]
PromptProfile = Literal["house", "release", "compact"]
PROFILES: tuple[PromptProfile, ...] = ("house", "release", "compact")
PromptChoice = Literal["auto", "house", "release", "compact"]  # what a user picks: a profile, or auto
AnyRequest = CritiqueRequest | CompareRequest | AnchoredRequest | RepredictRequest | ProjectRequest
ImageUrl = Callable[[ImageRef], str]

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

# Text the builders write and the reader recognises (one constant each, used on both sides).
_T2I_REQUEST = "User request: "
_EDIT_REQUEST = "Editing instruction: "
_SOURCE_LABEL = "\nSource image (before the edit):"
_POINTWISE_IMAGE = {Task.t2i: "Image to evaluate:", Task.edit: "Edited image (after the edit):"}
_FORMAT_INTRO = "Answer in exactly this format:\n"
_ANCHOR = "Human preference is: "
_ANCHOR_TIE = "a tie (both images are equally good)"
_HIDDEN = (
    "Reference notes from an earlier comparison of this image with another one (for your eyes only: use them to "
    "check details, but judge this image on its own and never mention the notes, another image or a comparison):\n"
)
_REPREDICT_INTRO = (
    "Below is a comparison of two images (Image A and Image B) generated for the same request. Read it and decide "
    "which image it shows to be better, judging only by the evidence it gives."
)
_REPREDICT_REQUEST = "Request: "
_REPREDICT_TASK = {
    Task.t2i: "Both images were made by a text-to-image model from the request below.",
    Task.edit: "Both images are edits of the same source image, made from the instruction below.",
}
_COMPARISON = "Comparison:\n"
COMPACT_INTRO = {
    "pointwise": "Judge the image against the request on each dimension ({}): a short justification, then a score "
    "from 1 to 4 (N/A for text rendering when no text is asked).",
    "pairwise": "Compare the two images against the request on each dimension ({}): a short justification, then a "
    "score from 1 to 4 for each image (N/A for text rendering when no text is asked).",
}
_ANSWER_FORMAT = "Answer with exactly one line: `Answer: A`, `Answer: B` or `Answer: tie`."


def _text(text: str) -> dict[str, str]:
    return {"type": "text", "text": text}


def _line(text: str) -> dict[str, str]:
    """A house text part, ending its own line: Qwen-VL chat templates concatenate content parts with nothing between
    them, so a part that did not end with a newline would run into the next one ("User request: ...Image A:")."""
    return _text(text + "\n")


def _image(url: str) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": url}}


def _rubric(task: Task) -> str:
    lines = [f"{n}. {a.header}: {_RUBRIC[a]}" for n, a in enumerate(task.aspects, start=1)]
    return "Evaluation dimensions:\n" + "\n".join(lines) + "\n\n" + _LEVELS


def _pointwise_format(task: Task, with_refinement: bool) -> str:
    lines = ["# User Request Analysis", "<what the request asks for, element by element>", "# Detailed Judgement"]
    for n, aspect in enumerate(task.aspects, start=1):
        lines += [f"{n}. {aspect.header}:", "## Justification: <evidence from the image>", "## Score: <1-4 or N/A>"]
    lines.append("# Summary: <one or two sentences>")
    if with_refinement:
        lines += [
            "# User Request Refinement:",
            "## Refinement Comments: <what the image got wrong and how a clearer request would prevent it>",
            "## Refined Request: <a complete, stand-alone rewritten request that fixes those problems>",
        ]
    return _FORMAT_INTRO + "\n".join(lines)


def _pairwise_format(task: Task) -> str:
    lines = ["# User Request Analysis", "<what the request asks for>", "# Detailed Judgement"]
    for n, aspect in enumerate(task.aspects, start=1):
        lines += [
            f"{n}. {aspect.header}:",
            "## Justification: <compare the two images on this dimension>",
            "## Score A: <1-4 or N/A>",
            "## Score B: <1-4 or N/A>",
            "## Winner: <Image A | Image B | It's a tie>",
        ]
    lines.append("# Summary: <which image is better overall and why>")
    return _FORMAT_INTRO + "\n".join(lines)


def _compact(request: CritiqueRequest | CompareRequest, image_url: ImageUrl) -> list[Message]:
    """The `compact` profile: the same request lines and image labels as the house prompt (so `read_messages` reads
    it back), a one-line instruction and a one-line answer format."""
    task = request.task
    dimensions = ", ".join(a.header for a in task.aspects)
    content = _request_parts(task, request.prompt, _source_url(request, image_url))
    if isinstance(request, CritiqueRequest):
        intro = COMPACT_INTRO["pointwise"].format(dimensions)
        content += [_line(_POINTWISE_IMAGE[task]), _image(image_url(request.image))]
        answer = "per dimension `N. <dimension>:`, `## Justification:`, `## Score:`"
        if request.with_refinement:
            answer += "; then `# User Request Refinement:` and `## Refined Request:`"
    else:
        intro = COMPACT_INTRO["pairwise"].format(dimensions)
        content += [_line("Image A:"), _image(image_url(request.image_a))]
        content += [_line("Image B:"), _image(image_url(request.image_b))]
        answer = "per dimension `N. <dimension>:`, `## Justification:`, `## Score A:`, `## Score B:`"
    return [{"role": "user", "content": [_line(intro), *content, _line(_FORMAT_INTRO + answer)]}]


def _request_parts(task: Task, prompt: str, source_url: str | None) -> list[dict[str, Any]]:
    if task is Task.edit:
        if source_url is None:
            raise ValueError("an edit prompt needs the source image")
        return [_line(_EDIT_REQUEST + prompt + _SOURCE_LABEL), _image(source_url)]
    return [_line(_T2I_REQUEST + prompt)]


def _source_url(request: AnyRequest, image_url: ImageUrl) -> str | None:
    return image_url(request.source_image) if request.source_image is not None else None


def _pointwise(request: CritiqueRequest | ProjectRequest, image_url: ImageUrl) -> list[Message]:
    task = request.task
    what = "an AI-generated image" if task is Task.t2i else "an AI-edited image"
    intro = (
        f"You are an expert judge of {what}. Analyse the request, then judge the image on each dimension with a "
        "justification before its score."
    )
    content = [_line(intro + "\n\n" + _rubric(task))]
    content += _request_parts(task, request.prompt, _source_url(request, image_url))
    content += [_line(_POINTWISE_IMAGE[task]), _image(image_url(request.image))]
    if isinstance(request, ProjectRequest):
        content.append(_line(_HIDDEN + request.reference_rationale))
    with_refinement = request.with_refinement if isinstance(request, CritiqueRequest) else True
    content.append(_line(_pointwise_format(task, with_refinement)))
    return [{"role": "user", "content": content}]


def _pairwise(request: CompareRequest | AnchoredRequest, image_url: ImageUrl) -> list[Message]:
    task = request.task
    intro = (
        "You are an expert judge comparing two AI-generated images made for the same request. For each dimension, "
        "compare them with a justification, then score each image."
    )
    content = [_line(intro + "\n\n" + _rubric(task))]
    content += _request_parts(task, request.prompt, _source_url(request, image_url))
    content += [
        _line("Image A:"),
        _image(image_url(request.image_a)),
        _line("Image B:"),
        _image(image_url(request.image_b)),
    ]
    if isinstance(request, AnchoredRequest):
        content.append(_line(_anchor_text(request.label)))
    content.append(_line(_pairwise_format(task)))
    return [{"role": "user", "content": content}]


def _anchor_text(label: Winner) -> str:
    preference = WINNER_TEXT[label] if label != "tie" else _ANCHOR_TIE
    return (
        f"{_ANCHOR}{preference}. Explain this preference: find the concrete visual evidence that supports it, "
        "dimension by dimension, and score consistently with it. Only describe what is really visible; never mention "
        "that you were told the preference."
    )


def _repredict(request: RepredictRequest, image_url: ImageUrl) -> list[Message]:
    content = [
        _line(_REPREDICT_INTRO),
        _line(_REPREDICT_TASK[request.task]),
        _line(_REPREDICT_REQUEST + request.prompt),
    ]
    if request.image_a is not None and request.image_b is not None:
        content += [
            _line("Image A:"),
            _image(image_url(request.image_a)),
            _line("Image B:"),
            _image(image_url(request.image_b)),
        ]
    content += [_line(_COMPARISON + strip_winner_lines(request.rationale)), _line(_ANSWER_FORMAT)]
    return [{"role": "user", "content": content}]


def check_prompts_choice(name: str) -> PromptChoice:
    """`auto`, or one of the prompt profiles (a ValueError naming them otherwise)."""
    return "auto" if name == "auto" else choice(name, PromptProfile, "prompt profile")


PROFILE_MARKER = "rationalrewards.json"  # in a model directory: {"prompt_profile": "release"} (written by our exports)


def declared_profile(model_dir: str | Path) -> str | None:
    """The prompt profile a model directory says it was trained with (`rationalrewards.json`), if it says one."""
    marker = Path(model_dir) / PROFILE_MARKER
    if not marker.is_file():
        return None
    try:
        value = json.loads(marker.read_text(encoding="utf-8")).get("prompt_profile")
    except (ValueError, AttributeError) as e:
        raise ValueError(f"{marker} is not a JSON object with a prompt_profile: {e}") from e
    return None if value is None else choice(str(value), PromptProfile, "prompt profile")


def declared_greedy(model_dir: str | Path) -> bool:
    """Whether a model directory says it is read greedily (a student `rationalrewards distill` trained)."""
    marker = Path(model_dir) / PROFILE_MARKER
    try:
        return marker.is_file() and json.loads(marker.read_text(encoding="utf-8")).get("decoding") == "greedy"
    except (ValueError, AttributeError):
        return False


def resolve_profile(chosen: str, model_name: str | None = None, declared: str | None = None) -> PromptProfile:
    """`house` or `release` for a critic: as chosen, or with `auto` the release format for a RationalRewards
    checkpoint (its name says so, or its directory declares the profile it was trained with) and house otherwise."""
    if chosen != "auto":
        return choice(chosen, PromptProfile, "prompt profile")
    if declared:
        return choice(declared, PromptProfile, "prompt profile")
    return (
        "release"
        if model_name and "rationalrewards" in model_name.lower().replace("-", "").replace("_", "")
        else "house"
    )


def _interleave(text: str, urls: list[str]) -> list[dict[str, Any]]:
    """The release's message building: split the template at `<image>`, then text and images alternate (every text
    part is sent, an empty one too)."""
    parts = text.split(release_format.IMAGE)
    if len(parts) != len(urls) + 1:
        raise ValueError(f"the template places {len(parts) - 1} images, {len(urls)} given")
    content = [_text(parts[0])]
    for url, part in zip(urls, parts[1:], strict=True):
        content += [_image(url), _text(part)]
    return content


@dataclass(frozen=True)
class _ReleaseRequest:
    """One of the release's request templates: its turns, and what kind of request it renders."""

    system: str | None
    user: str
    task: Task
    pairwise: bool
    purpose: CritiquePurpose = "score"

    def user_parts(self) -> tuple[str, str]:
        """The user turn's text before and after the request, images left out (what `read_messages` matches)."""
        before, after = self.user.replace(release_format.IMAGE, "").split("{request}")
        return before, after


_RELEASE_REQUESTS = (
    _ReleaseRequest(release_format.T2I_SYSTEM, release_format.T2I_USER, Task.t2i, pairwise=False),
    _ReleaseRequest(
        release_format.EDIT_SYSTEM,
        release_format.EDIT_TASK + "\n\n" + release_format.EDIT_GUIDELINE,
        Task.edit,
        pairwise=False,
    ),
    _ReleaseRequest(None, release_format.TEST_TIME_EDIT, Task.edit, pairwise=False, purpose="refine"),
    _ReleaseRequest(None, release_format.PAIRWISE_T2I, Task.t2i, pairwise=True),
    _ReleaseRequest(None, release_format.PAIRWISE_EDIT, Task.edit, pairwise=True),
)


def _release_template(request: CritiqueRequest | CompareRequest) -> _ReleaseRequest:
    """The template the release sends for this request. Its test-time (score-first) request exists for editing only;
    a text-to-image critique inside GCR is the pointwise request."""
    pairwise = isinstance(request, CompareRequest)
    purpose = request.purpose if isinstance(request, CritiqueRequest) and request.task is Task.edit else "score"
    return next(t for t in _RELEASE_REQUESTS if (t.task, t.pairwise, t.purpose) == (request.task, pairwise, purpose))


def _release(request: CritiqueRequest | CompareRequest, image_url: ImageUrl) -> list[Message]:
    template = _release_template(request)
    source = [image_url(request.source_image)] if request.source_image is not None else []
    targets = [request.image_a, request.image_b] if isinstance(request, CompareRequest) else [request.image]
    user = template.user.replace("{request}", request.prompt)  # the release's str.format, with one field
    turns: list[Message] = [{"role": "system", "content": template.system}] if template.system else []
    return [*turns, {"role": "user", "content": _interleave(user, [*source, *map(image_url, targets)])}]


def build_messages(
    request: AnyRequest, *, profile: PromptProfile = "house", image_url: ImageUrl | None = None
) -> list[Message]:
    """The chat messages for any critic or teacher request. `image_url` maps a ref to the URL sent (default: a PNG
    data URL of the image's bytes). With the `release` profile a critique always asks for the refinement section, as
    the released models were trained to write it."""
    if image_url is None:
        from rationalrewards.rewardmodel.images import png_data_url

        image_url = png_data_url
    if profile == "release" and isinstance(request, (CritiqueRequest, CompareRequest)):
        return _release(request, image_url)
    if profile == "compact" and isinstance(request, (CritiqueRequest, CompareRequest)):
        return _compact(request, image_url)
    if isinstance(request, (CritiqueRequest, ProjectRequest)):
        return _pointwise(request, image_url)
    if isinstance(request, (CompareRequest, AnchoredRequest)):
        return _pairwise(request, image_url)
    if isinstance(request, RepredictRequest):
        return _repredict(request, image_url)
    raise TypeError(f"no prompt for a {type(request).__name__}")


def strip_winner_lines(rationale: str) -> str:
    """The rationale without its Winner lines: the filter must test whether the *evidence* predicts the label."""
    return re.sub(r"(?im)^[ \t]*(?:#+[ \t]*)?(?:\*\*)?winner\b.*$\n?", "", rationale)


# Runs on the answer normalised to single spaces without bold markers: every quantifier is bounded, so a search over a
# long answer stays linear.
_ANSWER = re.compile(r"answer ?[:=]? ?(?:image ?)?(?P<w>a|b|tie)\b")


def parse_repredict(text: str) -> Winner | None:
    """The re-predicted winner, or None when the answer is not readable (the filter then rejects the sample)."""
    match = _ANSWER.search(" ".join((text or "").replace("*", "").lower().split()))
    if match is None:
        return None
    word = match.group("w")
    return "tie" if word == "tie" else "A" if word == "a" else "B"


# ------------------------------------------------------------------ the inverse ------------------------------------

Kind = Literal["critique", "compare", "anchored", "repredict", "project"]


def _parts(messages: list[Message]) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    for message in messages:
        content = message.get("content")
        parts += [_text(content)] if isinstance(content, str) else list(content or [])
    return parts


def _after(texts: list[str], prefix: str) -> str | None:
    return next((t[len(prefix) :] for t in texts if t.startswith(prefix)), None)


def read_messages(messages: list[Message], image_ref: Callable[[str], ImageRef] | None = None) -> AnyRequest:
    """The request `build_messages` made these messages from. Raises `PromptFormatError` for any other messages."""
    if image_ref is None:
        from rationalrewards.rewardmodel.images import image_ref_from_data_url

        image_ref = image_ref_from_data_url
    parts = _parts(messages)
    raw = [p.get("text", "") for p in parts if p.get("type") == "text"]
    images = [image_ref(p["image_url"]["url"]) for p in parts if p.get("type") == "image_url"]
    release = _read_release(messages, images)
    if release is not None:
        return release
    texts = [text.removesuffix("\n") for text in raw]  # each house part ends its line (`_line`)
    if texts[:1] == [_REPREDICT_INTRO]:
        task = next((task for task, line in _REPREDICT_TASK.items() if line in texts), Task.t2i)
        prompt, rationale = _after(texts, _REPREDICT_REQUEST), _after(texts, _COMPARISON)
        if prompt is None or rationale is None:
            raise PromptFormatError("a re-prediction prompt without its request or comparison")
        pair = images[-2:] if len(images) >= 2 else [None, None]
        return RepredictRequest(task=task, prompt=prompt, rationale=rationale, image_a=pair[0], image_b=pair[1])
    edit = _after(texts, _EDIT_REQUEST)
    if edit is not None:
        task, prompt = Task.edit, edit.removesuffix(_SOURCE_LABEL)
        source, targets = (images[0], images[1:]) if images else (None, [])
    else:
        task, prompt, source, targets = Task.t2i, _after(texts, _T2I_REQUEST), None, images
    if prompt is None:
        raise PromptFormatError("these messages were not built by rationalrewards.rewardmodel.prompts")
    anchor = _after(texts, _ANCHOR)
    if len(targets) == 2:
        if anchor is None:
            return CompareRequest(task=task, prompt=prompt, image_a=targets[0], image_b=targets[1], source_image=source)
        said = anchor.split(". Explain", 1)[0]
        label: dict[str, Winner] = {text: winner for winner, text in WINNER_TEXT.items()}
        label[_ANCHOR_TIE] = "tie"
        if said not in label:
            raise PromptFormatError(f"unreadable anchored preference {said!r}")
        return AnchoredRequest(
            task=task, prompt=prompt, image_a=targets[0], image_b=targets[1], source_image=source, label=label[said]
        )
    if len(targets) != 1:
        raise PromptFormatError(f"expected one or two images to judge, found {len(targets)}")
    hidden = _after(texts, _HIDDEN)
    if hidden is not None:
        return ProjectRequest(
            task=task, prompt=prompt, image=targets[0], source_image=source, reference_rationale=hidden
        )
    refinement = any("# User Request Refinement" in t for t in texts if t.startswith(_FORMAT_INTRO))
    return CritiqueRequest(task=task, prompt=prompt, image=targets[0], source_image=source, with_refinement=refinement)


_KINDS: dict[type, Kind] = {
    CritiqueRequest: "critique",
    CompareRequest: "compare",
    AnchoredRequest: "anchored",
    RepredictRequest: "repredict",
    ProjectRequest: "project",
}


def _read_release(messages: list[Message], images: list[ImageRef]) -> CritiqueRequest | CompareRequest | None:
    """A request rendered from one of the release's templates, or None: the user turn must be the template's text
    with only the request filled in, and the system turn (if any) the template's."""
    system = [
        "".join(p.get("text", "") for p in _parts([m]) if p.get("type") == "text")
        for m in messages
        if m.get("role") == "system"
    ]
    user = "".join(
        p.get("text", "") for p in _parts([m for m in messages if m.get("role") == "user"]) if p.get("type") == "text"
    )
    for template in _RELEASE_REQUESTS:
        before, after = template.user_parts()
        if system != ([template.system] if template.system else []) or not user.startswith(before):
            continue
        if not user.endswith(after) or len(user) < len(before) + len(after):
            continue
        prompt = user[len(before) : len(user) - len(after)]
        source, targets = (images[0], images[1:]) if template.task is Task.edit and images else (None, images)
        if len(targets) != (2 if template.pairwise else 1):
            raise PromptFormatError(
                f"a release-format request with {len(images)} images, which its template does not place"
            )
        if template.pairwise:
            return CompareRequest(
                task=template.task, prompt=prompt, image_a=targets[0], image_b=targets[1], source_image=source
            )
        return CritiqueRequest(
            task=template.task, prompt=prompt, image=targets[0], source_image=source, purpose=template.purpose
        )
    return None


def request_kind(request: AnyRequest) -> Kind:
    return _KINDS[type(request)]

"""`SketchOracle`: a privileged critic and PARROT teacher that reads scene graphs and exact specs.

It writes critiques in the real RationalRewards text format (pointwise T2I and edit, pairwise, refinement section) and
returns them through the real parser, so every downstream path is exercised. Scores follow the rubric from the
concrete errors found, and every justification names them ("expected 4 clocks, found 3"). Facts are stated in fixed
sentence templates ("Image A shows 3 clocks.", "The cup in Image B is red.") so that a re-predictor, and the PARROT
hallucination audit, can check a rationale's claims against the scene graphs (`claims_in`, `false_claims`).

Teacher knobs (seeded): `perception_noise` (the oracle misperceives a count or a colour before judging) and
`hallucination` (an anchored rationale invents facts not in the scene graph, or argues for the wrong image), so a
share of anchored rationales contradicts its own label and PARROT's filter has real work to do.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rationalrewards.rewardmodel.backends.base import Completion
from rationalrewards.rewardmodel.errors import CritiqueParseError, InvalidImageError
from rationalrewards.rewardmodel.format import RenderStyle, render_critique, render_pairwise
from rationalrewards.rewardmodel.images import content_candidates
from rationalrewards.rewardmodel.parsing import parse_critique, parse_pairwise
from rationalrewards.rewardmodel.prompts import Message, read_messages
from rationalrewards.rewardmodel.schemas import (
    Abstention,
    AnchoredRequest,
    Aspect,
    AspectAssessment,
    CompareRequest,
    Critique,
    CritiqueRequest,
    ImageRef,
    PairwiseAspect,
    PairwiseJudgement,
    ProjectRequest,
    RepredictRequest,
    Task,
    TeacherRequest,
    Winner,
)
from rationalrewards.sketch._seeding import seeded_rng as _rng
from rationalrewards.sketch._vocab import COCO_CLASSES, COLORS
from rationalrewards.sketch.edits import parse_edit, score_edit
from rationalrewards.sketch.scene import (
    NoSceneError,
    SceneGraph,
    load_scene,
    relative_position,
    score_against_spec,
    sidecar_path,
)
from rationalrewards.sketch.spec import SceneSpec, SceneSpecError, parse_scene_spec, plural, render_prompt

ORACLE_NAME = "sketch-oracle"


def _n(cls: str, n: int) -> str:
    return f"{n} {cls if n == 1 else plural(cls)}"


# ------------------------------------------------------------------ perception ------------------------------------


def perceive(scene: SceneGraph, noise: float, rng: random.Random) -> SceneGraph:
    """What a noisy critic sees: with probability `noise`, one miscount or one colour confusion."""
    if noise <= 0 or not scene.objects or rng.random() >= noise:
        return scene
    objects = list(scene.objects)
    i = rng.randrange(len(objects))
    if rng.random() < 0.5:
        if rng.random() < 0.5 and len(objects) > 1:
            del objects[i]  # one instance overlooked
        else:
            objects.append(objects[i])  # one instance counted twice
    else:
        objects[i] = objects[i].model_copy(update={"color": rng.choice([c for c in COLORS if c != objects[i].color])})
    return scene.model_copy(update={"objects": tuple(objects)})


# ------------------------------------------------------------------ judging one image -----------------------------


@dataclass(frozen=True)
class Judgement:
    """The oracle's findings for one image: per-aspect score, facts stated, errors found."""

    scores: dict[Aspect, float | None]
    facts: dict[Aspect, list[str]]
    errors: dict[Aspect, list[str]]


def _facts_for(scene: SceneGraph, spec: SceneSpec, who: str) -> list[str]:
    """Template sentences about the requested objects as the scene shows them ("Image A shows 3 clocks.")."""
    counts = Counter(o.cls for o in scene.objects)
    facts = []
    for req in spec.include:
        n = counts[req.cls]
        facts.append(f"{who} shows {_n(req.cls, n)}." if n else f"{who} shows no {req.cls}.")
        if req.color and n:
            colors = sorted({o.color for o in scene.objects if o.cls == req.cls})
            owner = "the image" if who == "The image" else who
            facts.append(f"The {req.cls} in {owner} is {' and '.join(colors)}.")
        if req.position and n:
            _, index = req.position
            ref = spec.include[index].cls
            a = next((o for o in scene.objects if o.cls == req.cls), None)
            b = next((o for o in scene.objects if o.cls == ref), None)
            if a is not None and b is not None:
                actual = sorted(relative_position(a, b)) or ["level with"]
                owner = "the image" if who == "The image" else who
                facts.append(f"In {owner} the {req.cls} is {' and '.join(actual)} the {ref}.")
    return facts


def _text_faithfulness_score(errors: list[str]) -> float:
    if not errors:
        return 4.0
    severities = []
    for error in errors:
        if match := re.match(r"expected (\d+) .*, found (\d+)$", error):
            got = int(match.group(2))
            severities.append(1.5 if got == 0 else 2.5)  # a wrong count is a clear issue, however close
        elif error.startswith("expected fewer than"):
            severities.append(2.5)
        elif error.startswith("expected no"):
            severities.append(2.0)
        else:  # wrong colour, wrong relation, missing reference
            severities.append(2.0)
    return max(1.0, min(severities) - 0.5 * (len(severities) - 1))


def _quality(scene: SceneGraph) -> tuple[float, list[str]]:
    penalties = {"smudge": 0.75, "noise": 0.5, "blur": 0.5, "cut_off": 1.0}
    names = {
        "smudge": "a smudge",
        "noise": "pixel noise",
        "blur": "a blurred patch",
        "cut_off": "an object cut off at the border",
    }
    found = [a for a in scene.artifacts]
    score = 4.0 - sum(penalties[a.kind] * (0.5 + 0.5 * a.severity) for a in found)
    return max(1.0, round(score * 2) / 2), [names[a.kind] for a in found]


def _text_score(requested: Sequence[str], scene: SceneGraph) -> tuple[float | None, list[str]]:
    if not requested:
        return None, []
    rendered = [t.rendered for t in scene.texts]
    errors = []
    worst = 4.0
    for want in requested:
        if not rendered:
            errors.append(f"expected the text '{want}', found no text")
            worst = 1.0
            continue
        got = min(rendered, key=lambda r: _distance(r, want))
        d = _distance(got, want)
        if d:
            errors.append(f"expected the text '{want}', found '{got}'")
            worst = min(worst, 2.5 if d == 1 else 2.0 if d == 2 else 1.0)
    return worst, errors


def _distance(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def judge_t2i(scene: SceneGraph, spec: SceneSpec, who: str = "The image") -> Judgement:
    result = score_against_spec(scene, spec)
    faith_errors = [e for e in result.errors if not e.startswith("expected the text")]
    quality, artifacts = _quality(scene)
    text_score, text_errors = _text_score(spec.text, scene)
    scores = {
        Aspect.text_faithfulness: _text_faithfulness_score(faith_errors),
        Aspect.physical_quality: quality,
        Aspect.text_rendering: text_score,
    }
    facts = {
        Aspect.text_faithfulness: _facts_for(scene, spec, who),
        Aspect.physical_quality: [],
        Aspect.text_rendering: [],
    }
    if spec.text:
        shown = ", ".join(f"'{t.rendered}'" for t in scene.texts) or "nothing"
        facts[Aspect.text_rendering].append(
            f"{'The' if who == 'The image' else who + chr(39) + 's'} text reads {shown}."
        )
    errors = {
        Aspect.text_faithfulness: [_sentence(e) for e in faith_errors],
        Aspect.physical_quality: [f"There is {a}." for a in artifacts],
        Aspect.text_rendering: [_sentence(e) for e in text_errors],
    }
    return Judgement(scores=scores, facts=facts, errors=errors)


def judge_edit(source: SceneGraph, scene: SceneGraph, instruction: str) -> Judgement:
    result = score_edit(source, scene, instruction)
    edit = parse_edit(instruction)
    quality, artifacts = _quality(scene)
    made_errors = [e for e in result.errors if not e.startswith("unrequested")]
    kept_errors = [e for e in result.errors if e.startswith("unrequested")]
    before, after = Counter(o.cls for o in source.objects), Counter(o.cls for o in scene.objects)
    faith = 4.0 if result.made else (1.5 if before == after and _same(source, scene) else 2.0)
    keep = (
        4.0 if result.preserved else max(1.0, 3.0 - 1.0 * (len(kept_errors[0].split(",")) - 1)) if kept_errors else 2.0
    )
    text_score, text_errors = _text_score([edit.text], scene) if edit.kind == "text" and edit.text else (None, [])
    changed = sorted(set(after) ^ set(before))
    return Judgement(
        scores={
            Aspect.text_faithfulness: faith,
            Aspect.image_faithfulness: keep,
            Aspect.physical_quality: quality,
            Aspect.text_rendering: text_score,
        },
        facts={
            Aspect.text_faithfulness: [f"The edited image shows {_n(c, after[c])}." for c in sorted(after)]
            or ["The edited image shows no objects."],
            Aspect.image_faithfulness: [f"Objects added or removed: {', '.join(changed) or 'none'}."],
            Aspect.physical_quality: [],
            Aspect.text_rendering: [],
        },
        errors={
            Aspect.text_faithfulness: [_sentence(e) for e in made_errors],
            Aspect.image_faithfulness: [_sentence(e) for e in kept_errors],
            Aspect.physical_quality: [f"There is {a}." for a in artifacts],
            Aspect.text_rendering: [_sentence(e) for e in text_errors],
        },
    )


def _sentence(error: str) -> str:
    return error[:1].upper() + error[1:] + ("" if error.endswith(".") else ".")


def _same(a: SceneGraph, b: SceneGraph) -> bool:
    return sorted((o.cls, o.color) for o in a.objects) == sorted((o.cls, o.color) for o in b.objects)


_PRAISE = {
    Aspect.text_faithfulness: "Everything requested is present and correct.",
    Aspect.image_faithfulness: "Everything that should stay the same is unchanged.",
    Aspect.physical_quality: "Clean rendering with no visible artifacts.",
    Aspect.text_rendering: "The requested text is spelled correctly and legible.",
}


def _justification(judgement: Judgement, aspect: Aspect) -> str:
    if judgement.scores.get(aspect) is None:
        return "No text was requested."
    parts = judgement.errors.get(aspect, []) + judgement.facts.get(aspect, [])
    return (
        " ".join(parts)
        if judgement.errors.get(aspect)
        else " ".join([_PRAISE[aspect]] + judgement.facts.get(aspect, []))
    )


def refined_t2i_request(spec: SceneSpec, judgement: Judgement) -> str:
    """A stand-alone prompt that states every requirement explicitly (what the generator reads best)."""
    refined = render_prompt(spec, explicit=True)
    if judgement.errors.get(Aspect.physical_quality):
        refined += ", clean and sharp, every object fully inside the frame"
    return refined


# ------------------------------------------------------------------ claims (for re-prediction and audits) ----------

_CLAIM_COUNT = re.compile(
    r"(?P<who>Image [AB]|The image|The edited image) shows (?P<n>\d+|no) (?P<cls>[a-z][a-z ]*?)\."
)
_CLAIM_COLOR = re.compile(
    r"The (?P<cls>[a-z][a-z ]*?) in (?P<who>Image [AB]|the image) is (?P<colors>[a-z]+(?: and [a-z]+)*)\."
)


def claims_in(text: str) -> list[tuple[str, str, str, str]]:
    """(who, kind, class, value) for every checkable fact a rationale states."""
    claims = []
    for m in _CLAIM_COUNT.finditer(text):
        n = "0" if m.group("n") == "no" else m.group("n")
        cls = m.group("cls")
        claims.append((m.group("who"), "count", _singular_class(cls), n))
    for m in _CLAIM_COLOR.finditer(text):
        claims.append((m.group("who").capitalize(), "color", m.group("cls"), m.group("colors")))
    return claims


def _singular_class(name: str) -> str:
    from rationalrewards.sketch.spec import _resolve_class

    try:
        return _resolve_class(name.split())[0]
    except SceneSpecError:
        return name


def false_claims(text: str, scenes: dict[str, SceneGraph]) -> list[str]:
    """Claims in `text` that the scene graphs contradict (`scenes` maps 'Image A'/'Image B'/'The image' to scenes)."""
    wrong = []
    for who, kind, cls, value in claims_in(text):
        scene = scenes.get(who)
        if scene is None:
            continue
        if kind == "count" and sum(o.cls == cls for o in scene.objects) != int(value):
            wrong.append(f"{who} shows {value} {cls}")
        if kind == "color":
            actual = {o.color for o in scene.objects if o.cls == cls}
            if actual and not set(value.split(" and ")) <= actual:
                wrong.append(f"the {cls} in {who} is {value}")
    return wrong


# ------------------------------------------------------------------ the backend -----------------------------------


class SketchOracle:
    """A `RewardModel` backend for the sketch world (also PARROT's teacher through `complete`)."""

    def __init__(
        self,
        *,
        perception_noise: float = 0.0,
        hallucination: float = 0.0,
        seed: int = 0,
        image_dirs: Sequence[str | Path] = (),
        style: RenderStyle = RenderStyle(),
        name: str | None = None,
    ) -> None:
        for knob, value in (("perception_noise", perception_noise), ("hallucination", hallucination)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{knob} must be a probability in [0, 1], got {value}")
        self.perception_noise = perception_noise
        self.hallucination = hallucination
        self.seed = seed
        self.image_dirs = [Path(d) for d in image_dirs]
        self.style = style
        knobs = [f"{k}={v}" for k, v in (("perception_noise", perception_noise), ("hallucination", hallucination)) if v]
        self.name = name or ORACLE_NAME + (f"({', '.join(knobs)}, seed={seed})" if knobs else "")
        self.calls = 0
        self._samples: Counter[str] = Counter()  # repeated identical teacher prompts get fresh samples

    # -- scenes --
    def scene_of(self, image: ImageRef | str) -> SceneGraph:
        """The scene behind an image ref, a path, or a PNG data URL. An image stored away from its sidecar (inline in
        a data file, or copied under another name) is looked up by sha256 in `image_dirs`."""
        uri = image.uri if isinstance(image, ImageRef) else image
        if not uri.startswith("data:"):
            try:
                return load_scene(image)
            except NoSceneError:
                if not self.image_dirs:
                    raise
        import base64

        if isinstance(image, ImageRef):
            digest = image.sha256
        elif uri.startswith("data:"):
            digest = hashlib.sha256(base64.b64decode(uri.split(",", 1)[1])).hexdigest()
        else:
            digest = hashlib.sha256(Path(uri.removeprefix("file://")).read_bytes()).hexdigest()
        for directory in self.image_dirs:
            for candidate in content_candidates(directory, digest):  # older run directories' layouts too
                if candidate.exists() and sidecar_path(candidate).exists():
                    return load_scene(candidate)
        raise NoSceneError(
            "no scene graph for this image: the sketch world judges only images its generator made, and none of the "
            f"folders searched holds this one ({len(self.image_dirs)} searched; from Python, pass image_dirs=)"
        )

    def scene_for(self, image: ImageRef | str, prompt: str) -> SceneGraph:
        """The scene judged for `image` under `prompt`: the generator's sidecar (the pixel critic reads pixels)."""
        return self.scene_of(image)

    def _source_scene(self, request: CritiqueRequest | CompareRequest) -> SceneGraph:
        if request.source_image is None:  # the request's own validator makes an edit carry one
            raise InvalidImageError("an edit critique needs the source image")
        return self.scene_of(request.source_image)

    def _seen(self, scene: SceneGraph, *salt: object) -> SceneGraph:
        return perceive(scene, self.perception_noise, _rng(self.seed, "perceive", scene.image_sha256, *salt))

    # -- pointwise --
    def judge(self, request: CritiqueRequest) -> Judgement:
        scene = self._seen(self.scene_for(request.image, request.prompt))
        if request.task is Task.edit:
            return judge_edit(self._source_scene(request), scene, request.prompt)
        return judge_t2i(scene, parse_scene_spec(request.prompt))

    def critique_one(self, request: CritiqueRequest) -> Critique | Abstention:
        """A critique, or an abstention when the request or the image is not one this world can judge (no scene
        graph beside it: an image from elsewhere). An image that cannot be read at all is still an error."""
        try:
            judgement = self.judge(request)
        except SceneSpecError as e:
            return Abstention(reason="refused", detail=f"the sketch oracle cannot read the request: {e}")
        except NoSceneError as e:
            return Abstention(reason="refused", detail=str(e))
        critique = self._critique(request, judgement)
        return parse_critique(
            render_critique(critique, self.style), request.task, request=request.prompt, model=self.name
        )

    def _critique(self, request: CritiqueRequest, judgement: Judgement) -> Critique:
        task = request.task
        assessments = {
            a: AspectAssessment(score=judgement.scores[a], justification=_justification(judgement, a))
            for a in task.aspects
        }
        weak = [a for a in task.aspects if (s := judgement.scores[a]) is not None and s < 3.0]
        problems = [e for a in task.aspects for e in judgement.errors.get(a, [])]
        refined = comments = ""
        if request.with_refinement and problems:
            if task is Task.edit:
                refined = f"Only {request.prompt.rstrip('. ')}, and keep everything else unchanged."
            else:
                refined = refined_t2i_request(parse_scene_spec(request.prompt), judgement)
            comments = "Fix: " + " ".join(problems) + " The refined request states every requirement explicitly."
        summary = (
            ("Weak on " + ", ".join(a.header for a in weak) + ": " + " ".join(problems))
            if weak
            else (
                "Meets the request."
                if not problems
                else "Mostly meets the request; minor issues: " + " ".join(problems)
            )
        )
        return Critique(
            task=task,
            request=request.prompt,
            assessments=assessments,
            analysis=f"The request asks for: {request.prompt}",
            summary=summary,
            refinement_comments=comments,
            refined_request=refined,
        )

    async def critique(self, requests: Sequence[CritiqueRequest]) -> list[Critique | Abstention]:
        self.calls += len(requests)
        # Sidecar reads are blocking I/O: off the event loop, like any backend inside an async graph node.
        return await asyncio.to_thread(lambda: [self.critique_one(r) for r in requests])

    # -- pairwise --
    def _pair(self, request: CompareRequest) -> tuple[Judgement, Judgement]:
        sides = []
        for label, image in (("A", request.image_a), ("B", request.image_b)):
            scene = self._seen(self.scene_for(image, request.prompt), label)
            if request.task is Task.edit:
                sides.append(judge_edit(self._source_scene(request), scene, request.prompt))
            else:
                sides.append(judge_t2i(scene, parse_scene_spec(request.prompt), who=f"Image {label}"))
        return sides[0], sides[1]

    def pairwise_text(self, request: CompareRequest, label: Winner | None = None, *, salt: str = "") -> str:
        """A pairwise rationale; with `label`, anchored on it (and subject to the hallucination knob)."""
        a, b = self._pair(request)
        rng = _rng(self.seed, "hallucinate", request.image_a.sha256, request.image_b.sha256, label, salt)
        if label is not None and rng.random() < self.hallucination:
            a, b = _hallucinate(a, b, label, rng, request)
        aspects = {}
        for aspect in request.task.aspects:
            sa, sb = a.scores[aspect], b.scores[aspect]
            winner = None if sa is None or sb is None else ("A" if sa > sb else "B" if sb > sa else "tie")
            text_a = _justification(a, aspect)
            text_b = _justification(b, aspect)
            justification = f"Image A: {text_a} Image B: {text_b}" if sa is not None else "No text was requested."
            aspects[aspect] = PairwiseAspect(score_a=sa, score_b=sb, winner=winner, justification=justification)
        judgement = PairwiseJudgement(
            task=request.task,
            request=request.prompt,
            aspects=aspects,
            analysis=f"The request asks for: {request.prompt}",
            summary="",
        )
        preferred = judgement.preferred
        summary = {
            "A": "Image A is better overall.",
            "B": "Image B is better overall.",
            "tie": "Neither image is clearly better.",
        }[preferred]
        return render_pairwise(judgement.model_copy(update={"summary": summary}), self.style)

    async def compare(self, pairs: Sequence[CompareRequest]) -> list[PairwiseJudgement | Abstention]:
        self.calls += len(pairs)
        return await asyncio.to_thread(self._compare_all, pairs)

    def _compare_all(self, pairs: Sequence[CompareRequest]) -> list[PairwiseJudgement | Abstention]:
        results: list[PairwiseJudgement | Abstention] = []
        for pair in pairs:
            try:
                text = self.pairwise_text(pair)
            except SceneSpecError as e:
                results.append(Abstention(reason="refused", detail=f"the sketch oracle cannot read the request: {e}"))
                continue
            except NoSceneError as e:
                results.append(Abstention(reason="refused", detail=str(e)))
                continue
            results.append(parse_pairwise(text, pair.task, request=pair.prompt, model=self.name))
        return results

    # -- PARROT's teacher, answered from the typed request fields --
    async def teach(self, requests: Sequence[TeacherRequest]) -> list[Completion]:
        self.calls += len(requests)
        texts = await asyncio.to_thread(lambda: [self.teach_one(r) for r in requests])
        return [Completion(text=text, finish_reason="stop", model=self.name) for text in texts]

    def teach_one(self, request: TeacherRequest) -> str:
        if isinstance(request, AnchoredRequest):
            pair = CompareRequest.like(request)
            key = request.model_dump_json()
            self._samples[key] += 1  # like a sampling teacher: asking again gives another sample
            return self.pairwise_text(pair, request.label, salt=str(self._samples[key] - 1))
        if isinstance(request, RepredictRequest):
            return self._repredict(request)
        critique = CritiqueRequest.like(request, with_refinement=True)
        result = self.critique_one(critique)
        return result.raw_text if isinstance(result, Critique) else f"I cannot judge this request: {result.detail}"

    async def complete(self, messages: list[Message]) -> Completion:
        """Answer messages built by `rewardmodel.prompts` (e.g. the oracle behind an HTTP server): the request is
        read back from them and answered like a typed one."""
        request = read_messages(messages)
        if isinstance(request, (AnchoredRequest, RepredictRequest, ProjectRequest)):
            [completion] = await self.teach([request])
            return completion
        [result] = await (self.critique([request]) if isinstance(request, CritiqueRequest) else self.compare([request]))
        return Completion(text=result.raw_text, finish_reason="stop", model=self.name)

    def _repredict(self, request: RepredictRequest) -> str:
        """Re-predict the winner from a rationale alone; with images, claims the scenes contradict void the rationale."""
        if request.image_a is not None and request.image_b is not None:
            scenes = {
                "Image A": self._seen(self.scene_for(request.image_a, request.prompt), "repredict"),
                "Image B": self._seen(self.scene_for(request.image_b, request.prompt), "repredict"),
            }
            if false_claims(request.rationale, scenes):
                return "The comparison states details the images do not show, so it does not support either image.\nAnswer: tie"
        try:
            winner = parse_pairwise(request.rationale, request.task).preferred
        except CritiqueParseError:
            return "The comparison gives no readable scores.\nAnswer: tie"
        return f"Judging by the evidence and scores given.\nAnswer: {winner}"


def _hallucinate(
    a: Judgement, b: Judgement, label: Winner, rng: random.Random, request: CompareRequest
) -> tuple[Judgement, Judgement]:
    """A hallucinating teacher: invents facts to fit the label, or argues for the other image."""
    preferred, other = (a, b) if label != "B" else (b, a)
    if label == "tie" or rng.random() < 0.5:
        # Argue for the wrong image: its scores end up favouring the image the label did not prefer.
        boosted = {k: (None if v is None else min(4.0, v + 1.5)) for k, v in other.scores.items()}
        lowered = {k: (None if v is None else max(1.0, v - 1.0)) for k, v in preferred.scores.items()}
        other = Judgement(scores=boosted, facts=other.facts, errors={k: [] for k in other.errors})
        preferred = Judgement(scores=lowered, facts=preferred.facts, errors=preferred.errors)
    else:
        # Invent a flaw in the dispreferred image and an extra object: claims not in the scene graph.
        who = "Image B" if label == "A" else "Image A"
        fake = rng.choice([c for c in COCO_CLASSES if c not in request.prompt])
        invented = [f"{who} shows {_n(fake, rng.randint(1, 3))}.", f"{who} shows no {_first_class(request)}."]
        scores = {k: (None if v is None else max(1.0, v - 1.5)) for k, v in other.scores.items()}
        errors = dict(other.errors)
        errors[Aspect.text_faithfulness] = invented + list(other.errors.get(Aspect.text_faithfulness, []))
        other = Judgement(scores=scores, facts={k: [] for k in other.facts}, errors=errors)
    return (preferred, other) if label != "B" else (other, preferred)


def _first_class(request: CompareRequest) -> str:
    try:
        return parse_scene_spec(request.prompt).include[0].cls
    except SceneSpecError:
        return "object"


__all__ = ["SketchOracle", "claims_in", "false_claims", "judge_edit", "judge_t2i", "perceive"]

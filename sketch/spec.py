"""Prompt understanding for the sketch world: prompt text <-> exact scene spec in the GenEval metadata schema.

`parse_scene_spec(prompt)` returns `{tag, include: [{class, count, color?, position?: [relation, index]}], exclude?,
text?}` and reproduces the 553 GenEval prompts' specs exactly. Conventions follow GenEval: in "A left of B" the
reference B is listed first and A carries `position: ["left of", 0]`; a count n >= 2 adds `exclude: {class, n + 1}`.

Documented readings (beyond GenEval's own phrasing):
- numbers as words or digits, "a single", "exactly N", "a pair/couple of" (2; "a pair of skis/scissors" is one),
  "a dozen"; a bare plural ("dogs") means 2, "a few"/"several" mean 3; 0 and counts above 12 are refused;
- irregular plurals (people, mice, knives, ...), class synonyms (sofa -> couch, phone -> cell phone, ...), and
  describing words (big, cute, wooden, ...) dropped; any other noun is an object of that name ("a zorblax");
- colours: the 10 GenEval colours, before the noun, "<noun> that is <colour>", "<noun> colored <colour>",
  "<colour>-colored <noun>"; unambiguous synonyms (crimson -> red, navy -> blue, ...) mapped; other colour words
  (grey, teal, ...) refused by name;
- relations: left/right of, above/below and their synonyms (to the left of, over, on top of, under, beneath, ...);
  absolute placements ("X on the left side of the image, Y on the right") read as the relation between the two;
- quoted text ("a sign that says 'OPEN'") is a text-rendering requirement (`text`), tag `text_rendering`;
- framing ("a photo of", "an image showing", "there are"), trailing style words and settings ("in a park") dropped.
Alongside the spec, `read_prompt` reports how explicitly each requirement was stated; the sketch generator's failure
rates depend on it, and `render_prompt(spec, explicit=True)` writes the explicit form a refined request uses.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from rationalrewards.agents.geneval import ObjectSpec, SceneSpec
from rationalrewards.sketch._vocab import (
    CLASS_SYNONYMS,
    COCO_CLASSES,
    COLOR_SYNONYMS,
    COLORS,
    IRREGULAR_PLURALS,
    MAX_COUNT,
    MODIFIERS,
    NUMBER_WORDS,
    RELATION_SIDES,
    RELATIONS,
    SIDE_RELATION,
    SIDES,
    SINGULAR_ONLY,
    UNSUPPORTED_COLORS,
)

TAGS = ("single_object", "two_object", "counting", "colors", "position", "color_attr", "text_rendering")


class SceneSpecError(ValueError):
    """A prompt the sketch world cannot read; the message names the part not understood."""


@dataclass(frozen=True)
class Explicitness:
    """How explicitly one object's requirements were stated (lowers the sketch generator's error rates)."""

    count: bool = False  # a digit or "exactly"
    color: bool = False  # "<noun> colored <colour>", "that is <colour>", or "only"/"entirely"
    position: bool = False  # an absolute placement ("on the left side of the image")


@dataclass(frozen=True)
class PromptReading:
    spec: SceneSpec
    explicit: tuple[Explicitness, ...]  # one per `spec.include` entry
    text_explicit: bool = False  # quoted text introduced with "exactly" / "spelled"
    notes: tuple[str, ...] = field(default=())  # what was dropped or read by convention


# ---------------------------------------------------------------- normalisation ---------------------------------

_QUOTE = re.compile(
    r"(?:(?<=^)|(?<=[\s:(\[]))[\"'\u2018\u201c`]([^\"'\u2018\u2019\u201c\u201d`]+?)[\"'\u2019\u201d`](?=$|[\s.,;:!?)\]])"
)
_TEXT_INTRO = re.compile(
    r"\s*(?:,\s*)?(?:that|which)?\s*(?:says|saying|reads|reading|read|spells|spelling|displays|displaying|shows|showing"
    r"|with\s+(?:the\s+)?(?:exact\s+)?(?:text|word|words|words?\s+written|writing|letters|inscription|label|caption)"
    r"|labeled|labelled|written|with|bearing|that\s+has|with\s+exactly\s+the\s+text)?\s*(?:exactly\s+)?(?:the\s+text\s+)?(?:on\s+it\s+)?:?\s*$"
)
_FRAME_NOUN = (
    r"(?:photo|photograph|picture|image|pic|drawing|illustration|rendering|render|painting|sketch|scene|view|shot|"
    r"snapshot|close[- ]up|closeup|depiction|composition|artwork)"
)
_FRAMING = re.compile(
    r"^(?:(?:please|kindly)\s+)?(?:(?:generate|create|draw|make|render|produce|paint|show|depict|give)\s+(?:me\s+)?)?"
    r"(?:(?:(?:an?|the|one)\s+)?(?:(?:high[- ]quality|realistic|simple|detailed|clear|cartoon|digital|nice|good|beautiful)\s+)*"
    + _FRAME_NOUN
    + r"\s*(?:of|showing|with|containing|depicting|featuring|that\s+shows|where)?(?:\s+|$))?"
    r"(?:(?:there\s+(?:is|are)|showing|with|containing|featuring|depicting)\s+)?"
)
_STYLE_TAIL = re.compile(
    r"(?:,?\s*(?:photorealistic|realistic|high quality|highly detailed|detailed|4k|8k|hd|uhd|studio lighting|sharp focus|"
    r"trending on artstation|cinematic|award[- ]winning|masterpiece|in focus|centered|centred|isolated|clean and sharp|clean|sharp|"
    r"every object fully (?:inside|within) the (?:frame|image)|(?:each|all|both)(?: of them)?(?: clearly)? (?:visible|separate|distinct)|with no (?:smudges|artifacts|noise|blur)(?:(?:,| or| and) (?:smudges|artifacts|noise|blur))*))+\s*$"
)
_SETTING_TAIL = re.compile(
    r"\s+(?:in|inside|at|on)\s+(?:a|an|the)\s+(?:(?:plain|white|simple|blank|neutral|grey|gray|empty|sunny|green|busy|large|small)\s+)*"
    r"(?:park|room|kitchen|field|street|city|forest|garden|yard|beach|background|studio|house|office|meadow|road|"
    r"living room|bedroom|bathroom|scene|landscape|setting|table top|tabletop|ground|floor|grass|snow|desert|sky)\b.*$"
    r"|\s+(?:(?:arranged|standing|placed|lined up)\s+)?(?:in\s+(?:a|one)\s+(?:neat\s+)?(?:row|line|circle|group|pile|stack|cluster)|side\s+by\s+side|"
    r"next\s+to\s+each\s+other|close\s+together|spread\s+out|evenly\s+spaced)\b.*$"
)
_EXACT = re.compile(r"\b(?:exactly|precisely|only|just)\b")


def _clean(prompt: str | bytes) -> str:
    if isinstance(prompt, (bytes, bytearray)):
        try:
            prompt = bytes(prompt).decode("utf-8")
        except UnicodeDecodeError as e:
            raise SceneSpecError(f"prompt is not valid UTF-8 ({e.reason} at byte {e.start})") from e
    if not isinstance(prompt, str):
        raise SceneSpecError(f"prompt must be text, got {type(prompt).__name__}")
    try:
        prompt.encode("utf-8")
    except UnicodeEncodeError as e:
        raise SceneSpecError("prompt is not valid UTF-8 (it holds undecodable bytes)") from e
    # One space for every whitespace run, before any pattern runs: the patterns below then never face a long run of
    # blanks, which adjacent optional groups would otherwise try to split in polynomially many ways.
    text = " ".join(unicodedata.normalize("NFKC", prompt).split())
    if not text:
        raise SceneSpecError("empty prompt: describe at least one object, e.g. 'a photo of a cat'")
    return text


def _extract_texts(text: str) -> tuple[str, list[str], bool]:
    """Pull quoted strings out (text-rendering requirements) with the phrase that introduces them."""
    texts: list[str] = []
    explicit = False
    out = text
    for match in list(_QUOTE.finditer(text))[::-1]:
        before = out[: match.start()]
        intro = _TEXT_INTRO.search(before)
        cut = intro.start() if intro and intro.group(0).strip() else match.start()
        explicit = explicit or bool(re.search(r"\b(?:exactly|spelled|letter for letter)\b", before[cut:].lower()))
        texts.insert(0, match.group(1).strip())
        out = out[:cut] + out[match.end() :]
    return out, texts, explicit


# ---------------------------------------------------------------- words -----------------------------------------

_KNOWN_CLASSES = frozenset(COCO_CLASSES)
_NOT_A_NAME = frozenset(
    {
        "on",
        "of",
        "in",
        "at",
        "to",
        "by",
        "for",
        "from",
        "side",
        "image",
        "left",
        "right",
        "top",
        "bottom",
        "is",
        "are",
        "and",
        "or",
        "with",
        "that",
        "which",
        "it",
        "there",
        "this",
        "as",
    }
)
_MAX_NAME_WORDS = 3


def singular(word: str) -> str:
    """Singular of a head noun: irregular table first, then suffix rules; unknown short words are kept."""
    if word in IRREGULAR_PLURALS:
        return IRREGULAR_PLURALS[word]
    if word in SINGULAR_ONLY or word in _KNOWN_CLASSES or len(word) <= 3:
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if re.search(r"(?:ch|sh|ss|x|z)es$", word):
        return word[:-2]
    if word.endswith("oes") and len(word) > 4:
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def is_plural(word: str) -> bool:
    return word not in ("skis", "scissors", "sheep", "broccoli") and singular(word) != word


def _resolve_class(words: list[str]) -> tuple[str, bool]:
    """(class name, plural?) for a noun phrase: the longest known class (or synonym) at its end, else the phrase itself.

    Nothing is dropped without a word: words left before a known class that are not describing words ("hello four
    clocks", "one million clocks", "-3 clocks") and a phrase that is only a colour ("... and red") are refused by name,
    so the ground truth is never a misreading."""
    if not words:
        raise SceneSpecError("an object is missing its noun")
    head = words[-1]
    plural = is_plural(head)
    normal = words[:-1] + [singular(head)]
    for size in range(min(_MAX_NAME_WORDS, len(normal)), 0, -1):
        for candidate_words in (normal[-size:], words[-size:]):
            name = " ".join(candidate_words)
            known = name if name in _KNOWN_CLASSES else CLASS_SYNONYMS.get(name)
            if known is None:
                continue
            leftover = [w for w in words[:-size] if w not in MODIFIERS]
            if leftover:
                raise SceneSpecError(
                    f"could not read '{' '.join(leftover)}' before '{' '.join(words[-size:])}' "
                    "(a count goes first, as a word or a whole number from 1 to 12)"
                )
            return known, plural and known not in ("skis", "scissors")
    kept = [w for w in normal if w not in MODIFIERS] or normal[-1:]
    if all(w in COLORS or w in COLOR_SYNONYMS or w in UNSUPPORTED_COLORS for w in kept):
        raise SceneSpecError(f"'{' '.join(words)}' is a colour with no object to paint (name the object)")
    stray = [w for w in kept if w in _NOT_A_NAME or w in NUMBER_WORDS or not re.fullmatch(r"[a-z][a-z'-]*", w)]
    if stray or len(kept) > _MAX_NAME_WORDS:
        raise SceneSpecError(f"could not read '{' '.join(words)}' as an object (stuck at '{(stray or kept)[0]}')")
    named = [w for w in kept if singular(w) in _KNOWN_CLASSES or singular(w) in CLASS_SYNONYMS]
    # "a cat zorblax": a cat, a zorblax, or a new thing? No name is invented around a known one.
    if len(kept) > 1 and named:
        raise SceneSpecError(
            f"could not read '{' '.join(kept)}' as one object: '{named[0]}' is an object of its own (name one object)"
        )
    return " ".join(kept), plural


def _color_word(word: str) -> str | None:
    word = word.strip("-")
    if word in COLORS:
        return word
    if word in COLOR_SYNONYMS:
        return COLOR_SYNONYMS[word]
    if word in UNSUPPORTED_COLORS:
        raise SceneSpecError(f"colour '{word}' is not one of the sketch world's colours ({', '.join(COLORS)})")
    return None


# ---------------------------------------------------------------- one object phrase ------------------------------


@dataclass
class _Object:
    cls: str
    count: int
    color: str | None
    explicit: Explicitness
    side: str | None = None


_COLOR_AFTER = re.compile(
    r"^(?P<noun>.+?)\s+(?:(?:that|which|who)\s+(?:is|are)\s+(?:all\s+|entirely\s+|completely\s+|fully\s+|painted\s+|colou?red\s+)?"
    r"|(?:(?:all|entirely|completely|fully)\s+)?(?:colou?red|painted|in)\s+(?:in\s+)?)(?P<color>[a-z]+)$"
)
_HYPHEN_COLOR = re.compile(r"\b([a-z]+)-colou?red\b")
_SIDE = re.compile(
    r"(?:^|\s+)(?:(?:placed|positioned|located|sitting|standing)\s+)?(?:on|at|in|to)\s+the\s+(?:far\s+)?(?P<side>left|right|top|bottom|upper|lower)"
    r"(?:\s+(?:side|half|part|edge|corner|area|portion))?(?:\s+of\s+the\s+(?:image|picture|frame|scene|photo|canvas|composition))?$"
)
_LEADING_SIDE = re.compile(
    r"^(?:on|at|in|to)\s+the\s+(?:far\s+)?(?P<side>left|right|top|bottom|upper|lower)(?:\s+(?:side|half|part|edge|corner|area|portion))?"
    r"(?:\s+of\s+the\s+(?:image|picture|frame|scene|photo|canvas|composition))?\s*(?:,|:|\s)\s*(?:there\s+(?:is|are)\s+)?"
)
_PAIR = re.compile(r"^(?:pairs?|sets?)\s+of\s+")
_GROUPS = {"couple": 2, "dozen": 12, "few": 3, "trio": 3, "group": 3, "bunch": 3, "handful": 3}
_VAGUE = {"few": 3, "several": 3, "some": 2, "multiple": 2, "many": None, "lots": None, "numerous": None}


def _parse_count(words: list[str]) -> tuple[int | None, bool, list[str]]:
    """(count or None if unstated, stated as a digit?, remaining words)."""
    if not words:
        return None, False, words
    first = words[0]
    if first.isdigit():
        return int(first), True, words[1:]
    if first in ("a", "an") and len(words) > 1 and words[1] in ("pair", "set"):
        return 1, False, words[1:]  # "a pair of": the object decides whether a pair is one thing (skis) or two
    if first in ("a", "an") and len(words) > 2 and words[1] in _GROUPS:
        rest = words[3:] if words[2] == "of" else words[2:]
        return _GROUPS[words[1]], False, rest
    if first in ("a", "an") and len(words) > 1 and words[1] in ("single", "lone", "solitary"):
        return 1, False, words[2:]
    if first in _VAGUE:
        rest = words[1:]
        if rest[:1] == ["of"]:
            rest = rest[1:]
        if _VAGUE[first] is None:
            raise SceneSpecError(f"'{first}' is not a count the sketch world can draw: give a number")
        return _VAGUE[first], False, rest
    if first in NUMBER_WORDS and first not in ("pair", "couple", "dozen", "trio"):
        return NUMBER_WORDS[first], False, words[1:]
    return None, False, words


_POSES = (
    r"flying|lying|laying|sitting|standing|running|walking|floating|hanging|resting|perched|parked|swimming|"
    r"sleeping|jumping|hovering|leaning|waiting|grazing|eating|playing|placed|positioned|located|shown|visible|"
    r"high|far|up|down|there|together|each|clearly|in it|on it|written(?: on it)?|painted on it"
)
_TRAILING_POSE = re.compile(r"(?:\s+(?:" + _POSES + r"))+$")


def _parse_object(phrase: str) -> _Object:
    phrase = phrase.strip(" .,:;!?")
    if (m := _TRAILING_POSE.search(phrase)) and m.start() > 0:
        phrase = phrase[: m.start()]
    side = None
    if match := _SIDE.search(phrase):
        side = SIDES[match.group("side")]
        phrase = phrase[: match.start()].strip()
    if match := _LEADING_SIDE.match(phrase):
        side = SIDES[match.group("side")]
        phrase = phrase[match.end() :].strip()
    exact = bool(_EXACT.search(phrase))
    phrase = _EXACT.sub(" ", phrase)
    color = None
    color_explicit = False
    if match := _HYPHEN_COLOR.search(phrase):
        color = _color_word(match.group(1))
        phrase = (phrase[: match.start()] + phrase[match.end() :]).strip()
        color_explicit = True
    if match := _COLOR_AFTER.match(phrase.strip()):
        found = _color_word(match.group("color"))
        if found is not None:
            color, color_explicit = found, True
            phrase = match.group("noun")
    words = [w for w in re.split(r"\s+", phrase.strip()) if w and w not in ("the",)]
    words = [w.strip(",.;:!?") for w in words]
    count, digit, words = _parse_count(words)
    pairs = 1
    if words and _PAIR.match(" ".join(words)):
        rest = _PAIR.sub("", " ".join(words)).split()
        if rest and rest[-1] in ("skis", "scissors", "ski"):
            words = rest  # a pair of skis is one "skis" object, two pairs are two
            count = count or 1
        else:
            words, pairs = rest, 2
    words = [w for w in words if w not in ("of",)] if words[:1] == ["of"] else words
    if not words:
        raise SceneSpecError(f"'{phrase.strip()}' names no object (a count or colour needs a noun after it)")
    # Colour words before the noun; the last word is always the noun ("an orange" is the fruit).
    leading = []
    for word in words[:-1]:
        found = _color_word(word) if word not in ("colored", "coloured") else None
        if found is not None:
            color = found
            continue
        if word in ("colored", "coloured", "painted"):
            color_explicit = True
            continue
        leading.append(word)
    noun_words = [w for w in leading + words[-1:] if w not in MODIFIERS or w == words[-1]]
    if (
        words
        and words[-1] in NUMBER_WORDS
        and not noun_words[:-1]
        and words[-1] not in ("couple", "pair", "dozen", "trio")
    ):
        raise SceneSpecError(f"'{phrase.strip()}' has a count but no object")
    cls, plural = _resolve_class(noun_words)
    if count is None:
        count = 2 if plural else 1
    count *= pairs
    if count == 0:
        raise SceneSpecError(f"count 0 for '{cls}': nothing to draw (to forbid an object, say 'without a {cls}')")
    if count > MAX_COUNT:
        raise SceneSpecError(f"count {count} for '{cls}' exceeds the sketch world's limit of {MAX_COUNT} per object")
    if not cls or not re.search(r"[a-z]", cls):
        raise SceneSpecError(f"no object noun in '{phrase.strip()}'")
    return _Object(
        cls=cls,
        count=count,
        color=color,
        side=side,
        explicit=Explicitness(
            count=digit or exact, color=color_explicit or (exact and color is not None), position=side is not None
        ),
    )


# ---------------------------------------------------------------- whole prompt -----------------------------------

_SPLIT = re.compile(
    r"\s*(?:;|,\s*(?:and\s+|with\s+|plus\s+)?|\band\b|\bwith\b|\bas\s+well\s+as\b|\balong\s+with\b|\btogether\s+with\b"
    r"|\bplus\b|\bnext\s+to\b|\bbeside\b|\bbesides\b|\bnear\b|\balongside\b)\s*"
)
_WITHOUT = re.compile(
    r"\s*(?:,\s*)?\b(?:without|but\s+no|and\s+no|with\s+no|excluding|except(?:\s+for)?)\b\s+(?P<rest>.+)$"
)
_RELATION_RE = re.compile(
    r"\s+(?:(?:is|are|sits|sit|stands|stand|that\s+is|which\s+is)\s+)?(?:(?:" + _POSES + r")\s+)*"
    r"(?:directly\s+|just\s+|right\s+|slightly\s+|well\s+|way\s+|far\s+|high\s+)?(?P<rel>"
    + "|".join(re.escape(r) for r in sorted(RELATIONS, key=len, reverse=True))
    + r")\s+"
)


def _strip_framing(text: str) -> tuple[str, list[str]]:
    notes = []
    s = text.lower()
    s = re.sub(r"[\u2018\u2019]", "'", s)
    s = re.sub(r"\s+", " ", s).strip(" .!?")
    for _ in range(2):
        s = _FRAMING.sub("", s, count=1).strip()
    if (m := _STYLE_TAIL.search(s)) and m.start() > 0:
        notes.append(f"dropped style words '{m.group(0).strip(' ,')}'")
        s = s[: m.start()].strip(" ,")
    if (m := _SETTING_TAIL.search(s)) and m.start() > 0:
        notes.append(f"dropped the setting '{m.group(0).strip()}'")
        s = s[: m.start()].strip(" ,")
    return s, notes


_SIDE_FIRST = re.compile(
    r"(?:^|(?<=;)|(?<=,)|(?<=; )|(?<=, ))(?P<side>(?:on|at|in|to)\s+the\s+(?:far\s+)?(?:left|right|top|bottom|upper|lower)(?:\s+(?:side|half|part|edge|corner|area|portion))?"
    r"(?:\s+of\s+the\s+(?:image|picture|frame|scene|photo|canvas|composition))?)\s*[,:]\s*(?:there\s+(?:is|are)\s+)?(?P<obj>[^;,]+)"
)


def _split_objects(s: str) -> list[str]:
    # "on the left, a red apple; on the right, a cup" -> "a red apple on the left; a cup on the right"
    s = _SIDE_FIRST.sub(lambda m: f"{m.group('obj').strip()} {m.group('side')}", s)
    return [p for p in (part.strip(" ,.;:") for part in _SPLIT.split(s)) if p]


def read_prompt(prompt: str | bytes) -> PromptReading:
    """The spec of a prompt plus how explicitly each requirement was stated. Raises `SceneSpecError`."""
    text = _clean(prompt)
    text, texts, text_explicit = _extract_texts(text)
    s, notes = _strip_framing(text)
    if not s:
        raise SceneSpecError(f"no object in {prompt!r}: describe at least one object, e.g. 'a photo of a cat'")

    excluded: list[_Object] = []
    if match := _WITHOUT.search(s):
        excluded = [_parse_object(p) for p in _split_objects(match.group("rest"))]
        s = s[: match.start()].strip(" ,")

    relation = None
    subject_phrase = reference_phrase = None
    # Absolute placements are read before relative relations: "on the left side of the image" names no reference.
    absolute = any(_SIDE.search(p) or _LEADING_SIDE.match(p) for p in _split_objects(s))
    if not absolute and (match := _RELATION_RE.search(" " + s + " ")):
        padded = " " + s + " "
        subject_phrase = padded[: match.start()].strip()
        reference_phrase = padded[match.end() :].strip()
        relation = RELATIONS[match.group("rel")]
    if relation is not None:
        if not subject_phrase or not reference_phrase:
            raise SceneSpecError(f"the relation '{relation}' needs an object on each side in {prompt!r}")
        subject, reference = _parse_object(subject_phrase), _parse_object(reference_phrase)
        objects = [reference, subject]
        positions: list[tuple[str, int] | None] = [None, (relation, 0)]
    else:
        objects = [_parse_object(p) for p in _split_objects(s)]
        positions = [None] * len(objects)
        sided = [(i, o.side) for i, o in enumerate(objects) if o.side]
        if len(sided) == 2 and len(objects) == 2:
            (i, side_i), (j, side_j) = sided
            rel = SIDE_RELATION.get((side_i, side_j))
            if rel is None:
                raise SceneSpecError(
                    f"placements '{side_i}' and '{side_j}' do not say where the objects are relative to each other"
                )
            # GenEval order: the reference first, the subject (named first) carries the relation.
            objects = [objects[j], objects[i]]
            positions = [None, (rel, 0)]
        elif len(sided) == 1 and len(objects) == 2:
            (i, side_i) = sided[0]
            other = 1 - i
            rel = {"left": "left of", "right": "right of", "top": "above", "bottom": "below"}[side_i]
            objects = [objects[other], objects[i]]
            positions = [None, (rel, 0)]
        elif sided and len(objects) != 2:
            notes.append("placements ignored: they are read only between two objects")

    include = tuple(
        ObjectSpec(cls=o.cls, count=o.count, color=o.color, position=p) for o, p in zip(objects, positions, strict=True)
    )
    exclude = tuple(ObjectSpec(cls=o.cls, count=o.count + 1) for o in objects if o.count >= 2)
    exclude += tuple(ObjectSpec(cls=o.cls, count=1) for o in excluded)
    spec = SceneSpec(tag=_tag(include, texts), include=include, exclude=exclude, text=tuple(texts))
    explicit = tuple(o.explicit for o in objects)
    return PromptReading(spec=spec, explicit=explicit, text_explicit=text_explicit, notes=tuple(notes))


def _tag(include: tuple[ObjectSpec, ...], texts: list[str]) -> str:
    if texts:
        return "text_rendering"
    if any(o.position for o in include):
        return "position"
    colored = sum(o.color is not None for o in include)
    if len(include) >= 2 and colored:
        return "color_attr"
    if any(o.count >= 2 for o in include):
        return "counting"
    if colored:
        return "colors"
    return "two_object" if len(include) >= 2 else "single_object"


def read_prompt_leniently(prompt: str) -> PromptReading:
    """How a generator reads: like `read_prompt`, but a part it cannot read is dropped rather than refused (a real
    model always draws something). Clauses are dropped from the end until the rest reads; nothing readable -> empty."""
    try:
        return read_prompt(prompt)
    except SceneSpecError as first_error:
        parts = re.split(r",|;|\s+(?=(?:in|on|at|with|while|where|so|because)\s)", prompt)
        for end in range(len(parts) - 1, 0, -1):
            try:
                reading = read_prompt(" ".join(p.strip() for p in parts[:end]))
            except SceneSpecError:
                continue
            return PromptReading(
                spec=reading.spec,
                explicit=reading.explicit,
                text_explicit=reading.text_explicit,
                notes=reading.notes + (f"could not read part of the prompt ({first_error}); drew the rest",),
            )
        empty = SceneSpec(tag="single_object", include=())
        return PromptReading(
            spec=empty, explicit=(), notes=(f"could not read the prompt ({first_error}); drew nothing",)
        )


def parse_scene_spec(prompt: str | bytes) -> SceneSpec:
    """The exact spec of a prompt in the GenEval schema (`.model_dump()` is the metadata dict)."""
    return read_prompt(prompt).spec


# ---------------------------------------------------------------- spec -> prompt ---------------------------------

_NUMBER_NAMES = {
    1: "one",
    2: "two",
    3: "three",
    4: "four",
    5: "five",
    6: "six",
    7: "seven",
    8: "eight",
    9: "nine",
    10: "ten",
    11: "eleven",
    12: "twelve",
}


# Singular -> plural for the irregular words, built once (the table maps plurals and alternate spellings to singulars).
_PLURAL_OF = {
    singular_: plural_
    for plural_, singular_ in IRREGULAR_PLURALS.items()
    if plural_ not in ("persons", "men", "women", "children", "kids", "boys", "girls", "busses", "tv's", "broccolis")
}


def plural(cls: str) -> str:
    if cls in ("skis", "scissors", "sheep", "broccoli"):
        return cls
    head, _, _ = cls.rpartition(" ")
    last = cls.split()[-1]
    if last in _PLURAL_OF:
        word = _PLURAL_OF[last]
    elif re.search(r"(?:ch|sh|ss|x|z|s)$", last):
        word = last + "es"
    elif re.search(r"[^aeiou]y$", last):
        word = last[:-1] + "ies"
    else:
        word = last + "s"
    return f"{head} {word}".strip()


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _noun_phrase(obj: ObjectSpec, explicit: bool) -> str:
    name = obj.cls if obj.count == 1 else plural(obj.cls)
    if explicit:
        count = "exactly one" if obj.count == 1 else f"exactly {obj.count}"
        color = f" colored {obj.color}" if obj.color else ""
        return f"{count} {name}{color}"
    words = ([obj.color] if obj.color else []) + [name]
    phrase = " ".join(words)
    return f"{_article(phrase)} {phrase}" if obj.count == 1 else f"{_NUMBER_NAMES[obj.count]} {phrase}"


def render_prompt(spec: SceneSpec, explicit: bool = False) -> str:
    """A prompt for `spec`: GenEval's phrasing ("a photo of ...") or the explicit form a refined request uses.

    `parse_scene_spec(render_prompt(spec, e)) == spec` for both forms (a property test holds it to that).
    """
    objects = list(spec.include)
    placed = spec.relation()
    if placed is not None:
        subject, relation, reference = placed
        if explicit:
            sides = RELATION_SIDES[relation]
            body = (
                f"{_noun_phrase(subject, True)} on the {sides[0]} side of the image, "
                f"{_noun_phrase(reference, True)} on the {sides[1]} side of the image"
            )
        else:
            body = f"{_noun_phrase(subject, False)} {relation} {_noun_phrase(reference, False)}"
    else:
        body = " and ".join(_noun_phrase(o, explicit) for o in objects)
    counted = {(o.cls, o.count + 1) for o in objects if o.count >= 2}
    forbidden = [o for o in spec.exclude if (o.cls, o.count) not in counted]
    if forbidden:
        body += " without " + " or ".join(f"{_article(o.cls)} {o.cls}" for o in forbidden)
    for text in spec.text:
        body += f' with exactly the text "{text}"' if explicit else f' that says "{text}"'
    return ("an image of " if explicit else "a photo of ") + body

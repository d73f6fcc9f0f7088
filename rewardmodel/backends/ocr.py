"""A text-rendering reward from real OCR (`rapidocr-onnxruntime`, the `[ocr]` extra: pretrained weights that ship with
the package, nothing downloaded): how closely the text read in the image matches the text the request asks for.

The requested text is what the prompt quotes ("...", '...', “...”). The reward is the similarity (difflib's ratio,
case and spacing ignored) between the requested text and the text read, on [0, 1], returned as a scalar reward (a
`FunctionRewardModel` makes it a critique whose active aspects score 1 + 3r, so the `paper` policy reads r back). A
request that quotes no text abstains (there is nothing to read for): as a term of `rl --reward ocr`, that sample
simply leaves the mix.
"""

from __future__ import annotations

import difflib
import re
import threading
from typing import Any

from rationalrewards.rewardmodel.images import load_pil
from rationalrewards.rewardmodel.schemas import Abstention, CritiqueRequest

_QUOTED = re.compile(r'"([^"]+)"|“([^”]+)”|\'([^\']+)\'')
_engine: Any = None
_lock = threading.Lock()


def requested_text(prompt: str) -> list[str]:
    """The texts a request quotes."""
    return [next(g for g in match.groups() if g) for match in _QUOTED.finditer(prompt)]


def _normal(text: str) -> str:
    return " ".join(text.lower().split())


def read_text(image: Any) -> list[str]:
    """The text lines OCR reads in a PIL image."""
    import numpy as np

    global _engine
    with _lock:  # one engine per process, built on first use (half a second); onnxruntime sessions are thread-safe
        if _engine is None:
            from rapidocr_onnxruntime import RapidOCR

            _engine = RapidOCR()
    lines, _ = _engine(np.asarray(image.convert("RGB"))[:, :, ::-1])  # the engine reads OpenCV's BGR order
    return [str(line[1]) for line in lines or []]


def ocr_reward(request: CritiqueRequest) -> float | Abstention:
    """A `FunctionRewardModel` function: the OCR similarity in [0, 1], or an abstention when no text is asked for."""
    wanted = requested_text(request.prompt)
    if not wanted:
        return Abstention(reason="refused", detail="the request quotes no text to render: nothing for OCR to read")
    seen = _normal(" ".join(read_text(load_pil(request.image))))
    return difflib.SequenceMatcher(None, _normal(" ".join(wanted)), seen).ratio() if seen else 0.0


__all__ = ["ocr_reward", "read_text", "requested_text"]

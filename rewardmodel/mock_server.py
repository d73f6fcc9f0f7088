"""A scriptable OpenAI-compatible server on loopback, for fault-injection tests and client benchmarks.

It speaks `/health`, `/v1/models` and `/v1/chat/completions`, validates that every `image_url` part is a decodable PNG
data URL, and answers from a script of faults (status codes, delays, malformed bodies, truncation) before falling back
to a canned critique after a fixed latency. Runs in a background thread (`MockServer`) or as a process:
`python -m rationalrewards.rewardmodel.mock_server --port 8123 --latency 0.2`. Needs uvicorn (the `dev` extra).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from rationalrewards.rewardmodel.format import render_critique
from rationalrewards.rewardmodel.schemas import Aspect, AspectAssessment, Critique, Task

# The ASGI interface uvicorn calls the app with.
Scope = dict[str, object]
Receive = Callable[[], Awaitable[dict[str, object]]]
Send = Callable[[dict[str, object]], Awaitable[None]]


def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS says is free on loopback (for servers tests and benchmarks start)."""
    import socket

    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def canned_critique_text(task: Task = Task.t2i) -> str:
    scores = {Aspect.text_faithfulness: 3.5, Aspect.image_faithfulness: 4.0, Aspect.physical_quality: 3.0}
    critique = Critique(
        task=task,
        assessments={
            a: AspectAssessment(score=scores.get(a), justification=f"Canned judgement of {a.header}.")
            for a in task.aspects
        },
        analysis="The request asks for a scene.",
        summary="Mostly faithful, minor quality issues.",
        refinement_comments="State the layout explicitly.",
        refined_request="A clearly laid out scene, exactly as described.",
    )
    return render_critique(critique)


def parrot_teacher_text(payload: dict[str, Any]) -> str:
    """The canned teacher over the wire: the typed request is read back from the messages (`prompts.read_messages`)."""
    from rationalrewards.rewardmodel.prompts import read_messages

    return parrot_teacher_answer(read_messages(payload.get("messages", [])))


def parrot_teacher_answer(request: Any) -> str:
    """A canned but consistent teacher: argues for the anchored label, re-predicts from the rationale's own scores,
    prefers image A in an unanchored comparison, and anything else (a projection or a critique) with a canned
    critique."""
    from rationalrewards.rewardmodel.errors import CritiqueParseError
    from rationalrewards.rewardmodel.format import render_pairwise
    from rationalrewards.rewardmodel.parsing import parse_pairwise
    from rationalrewards.rewardmodel.schemas import (
        AnchoredRequest,
        CompareRequest,
        PairwiseAspect,
        PairwiseJudgement,
        RepredictRequest,
    )

    if isinstance(request, RepredictRequest):
        try:
            return "Answer: " + parse_pairwise(request.rationale, request.task).preferred
        except CritiqueParseError:
            return "The comparison gives no readable scores.\nAnswer: tie"
    if isinstance(request, (AnchoredRequest, CompareRequest)):
        label = request.label if isinstance(request, AnchoredRequest) and request.label != "tie" else "A"
        good, bad = 4.0, 2.5
        aspects = {
            aspect: PairwiseAspect(
                score_a=good if label == "A" else bad,
                score_b=bad if label == "A" else good,
                winner=label,
                justification=f"Image {label} matches the request better.",
            )
            if aspect is not Aspect.text_rendering
            else PairwiseAspect(score_a=None, score_b=None, justification="No text.")
            for aspect in request.task.aspects
        }
        return render_pairwise(
            PairwiseJudgement(task=request.task, aspects=aspects, summary=f"Image {label} is better.")
        )
    return canned_critique_text(request.task)


RESPONDERS = {"parrot": parrot_teacher_text}


@dataclass
class Fault:
    """One scripted answer. `status` other than 200 answers with that code; `delay` sleeps first."""

    status: int = 200
    delay: float = 0.0
    malformed: bool = False
    finish_reason: str = "stop"
    text: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None  # the raw answer instead of a JSON completion (any status)


@dataclass
class MockState:
    latency: float = 0.0
    text: str = field(default_factory=canned_critique_text)
    script: deque[Fault] = field(default_factory=deque)
    requests: list[dict[str, object]] = field(default_factory=list)
    images_seen: int = 0
    keep_bodies: bool = True
    validate: bool = True  # off in benchmarks: an ideal server spends nothing on a request but its latency
    responder: Any = None  # payload -> answer text, instead of the fixed `text`
    model: str = "mock-critic"  # the name /v1/models lists (a RationalRewards name makes `prompts=auto` pick release)
    authorizations: list[str] = field(default_factory=list)  # the Authorization header of each request ("" if none)


def _check_images(body: dict[str, Any]) -> int:
    """Count image parts, rejecting any that is not a base64 PNG data URL (what the real servers require)."""
    count = 0
    for message in body.get("messages", []):
        content = message.get("content")
        for part in content if isinstance(content, list) else []:
            if part.get("type") != "image_url":
                continue
            url = part["image_url"]["url"]
            prefix = "data:image/png;base64,"
            if not url.startswith(prefix):
                raise ValueError("image_url is not a PNG data URL")
            if not base64.b64decode(url[len(prefix) :], validate=True).startswith(b"\x89PNG"):
                raise ValueError("image_url data is not a PNG")
            count += 1
    return count


class _App:
    def __init__(self, state: MockState) -> None:
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            chunk = message.get("body", b"")
            body += chunk if isinstance(chunk, bytes) else b""
            if not message.get("more_body"):
                break
        path = scope["path"]
        raw_headers = scope.get("headers")
        headers = dict(raw_headers) if isinstance(raw_headers, list) else {}
        self.state.authorizations.append(bytes(headers.get(b"authorization", b"")).decode("latin-1"))
        if path == "/health":
            return await self._send(send, 200, b'{"status":"ok"}')
        if path == "/v1/models":
            models = {"object": "list", "data": [{"id": self.state.model, "object": "model"}]}
            return await self._send(send, 200, json.dumps(models).encode())
        if path != "/v1/chat/completions":
            return await self._send(send, 404, b'{"error":"not found"}')
        await self._chat(body, send)

    async def _chat(self, body: bytes, send: Send) -> None:
        """A chat completion: validate the request, then answer from the fault script or the canned text."""
        payload: dict[str, object] = {}
        images = 0
        try:
            if self.state.validate or self.state.responder is not None:
                payload = json.loads(body)
            if self.state.validate:
                images = _check_images(payload)
        except (ValueError, KeyError, TypeError) as e:
            return await self._send(send, 400, json.dumps({"error": f"bad request: {e}"}).encode())
        self.state.images_seen += images
        if self.state.keep_bodies:
            self.state.requests.append(payload)
        fault = self.state.script.popleft() if self.state.script else Fault(delay=self.state.latency)
        if fault.delay:
            await asyncio.sleep(fault.delay)
        if fault.body is not None:
            return await self._send(send, fault.status, fault.body, fault.headers)
        if fault.status != 200:
            return await self._send(send, fault.status, b'{"error":"injected"}', fault.headers)
        if fault.malformed:
            return await self._send(send, 200, b'{"choices": [ this is not json')
        await self._send(send, 200, json.dumps(self._answer(payload, fault, images)).encode())

    def _answer(self, payload: dict[str, object], fault: Fault, images: int) -> dict[str, object]:
        if fault.text is not None:
            text = fault.text
        else:
            text = self.state.responder(payload) if self.state.responder is not None else self.state.text
        message = {"role": "assistant", "content": text}
        usage = {"prompt_tokens": 100 + 256 * images, "completion_tokens": 300, "total_tokens": 400 + 256 * images}
        return {
            "id": "mock",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": payload.get("model", self.state.model),
            "choices": [{"index": 0, "finish_reason": fault.finish_reason, "message": message}],
            "usage": usage,
        }

    @staticmethod
    async def _send(send: Send, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        raw_headers = [(b"content-type", b"application/json")] + [
            (k.encode(), v.encode()) for k, v in (headers or {}).items()
        ]
        await send({"type": "http.response.start", "status": status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": body})


class MockServer:
    """The mock in a background thread: `with MockServer(port) as server: ... server.state.script.append(Fault(500))`."""

    def __init__(self, port: int, latency: float = 0.0, host: str = "127.0.0.1") -> None:
        import uvicorn

        self.state = MockState(latency=latency)
        self.host, self.port = host, port
        config = uvicorn.Config(
            _App(self.state), host=host, port=port, log_level="warning", lifespan="off", backlog=2048
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def __enter__(self) -> MockServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"mock server did not start on {self.host}:{self.port}")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(10)


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="Scriptable OpenAI-compatible mock critic on loopback.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--no-validate", action="store_true", help="skip JSON and image checks (benchmarks)")
    parser.add_argument(
        "--responder", choices=sorted(RESPONDERS), help="answer by prompt type instead of one canned critique"
    )
    args = parser.parse_args()
    state = MockState(
        latency=args.latency,
        keep_bodies=False,
        validate=not args.no_validate,
        responder=RESPONDERS.get(args.responder) if args.responder else None,
    )
    uvicorn.run(_App(state), host=args.host, port=args.port, log_level="warning", lifespan="off", backlog=2048)


if __name__ == "__main__":
    main()

"""OpenTelemetry spans of runs (issue 14): run -> thread -> node -> backend call, safe attributes, one trace per job
across shards. Uses the SDK's in-memory exporter."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rationalrewards.agents.suite import SuiteRow
from rationalrewards.plumbing.telemetry import safe_attributes
from rationalrewards.runtime.job_configs import ParrotJob, RefineJob
from rationalrewards.runtime.jobs import parrot_job, refine_job
from rationalrewards.sketch.suites import make_suite

sdk = pytest.importorskip("opentelemetry.sdk.trace")


@pytest.fixture(scope="module")
def exporter() -> Iterator[Any]:
    from opentelemetry import trace
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    memory = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, sdk.TracerProvider):  # a process sets its provider once
        provider = sdk.TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    yield memory


def _rows(n: int) -> list[SuiteRow]:
    return [SuiteRow.model_validate(row) for row in make_suite(n, seed=5)]


def test_a_refine_run_is_one_tree_of_spans_with_safe_attributes(tmp_path: Path, exporter: Any) -> None:
    exporter.clear()
    summary = refine_job(RefineJob(rows=_rows(3), out=tmp_path / "run", preset="deep", progress=False))
    spans = exporter.get_finished_spans()
    by_id = {s.context.span_id: s for s in spans}
    [run] = [s for s in spans if s.name == "gcr.run"]
    threads = [s for s in spans if s.name == "gcr.thread"]
    assert len(threads) == summary["finished"] == 3
    assert all(t.parent.span_id == run.context.span_id for t in threads)
    assert {s.context.trace_id for s in spans if s.name.startswith(("gcr.", "node.", "critic.", "generator."))} == {
        run.context.trace_id
    }
    nodes = [s for s in spans if s.name.startswith("node.")]
    assert {n.name for n in nodes} >= {"node.generate", "node.critique", "node.select"}
    for node in nodes:  # every node hangs under its thread
        parent = by_id[node.parent.span_id]
        while not parent.name.endswith(".thread"):
            parent = by_id[parent.parent.span_id]
        assert parent.attributes["rr.item"].startswith("s")
    critique_calls = [s for s in spans if s.name == "critic.critique"]
    assert critique_calls and all(by_id[c.parent.span_id].name == "node.critique" for c in critique_calls)
    scored = [n for n in nodes if n.name == "node.critique" and any(k.startswith("rr.scores.") for k in n.attributes)]
    assert scored and all("rr.round" in n.attributes for n in scored)  # round and per-aspect scores recorded
    for s in spans:
        for value in s.attributes.values():
            assert not str(value).startswith("data:")


def test_shards_of_one_job_share_a_trace_id_and_parrot_traces_teacher_calls(tmp_path: Path, exporter: Any) -> None:
    exporter.clear()
    rows = _rows(4)
    for i in range(2):
        refine_job(RefineJob(rows=rows, out=tmp_path / f"s{i}", shard=f"{i}/2", progress=False))
    runs = [s for s in exporter.get_finished_spans() if s.name == "gcr.run"]
    assert len(runs) == 2 and runs[0].context.trace_id == runs[1].context.trace_id
    assert {r.attributes["rr.shard"] for r in runs} == {"0/2", "1/2"}
    exporter.clear()
    refine_job(RefineJob(rows=_rows(4)[:3], out=tmp_path / "other", progress=False))  # another job, another trace
    [other] = [s for s in exporter.get_finished_spans() if s.name == "gcr.run"]
    assert other.context.trace_id != runs[0].context.trace_id
    exporter.clear()
    parrot_job(ParrotJob(out=tmp_path / "parrot", world="sketch", pairs_count=4, progress=False))
    spans = exporter.get_finished_spans()
    by_id = {s.context.span_id: s for s in spans}
    teach = [s for s in spans if s.name == "teacher.teach"]
    assert len(teach) >= 4 and all(by_id[t.parent.span_id].name.startswith("node.") for t in teach)
    assert any(s.name == "parrot.run" for s in spans)


def test_safe_attributes_drop_images_and_secrets() -> None:
    attributes = safe_attributes(
        {
            "image": "data:image/png;base64,AAAA",
            "api_key": "sk-secret",
            "Authorization": "Bearer x",
            "scores": {"text_faithfulness": 3.5, "text_rendering": None},
            "sample_id": "s1",
            "raw": b"\x89PNG",
            "reasons": ["timeout", "parse_error"],
            "long": "x" * 5000,
        }
    )
    assert attributes == {
        "rr.scores.text_faithfulness": 3.5,
        "rr.sample_id": "s1",
        "rr.reasons": ["timeout", "parse_error"],
        "rr.long": "x" * 500,
    }


def test_a_cli_run_exports_its_spans_over_otlp_when_the_endpoint_is_set(tmp_path: Path) -> None:
    import http.server
    import threading

    from helpers import free_port, run_cli

    received: list[bytes] = []

    class Collector(http.server.BaseHTTPRequestHandler):  # an OTLP/HTTP receiver: POST /v1/traces, protobuf body
        def do_POST(self) -> None:
            received.append(self.rfile.read(int(self.headers["content-length"])))
            assert self.path == "/v1/traces"
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    port = free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}", "RATIONALREWARDS_API_KEY": "sk-never-sent"}
        run_cli("refine", "a photo of two cats", "--out", str(tmp_path / "run"), "--json", env=env, check=True)
        ours = b"".join(received)
        received.clear()
        # LangSmith's own variables for its OTel mode (nothing sent by its own client: OTEL_ONLY).
        langsmith = env | {
            "LANGSMITH_TRACING": "true",
            "LANGSMITH_OTEL_ENABLED": "true",
            "LANGSMITH_OTEL_ONLY": "true",
            "LANGSMITH_API_KEY": "x",
        }
        run_cli("refine", "a photo of two dogs", "--out", str(tmp_path / "ls"), "--json", env=langsmith, check=True)
        with_langsmith = b"".join(received)
    finally:
        server.shutdown()
    assert b"gcr.run" in ours and b"node.critique" in ours and b"critic.critique" in ours
    assert b"sk-never-sent" not in ours and b"data:image" not in ours
    assert b"LangGraph" not in ours  # LangGraph's own spans only in LangSmith's OTel mode
    assert b"LangGraph" in with_langsmith and b"gcr.run" in with_langsmith


@pytest.mark.parametrize("exporters", ["console", "none,console"])
def test_the_sdk_environment_variables_choose_the_exporter(tmp_path: Path, exporters: str) -> None:
    """`OTEL_TRACES_EXPORTER=console` prints the spans (to stderr: `--json` keeps stdout to one object); `none`
    anywhere in the list turns export off, as the SDK specifies; `OTEL_SERVICE_NAME` names the resource."""
    import json

    from helpers import run_cli

    env = {"OTEL_TRACES_EXPORTER": exporters, "OTEL_SERVICE_NAME": "rr-test", "OTEL_EXPORTER_OTLP_ENDPOINT": ""}
    result = run_cli("refine", "a photo of two cats", "--out", str(tmp_path / "run"), "--json", env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["finished"] == 1
    printed = result.stderr.count('"name": "node.')
    if "none" in exporters:
        assert printed == 0
    else:
        assert printed >= 2 and '"service.name": "rr-test"' in result.stderr


@pytest.mark.slow
def test_an_rl_run_is_a_run_span_with_one_child_per_step(tmp_path: Path, exporter: Any) -> None:
    from test_rl import PROMPTS, _config, _reward

    from rationalrewards.training import NFTTrainer

    exporter.clear()
    NFTTrainer(_config("nft", max_steps=2), _reward("darkness"), PROMPTS, out=tmp_path / "rl").train()
    spans = exporter.get_finished_spans()
    [run] = [s for s in spans if s.name == "rl.run"]
    steps = [s for s in spans if s.name == "rl.step"]
    assert [s.attributes["rr.step"] for s in steps] == [1, 2]  # the step numbers of the history rows
    assert all(s.parent.span_id == run.context.span_id for s in steps)
    assert all("rr.reward_mean" in s.attributes for s in steps)


def test_a_graph_run_from_python_is_one_trace_with_genai_attributes(tmp_path: Path, exporter: Any) -> None:
    """No span open around `ainvoke`: each invocation opens its own root span, so its nodes share one trace; the
    critic's span carries OpenTelemetry's GenAI attributes with the token usage the server reported."""
    import asyncio

    from PIL import Image

    from rationalrewards import (
        FunctionGenerator,
        GCRConfig,
        GCRContext,
        OpenAICompatibleRewardModel,
        build_gcr_graph,
        read_trace,
    )
    from rationalrewards.rewardmodel.mock_server import MockServer, free_port

    def draw(prompt: str, seed: int) -> Image.Image:
        return Image.new("RGB", (32, 32), (seed * 40 % 256, 90, 160))

    with MockServer(free_port()) as server:
        critic = OpenAICompatibleRewardModel(server.base_url, "mock-critic")
        context = GCRContext(FunctionGenerator(draw, tmp_path / "images"), critic, trace=tmp_path / "trace.jsonl")
        graph = build_gcr_graph(GCRConfig.preset("deep", max_rounds=2, candidates=1))
        exporter.clear()

        async def twice() -> None:
            for seed in (1, 2):
                await graph.ainvoke({"prompt": "a red square", "seed": seed}, context=context)
            await critic.aclose()

        asyncio.run(twice())
    spans = exporter.get_finished_spans()
    roots = [s for s in spans if s.name == "invoke_agent gcr"]
    assert len(roots) == 2 and all(r.parent is None for r in roots)
    assert roots[0].attributes["gen_ai.operation.name"] == "invoke_agent"
    assert roots[0].attributes["gen_ai.agent.name"] == "gcr"
    traces = {r.context.trace_id for r in roots}
    assert len(traces) == 2
    nodes = [s for s in spans if s.name.startswith("node.")]
    assert nodes and {n.context.trace_id for n in nodes} == traces  # every node inside one of the two runs
    critic_spans = [s for s in spans if s.name == "critic.critique"]
    assert critic_spans
    for call in critic_spans:
        attributes = call.attributes
        assert attributes["gen_ai.operation.name"] == "chat"
        assert attributes["gen_ai.request.model"] == "mock-critic"
        assert attributes["gen_ai.usage.output_tokens"] == 300  # the mock server reports 300 per answer
        assert attributes["gen_ai.usage.input_tokens"] > 0
    assert {e["node"] for e in read_trace(tmp_path / "trace.jsonl")} >= {"generate", "critique", "finish"}


def test_a_caller_span_holds_the_run(exporter: Any, tmp_path: Path) -> None:
    """Inside a caller's span no root is opened: the run's nodes are the caller's descendants."""
    import asyncio

    from opentelemetry import trace

    from rationalrewards import FakeRewardModel, GCRContext, SketchGenerator, build_gcr_graph

    exporter.clear()
    graph = build_gcr_graph()
    context = GCRContext(SketchGenerator(tmp_path), FakeRewardModel())
    with trace.get_tracer("app").start_as_current_span("my-app") as mine:
        asyncio.run(graph.ainvoke({"prompt": "a photo of a cat"}, context=context))
    spans = exporter.get_finished_spans()
    assert not [s for s in spans if s.name == "invoke_agent gcr"]
    assert {s.context.trace_id for s in spans if s.name.startswith("node.")} == {mine.get_span_context().trace_id}

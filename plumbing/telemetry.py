"""OpenTelemetry spans for runs: run -> thread (one item) -> node -> backend call.

Spans carry what a person debugging a run wants (job, item id, round, candidate, scores, abstention reasons, the
endpoint a request went to, attempts) and never image bytes, data URLs or API keys (`safe_attributes`). Export:
- nothing, unless configured: with only the OpenTelemetry API installed every span is a no-op;
- with the `otel` extra, the SDK's standard variables decide: `OTEL_TRACES_EXPORTER` (`otlp`, `console`, `none`, or
  several joined by commas; default `otlp` when `OTEL_EXPORTER_OTLP_ENDPOINT` or `..._TRACES_ENDPOINT` is set, else
  none), `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER` and the `OTEL_EXPORTER_OTLP_*`
  settings. A tracer provider is set up once, unless the application already set its own (then ours are added to the
  application's trace, as a library should). The console exporter writes to stderr, so `--json` output stays one
  object on stdout;
- LangSmith's OTel mode, set with LangSmith's own variables (`LANGSMITH_TRACING=true`, `LANGSMITH_OTEL_ENABLED=true`,
  and `LANGSMITH_OTEL_ONLY=true` to send nothing by LangSmith's own client), adds LangGraph's graph and node spans to
  the same provider; point `OTEL_EXPORTER_OTLP_ENDPOINT` (and `OTEL_EXPORTER_OTLP_HEADERS`) at LangSmith's OTLP
  endpoint, or at any collector.

Attributes: ours under `rr.*`, and beside them OpenTelemetry's GenAI semantic conventions (`gen_ai.operation.name`,
`gen_ai.request.model`, `gen_ai.response.model`, `gen_ai.usage.input_tokens` / `output_tokens` where the backend
reports usage, `gen_ai.agent.name` on a graph run), which LangSmith, Phoenix and Langfuse read into their model and
token columns.

A graph run from Python is one trace: when no span is open, each invocation of a compiled graph opens a root span
(`invoke_agent <graph>`) and every node span is its child (`traced_invocations`).

One run, one trace, across processes: the run span's trace id is derived from the job (its kind, settings without
`shard`, and the whole input before sharding), so the shards of a job on several machines land in one trace; a W3C
`TRACEPARENT` in the environment (as launchers and CI systems set) takes precedence.
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import structlog

from rationalrewards.plumbing.redact import redact

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import SpanProcessor
    from opentelemetry.trace import Span, Tracer
    from opentelemetry.util.types import AttributeValue

log = structlog.get_logger(__name__)
P = ParamSpec("P")
R = TypeVar("R")
_configured = False
_tracer: Tracer | None = None
_SECRET_KEYS = ("key", "token", "secret", "password", "authorization")


def _truthy(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def configure() -> None:
    """Set up export from the environment, once per process (see the module docstring). Called when a job runner is
    made (and by the CLI at start), before LangGraph or LangSmith read their settings."""
    global _configured
    if _configured:
        return
    _configured = True
    exporters = _exporters()
    if not exporters:
        return
    from opentelemetry import trace

    if not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        return  # the application set up its own provider: our spans go there
    try:
        from opentelemetry.sdk.resources import OTELResourceDetector, Resource
        from opentelemetry.sdk.trace import TracerProvider
    except ImportError:
        log.warning("telemetry.no_sdk", hint="pip install 'rationalrewards[otel]' to export spans")
        return
    defaults = Resource({"service.name": "rationalrewards"})  # OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES win
    provider = TracerProvider(resource=defaults.merge(OTELResourceDetector().detect()))  # sampler: OTEL_TRACES_SAMPLER
    for name in exporters:
        processor = _processor(name)
        if processor is not None:
            provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    atexit.register(provider.shutdown)  # flush the last batch when the process ends


def _exporters() -> list[str]:
    """The exporters `OTEL_TRACES_EXPORTER` names; `otlp` by default when an OTLP endpoint is set, else none."""
    named = os.environ.get("OTEL_TRACES_EXPORTER")
    if named is None:
        endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        return ["otlp"] if endpoint else []
    names = [n.strip().lower() for n in named.split(",") if n.strip()]
    return [] if "none" in names else names


def _processor(name: str) -> SpanProcessor | None:
    """The span processor of one exporter name (None, with a warning, for one we cannot make)."""
    import sys

    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SimpleSpanProcessor

    if name == "console":
        return SimpleSpanProcessor(ConsoleSpanExporter(out=sys.stderr))
    if name == "otlp":
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError:
            log.warning("telemetry.no_otlp_exporter", hint="pip install 'rationalrewards[otel]'")
            return None
        # A collector that is down must not hold the process at exit: short export deadlines unless the environment
        # sets its own (OTEL_EXPORTER_OTLP_TIMEOUT, OTEL_BSP_EXPORT_TIMEOUT).
        timeout = None if "OTEL_EXPORTER_OTLP_TIMEOUT" in os.environ else 2.0
        export_ms = None if "OTEL_BSP_EXPORT_TIMEOUT" in os.environ else 2000
        return BatchSpanProcessor(OTLPSpanExporter(timeout=timeout), export_timeout_millis=export_ms)
    log.warning("telemetry.unknown_exporter", exporter=name, known="otlp, console, none")
    return None


def tracer() -> Tracer | None:
    global _tracer
    if _tracer is None:
        try:
            from opentelemetry import trace
        except ImportError:  # the API is a dependency; a stripped install still runs, untraced
            return None
        configure()
        _tracer = trace.get_tracer("rationalrewards")  # a proxy: a provider set later still receives its spans
    return _tracer


def safe_attributes(fields: Mapping[str, object], prefix: str = "rr.") -> dict[str, AttributeValue]:
    """Scalar fields as span attributes: no image bytes or data URLs, nothing named like a secret and every text
    redacted by value (a registered key, a URL's password), long texts cut, small lists of scalars kept, dicts
    flattened one level (`scores.text_faithfulness`)."""
    attributes: dict[str, AttributeValue] = {}
    for key, value in fields.items():
        if any(secret in key.lower() for secret in _SECRET_KEYS):
            continue
        if isinstance(value, Mapping):
            attributes |= safe_attributes({f"{key}.{k}": v for k, v in value.items()}, prefix)
            continue
        if isinstance(value, (list, tuple)):
            if len(value) <= 16 and all(isinstance(v, (str, int, float, bool)) for v in value):
                items = [redact(v[:200]) if isinstance(v, str) else v for v in value]
                if not any(isinstance(v, str) and v.startswith("data:") for v in items):
                    attributes[prefix + key] = [str(v) for v in items] if len({type(v) for v in items}) > 1 else items
            continue
        if isinstance(value, bytes) or value is None:
            continue
        if isinstance(value, str):
            if value.startswith("data:"):
                continue
            value = redact(value[:500])
        if isinstance(value, (str, int, float, bool)):
            attributes[prefix + key] = value
    return attributes


def job_trace_id(job: str, settings: Mapping[str, object], inputs_sha256: str) -> int:
    """A 128-bit trace id shared by every process of one job (its shards included)."""
    import json

    settings = {k: v for k, v in settings.items() if k != "shard"}
    material = json.dumps([job, settings, inputs_sha256], sort_keys=True, default=str)
    return int(hashlib.sha256(material.encode()).hexdigest()[:32], 16) or 1


def _parent_context(trace_id: int) -> Context:
    from opentelemetry import trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    if os.environ.get("TRACEPARENT"):
        return TraceContextTextMapPropagator().extract({"traceparent": os.environ["TRACEPARENT"]})
    parent = trace.SpanContext(
        trace_id=trace_id,
        span_id=(trace_id & 0xFFFFFFFFFFFFFFFF) or 1,  # the job's notional root: the same in every process
        is_remote=True,
        trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED),
    )
    return trace.set_span_in_context(trace.NonRecordingSpan(parent))


def tracing() -> bool:
    """Whether spans go anywhere: a tracer provider has been set (by `configure`, the application or LangSmith).
    Without one every span would be a no-op, and skipping them saves the graph ~2 ms of event-loop CPU per prompt
    (measured in `benchmarks/gcr_overhead.py`)."""
    if tracer() is None:
        return False
    from opentelemetry import trace

    return not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)


@contextmanager
def span(name: str, *, parent_trace_id: int | None = None, **fields: object) -> Iterator[Span | None]:
    """A span (current for the block) with `fields` as safe attributes; a run span passes `parent_trace_id`."""
    if not tracing():
        yield None
        return
    otel = tracer()
    assert otel is not None  # tracing() said so
    context = _parent_context(parent_trace_id) if parent_trace_id is not None else None
    with otel.start_as_current_span(name, context=context, attributes=safe_attributes(fields)) as current:
        yield current


def annotate(**fields: object) -> None:
    """Add fields to the current span (a node's results: scores, stop reason, abstentions)."""
    if not tracing():
        return
    from opentelemetry import trace

    current = trace.get_current_span()
    if current.is_recording():
        current.set_attributes(safe_attributes(fields))


def genai_attributes(
    operation: str,
    *,
    model: str | None = None,
    response_model: str | None = None,
    agent: str | None = None,
    usages: Iterable[Mapping[str, int] | None] = (),
) -> dict[str, AttributeValue]:
    """OpenTelemetry GenAI semantic-convention attributes; token counts summed over `usages` (OpenAI's
    `prompt_tokens` / `completion_tokens`, or `input_tokens` / `output_tokens`), left out when no usage is reported."""
    attributes: dict[str, AttributeValue] = {"gen_ai.operation.name": operation}
    for key, value in (("gen_ai.request.model", model), ("gen_ai.response.model", response_model)):
        if value:
            attributes[key] = redact(value[:200])
    if agent:
        attributes["gen_ai.agent.name"] = agent
    reported = [u for u in usages if u]
    if reported:
        attributes["gen_ai.usage.input_tokens"] = sum(
            int(u.get("prompt_tokens", u.get("input_tokens", 0))) for u in reported
        )
        attributes["gen_ai.usage.output_tokens"] = sum(
            int(u.get("completion_tokens", u.get("output_tokens", 0))) for u in reported
        )
    return attributes


def annotate_genai(operation: str, **fields: Any) -> None:
    """`genai_attributes(operation, **fields)` on the current span."""
    if not tracing():
        return
    from opentelemetry import trace

    current = trace.get_current_span()
    if current.is_recording():
        current.set_attributes(genai_attributes(operation, **fields))


def traced_node(name: str, fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """A graph node that runs inside a `node.<name>` span (the parent of its backend calls). `functools.wraps` keeps
    the signature LangGraph reads to decide what to pass (state, runtime)."""

    @functools.wraps(fn)
    async def node(*args: P.args, **kwargs: P.kwargs) -> R:
        if not tracing():
            return await fn(*args, **kwargs)
        with span(f"node.{name}", node=name):
            return await fn(*args, **kwargs)

    return node


@contextmanager
def root_span(graph: str) -> Iterator[None]:
    """The span of one graph invocation, opened only when tracing is on and no span is current (a caller's span, a
    job's thread span): then the invocation's node spans share one trace instead of each starting its own."""
    if not tracing():
        yield
        return
    from opentelemetry import trace

    if trace.get_current_span().get_span_context().is_valid:
        yield
        return
    with span(f"invoke_agent {graph}", graph=graph) as current:
        if current is not None:
            current.set_attributes(genai_attributes("invoke_agent", agent=graph))
        yield


G = TypeVar("G")
_traced_classes: dict[tuple[type, str], type] = {}


def traced_invocations(graph: G, name: str) -> G:
    """`graph` (a compiled LangGraph graph) with a root span per invocation (`root_span`). Every way of running one
    (`invoke`, `ainvoke`, `stream`, `astream`, `astream_events`, a server's runs) goes through `stream` or `astream`,
    so those two are wrapped, in a subclass that adds nothing else."""
    base = type(graph)
    cls = _traced_classes.get((base, name))
    if cls is None:

        def stream(self: Any, *args: Any, **kwargs: Any) -> Iterator[Any]:
            with root_span(name):
                yield from base.stream(self, *args, **kwargs)  # type: ignore[attr-defined]

        async def astream(self: Any, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
            with root_span(name):
                async for chunk in base.astream(self, *args, **kwargs):  # type: ignore[attr-defined]
                    yield chunk

        cls = type(base.__name__, (base,), {"stream": stream, "astream": astream, "__module__": base.__module__})
        _traced_classes[(base, name)] = cls
    graph.__class__ = cls
    return graph

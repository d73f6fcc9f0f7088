"""Logging, configured once: readable console lines for people, JSON lines with `--log-json`. Always to stderr, so
`--json` output on stdout stays one clean object. Run, thread, sample and round ids are bound through contextvars."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping

import structlog
from structlog.contextvars import bind_contextvars, bound_contextvars, clear_contextvars

from rationalrewards.plumbing.redact import redact

_configured = False


def _redact_event(logger: object, method: str, event: MutableMapping[str, object]) -> MutableMapping[str, object]:
    """Every string in a log event goes through `redact`: a server may echo credentials in an error text."""
    return {key: redact(value) if isinstance(value, str) else value for key, value in event.items()}


def configure_logging(*, json: bool = False, level: str = "INFO", force: bool = False) -> None:
    global _configured
    if _configured and not force:
        return
    processors: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso"),
        _redact_event,
    ]
    renderer = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=processors + [renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    _configured = True


__all__ = ["bind_contextvars", "bound_contextvars", "clear_contextvars", "configure_logging"]

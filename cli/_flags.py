"""What every command shares for its output: one JSON object on stdout under `--json`, trainers' prints kept off it."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Mapping
from contextlib import AbstractContextManager


def emit(payload: Mapping[str, object]) -> None:
    """The one JSON object a command prints under `--json`."""
    sys.stdout.write(json.dumps(payload, ensure_ascii=False, default=str) + "\n")


def stdout_for_json(as_json: bool) -> AbstractContextManager[object]:
    """Under --json, what trainers print goes to stderr so stdout stays one JSON object."""
    return contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext()

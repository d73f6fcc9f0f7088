"""What the training and experiment commands share: stdout kept to one JSON object under `--json`."""

from __future__ import annotations

import contextlib
import sys
from typing import Any


def stdout_for_json(as_json: bool) -> Any:
    """Under --json, what trainers print goes to stderr so stdout stays one JSON object."""
    return contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext()

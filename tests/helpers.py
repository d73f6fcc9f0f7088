"""Helpers for tests that start real servers on loopback."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from rationalrewards.rewardmodel.mock_server import free_port  # noqa: F401  (re-exported for tests)

PYTHON = sys.executable


def run_cli(
    *args: str,
    check: bool = False,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 600,
) -> subprocess.CompletedProcess[str]:
    """`rationalrewards ARGS` as users run it: a subprocess, output captured. `check`: assert it exited 0."""
    result = subprocess.run(
        [PYTHON, "-m", "rationalrewards", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def wait_for_http(url: str, process: subprocess.Popen | None = None, timeout: float = 120.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before answering {url}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer within {timeout}s")


def every_score_na(request):  # a `py:` critic for the CLI tests
    """A critic that judges every aspect N/A: nothing a policy could score (it used to crash the table view)."""
    return dict.fromkeys(a.value for a in request.task.aspects)

"""`rationalrewards ui`: the page starts with no set-up, a click shows rounds within seconds (in headless Chromium,
clicking as a person does), and the same runs are reachable from Gradio's own client."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from browser import Browser, require_chromium

from helpers import free_port, wait_for_http

pytest.importorskip("gradio")


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> str:
    work = tmp_path_factory.mktemp("ui")
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "rationalrewards", "ui", "--port", str(port), "--work-dir", str(work / "images")],
        cwd=work,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=os.environ | {"GRADIO_ANALYTICS_ENABLED": "False"},
    )
    url = f"http://127.0.0.1:{port}/"
    wait_for_http(url, process, timeout=120)
    yield url
    process.terminate()
    process.wait(10)


def test_a_click_shows_each_round_within_seconds(page: str, tmp_path: Path) -> None:
    with Browser(require_chromium(), tmp_path / "profile", height=1000) as chrome:
        chrome.open(page)
        chrome.wait_for("document.querySelector('#refine') !== null", timeout=60)
        started = time.monotonic()
        chrome.evaluate("document.querySelector('#refine').click()")
        status = chrome.wait_for(
            "(document.querySelector('#status') || {}).innerText?.includes('stopped') && "
            "document.querySelector('#status').innerText",
            timeout=60,
        )
        seconds = time.monotonic() - started
        assert "round" in status and seconds < 30, (status, seconds)
        images = chrome.evaluate("document.querySelectorAll('#rounds img').length")
        critique = chrome.evaluate("document.querySelector('#critique').innerText")
        assert images >= 1 and "text faithfulness" in critique and "reward" in critique
        shot = chrome.screenshot(tmp_path / "ui.png")
        assert shot.stat().st_size > 30_000


def test_gradio_client_runs_refine_and_critique(page: str, tmp_path: Path) -> None:
    from gradio_client import Client

    client = Client(page, verbose=False)
    job = client.submit("a photo of two red apples", "sketch", "sketch", "paper", 3, None, "", api_name="/refine")
    updates = list(job)
    gallery, critique, status = job.result()
    assert len(updates) >= 2 and gallery and "stopped" in status and "| aspect | score |" in critique
    kept = gallery[-1]["image"]  # an image the sketch world made: its critic judges it from the upload alone
    from gradio_client import handle_file

    judged = client.predict(handle_file(kept), "a photo of two red apples", "sketch", api_name="/critique")
    assert "text faithfulness" in judged
    from PIL import Image

    Image.new("RGB", (32, 32), (200, 40, 40)).save(tmp_path / "photo.png")  # not made by the sketch world
    foreign = client.predict(handle_file(str(tmp_path / "photo.png")), "a cat", "sketch", api_name="/critique")
    assert "The critic abstained" in foreign and "no scene graph for this image" in foreign


def test_an_edit_the_world_cannot_read_stops_with_its_reason(tmp_path: Path) -> None:
    import asyncio

    from PIL import Image

    from rationalrewards.integrations.ui import refine_stream

    Image.new("RGB", (32, 32), (10, 200, 10)).save(tmp_path / "photo.png")  # no scene graph: the sketch world refuses

    async def run() -> list[tuple[object, str, str]]:
        args = ("make it red", "sketch", "sketch", "paper", 1, str(tmp_path / "photo.png"), "", str(tmp_path / "w"))
        return [update async for update in refine_stream(*args)]

    *_, (gallery, _, status) = asyncio.run(run())
    assert status.startswith("**Stopped:**") and "sketch world" in status and gallery == []

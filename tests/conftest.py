"""Shared fixtures. Real network is blocked: only loopback servers the tests start themselves are reachable."""

from __future__ import annotations

import ipaddress
import os
import socket
from pathlib import Path

import pytest

from helpers import free_port

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

_real_connect = socket.socket.connect


def _loopback_only(self: socket.socket, address):
    if self.family in (socket.AF_INET, socket.AF_INET6):
        host = address[0]
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = host == "localhost"
        if not loopback:
            raise ConnectionRefusedError(f"tests may only reach loopback servers, not {host}")
    return _real_connect(self, address)


socket.socket.connect = _loopback_only  # type: ignore[method-assign]


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture(scope="session")
def tiny_vlm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from rationalrewards.rewardmodel.tiny import save_tiny_vlm

    return save_tiny_vlm(tmp_path_factory.mktemp("tiny-qwen2-vl"), "qwen2_vl")


@pytest.fixture(scope="session")
def smollm2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from rationalrewards.rewardmodel.tiny import export_smollm2

    return export_smollm2(tmp_path_factory.mktemp("smollm2"))


@pytest.fixture(scope="session")
def tiny_text_student_dir(tmp_path_factory: pytest.TempPathFactory, smollm2_dir: Path) -> Path:
    """A 4-layer random Llama with SmolLM2's tokenizer: pipelines that train students run in seconds."""
    from rationalrewards.rewardmodel.tiny import save_tiny_causal_lm

    return save_tiny_causal_lm(tmp_path_factory.mktemp("tiny-text-student"), smollm2_dir)


@pytest.fixture
def png_file(tmp_path: Path) -> Path:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (96, 64), "white")
    ImageDraw.Draw(image).ellipse((20, 10, 60, 50), fill="red")
    path = tmp_path / "image.png"
    image.save(path)
    return path

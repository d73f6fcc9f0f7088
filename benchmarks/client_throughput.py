"""Client throughput against a loopback OpenAI-compatible server with a fixed latency (issue: foundation, perf).

Starts `rewardmodel.mock_server` in its own process answering every request after `--latency` seconds with a canned
critique, then critiques `--n` images (512x512 PNG) at `--concurrency`. Prints achieved throughput as a ratio of the
ideal (concurrency / latency) and the client's own per-request cost (PNG data-URL encoding + message building +
parsing), measured in-process without the server.

    .venv/bin/python benchmarks/client_throughput.py [--n 1000] [--concurrency 64] [--latency 0.2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from rationalrewards.rewardmodel.backends.openai_compat import OpenAICompatibleRewardModel
from rationalrewards.rewardmodel.images import image_ref_from_path
from rationalrewards.rewardmodel.mock_server import canned_critique_text, free_port
from rationalrewards.rewardmodel.parsing import parse_critique
from rationalrewards.rewardmodel.prompts import build_messages
from rationalrewards.rewardmodel.schemas import Critique, CritiqueRequest


def _image(path: Path) -> Path:
    # A smooth gradient with mild noise compresses like a real generated image (a few hundred KB as PNG).
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:512, 0:512]
    pixels = np.stack([x / 2, y / 2, (x + y) / 4], axis=-1) + rng.normal(0, 6, (512, 512, 3))
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path)
    return path


def client_overhead_ms(request: CritiqueRequest, repeats: int = 200) -> tuple[float, float]:
    text = canned_critique_text()
    start = time.perf_counter()
    for _ in range(repeats):
        build_messages(request)
    encode = (time.perf_counter() - start) / repeats * 1000
    start = time.perf_counter()
    for _ in range(repeats):
        parse_critique(text, "t2i")
    parse = (time.perf_counter() - start) / repeats * 1000
    return encode, parse


async def run(n: int, concurrency: int, base_url: str, request: CritiqueRequest) -> tuple[float, int]:
    client = OpenAICompatibleRewardModel(base_url, "mock-critic", concurrency=concurrency, timeout=60)
    await client.critique([request])  # warm the connection pool and model name
    start = time.perf_counter()
    results = await client.critique([request] * n)
    elapsed = time.perf_counter() - start
    await client.aclose()
    return elapsed, sum(isinstance(r, Critique) for r in results)


async def run_bare(n: int, concurrency: int, base_url: str, body: bytes) -> float:
    """The same traffic from a bare aiohttp loop (no messages, parsing or retries): this machine's transport floor."""
    import aiohttp

    semaphore = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:

        async def one() -> bytes:
            async with semaphore, session.post(base_url + "/chat/completions", data=body) as response:
                return await response.read()

        await one()
        start = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(n)))
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.2)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        image_path = _image(Path(tmp) / "image.png")
        size_kib = image_path.stat().st_size / 1024
        request = CritiqueRequest(
            prompt="a photo of four clocks on a wooden table", image=image_ref_from_path(image_path)
        )
        port = free_port()
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "rationalrewards.rewardmodel.mock_server",
                "--port",
                str(port),
                "--latency",
                str(args.latency),
                "--no-validate",
            ]
        )
        try:
            asyncio.run(OpenAICompatibleRewardModel(f"http://127.0.0.1:{port}").wait_until_healthy(30))
            elapsed, ok = asyncio.run(run(args.n, args.concurrency, f"http://127.0.0.1:{port}", request))
            body = json.dumps({"messages": build_messages(request)}).encode()
            bare = asyncio.run(run_bare(args.n, args.concurrency, f"http://127.0.0.1:{port}/v1", body))
        finally:
            server.terminate()
            server.wait()
        encode_ms, parse_ms = client_overhead_ms(request)

    ideal = args.concurrency / args.latency
    achieved = args.n / elapsed
    print(f"image: 512x512 PNG, {size_kib:.0f} KiB")
    print(
        f"requests: {args.n} ({ok} parsed critiques), concurrency {args.concurrency}, server latency {args.latency * 1000:.0f} ms"
    )
    print(f"elapsed: {elapsed:.2f} s; throughput {achieved:.1f} req/s; ideal {ideal:.1f} req/s")
    print(f"ratio_of_ideal: {achieved / ideal:.3f}  (target >= 0.90)")
    print(
        f"bare aiohttp loop, same bodies, same run: ratio {args.n / bare / ideal:.3f} (the transport floor here; "
        f"{-(-args.n // args.concurrency)} waves of {args.concurrency} "
        f"cap any client at {args.n / args.concurrency / -(-args.n // args.concurrency):.3f})"
    )
    print(
        f"client overhead per request: encode+messages {encode_ms:.2f} ms, parse {parse_ms:.2f} ms, "
        f"total {encode_ms + parse_ms:.2f} ms  (target < 5 ms)"
    )


if __name__ == "__main__":
    main()

"""Scaling out over served generators (issue 14): one GCR suite against 1, 2 and 4 `serve-generator` processes.

Each server is the sketch world behind 300 ms per image, one image at a time (`serve-generator --latency 0.3`: a
stand-in for a busy GPU), so one server makes at most 3.3 images/s and N servers at most N times that. The run uses
the multi-endpoint client (`ServedGenerator` over every server's URL), the sketch critic in process, the `paper` preset
and concurrency 8 per server. Prints images/s per server count and its ratio to linear scaling (N x the one-server
figure; target >= 0.85 at 4). Then the 4-server run again with one server killed (SIGKILL) a third of the way in:
the share of the requests that had been routed to it that still completed elsewhere (target: all), and whether
every prompt finished.

    .venv/bin/python benchmarks/scale_out.py [--n 48] [--latency 0.3] [--servers 1 2 4]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rationalrewards.agents.refiner import CriticRefiner
from rationalrewards.agents.served_generator import ServedGenerator
from rationalrewards.graphs.gcr_config import GCRConfig
from rationalrewards.plumbing.http import HttpEndpoints
from rationalrewards.rewardmodel.mock_server import free_port
from rationalrewards.runtime.gcr_runner import GCRRunner
from rationalrewards.sketch.oracle import SketchOracle
from rationalrewards.sketch.suites import make_suite


def start_servers(count: int, latency: float, work: Path) -> list[tuple[subprocess.Popen[bytes], str]]:
    servers = []
    for k in range(count):
        port = free_port()
        command = [sys.executable, "-m", "rationalrewards", "serve-generator", "sketch", "--port", str(port)]
        command += ["--latency", str(latency), "--work-dir", str(work / f"server{k}")]
        servers.append((subprocess.Popen(command, stderr=subprocess.DEVNULL), f"http://127.0.0.1:{port}"))
    asyncio.run(HttpEndpoints([url for _, url in servers]).wait_until_healthy(60, every=True))
    return servers


def run_suite(urls: list[str], out: Path, rows: list[dict[str, Any]], kill: Any = None) -> tuple[float, Any, Any]:
    """(seconds, summary, the generator) for one GCR run; `kill` = (delay, function of the generator) to schedule."""
    generator = ServedGenerator(urls, out / "images", concurrency=8 * len(urls), max_retries=5, retry_max_wait=0.2)
    runner = GCRRunner(
        out,
        generator=generator,
        critic=SketchOracle(),
        refiner=CriticRefiner(),
        config=GCRConfig.preset("paper"),
        concurrency=8 * len(urls),
        progress=False,
    )

    async def go() -> dict[str, Any]:
        if kill is not None:
            asyncio.get_running_loop().call_later(kill[0], kill[1], generator)
        return await runner.run(rows)

    started = time.perf_counter()
    summary = asyncio.run(go())
    seconds = time.perf_counter() - started
    return seconds, summary, generator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=48)
    parser.add_argument("--latency", type=float, default=0.3)
    parser.add_argument("--servers", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args()
    rows = [row | {"seed": i} for i, row in enumerate(make_suite(args.n, seed=23))]
    rates: dict[int, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for count in args.servers:
            servers = start_servers(count, args.latency, work / f"s{count}")
            try:
                seconds, summary, _ = run_suite([url for _, url in servers], work / f"run{count}", rows)
            finally:
                for process, _ in servers:
                    process.terminate()
                    process.wait()
            images = int(summary["generations"])
            rates[count] = images / seconds
            print(f"{count} server(s): {images} images in {seconds:.1f} s = {rates[count]:.2f} images/s")
        one = rates[min(rates)] / min(rates)
        for count, rate in rates.items():
            print(
                f"  ratio to linear scaling at {count}: {rate / (count * one):.3f}"
                + ("  (target >= 0.85)" * (count == 4))
            )
        count = max(args.servers)
        servers = start_servers(count, args.latency, work / "kill")
        victim_process, victim_url = servers[0]
        expected = args.n * args.latency / count  # about how long the run takes

        def kill(generator: ServedGenerator) -> None:
            os.kill(victim_process.pid, signal.SIGKILL)
            kill.in_flight = next(e.in_flight for e in generator.http.endpoints if victim_url in e.url)  # type: ignore[attr-defined]

        try:
            seconds, summary, generator = run_suite(
                [url for _, url in servers], work / "killed", rows, (expected / 3, kill)
            )
        finally:
            for process, _ in servers:
                process.terminate()
                process.wait()
        victim = next(e for e in generator.http.endpoints if victim_url in e.url)
        lost = victim.sent - victim.completed  # requests that failed on the killed server (it answered the rest)
        failed = int(summary["failed"])  # a prompt fails only when a request exhausts its retries
        print(
            f"killed one of {count} servers at {expected / 3:.1f} s with {kill.in_flight} request(s) in flight: "  # type: ignore[attr-defined]
            f"{victim.sent} requests went to it, {victim.completed} answered before it died, {lost} failed there"
        )
        print(
            f"  prompts finished {summary['finished']}/{args.n}, failed {failed}; {int(summary['generations'])} images "
            f"in {seconds:.1f} s; share of the killed server's failed requests completed elsewhere: "
            f"{(lost - failed) / lost if lost else 1.0:.3f}  (target: all)"
        )


if __name__ == "__main__":
    main()

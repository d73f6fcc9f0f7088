"""`serve-refiner` against the same Generate-Critique-Refine run in-process, side by side (issue: what people call).

1. Overhead: `--n` sketch prompts refined with the `deep` preset, 32 requests in flight through the official `openai`
   client to `serve-refiner` on loopback, against the same prompts and seeds through the graph in-process with 32
   runs in flight. Prints both wall times and their ratio (HTTP over in-process; the server's encoding, transport and
   validation are the difference).
2. What an application gets: the same prompts through `serve-generator` alone and through `serve-refiner`, each
   answer graded against its GenEval spec by the sketch world's grader (from the ground truth sent with the image).

    .venv/bin/python benchmarks/refiner_server.py [--n 96] [--concurrency 32] [--graded 48]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rationalrewards.agents.suite import SuiteRow
from rationalrewards.agents.world import attach_ground_truth, world_named
from rationalrewards.graphs.gcr import GCRContext, build_gcr_graph
from rationalrewards.graphs.gcr_config import GCRConfig
from rationalrewards.rewardmodel.images import image_ref_from_path
from rationalrewards.rewardmodel.mock_server import free_port


def start(args: list[str], cwd: Path) -> tuple[subprocess.Popen[bytes], str]:
    import httpx

    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "rationalrewards", *args, "--port", str(port)], cwd=cwd)
    for _ in range(300):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process, f"http://127.0.0.1:{port}/v1"
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit("server did not start")


async def through_http(url: str, rows: list[SuiteRow], concurrency: int) -> list[dict[str, object]]:
    import openai

    slots = asyncio.Semaphore(concurrency)
    async with openai.AsyncOpenAI(base_url=url, api_key="unused", timeout=600, max_retries=0) as client:

        async def one(row: SuiteRow) -> dict[str, object]:
            async with slots:
                answer = await client.images.generate(model="any", prompt=row.prompt, extra_body={"seed": row.seed})
                return answer.data[0].model_dump()

        return list(await asyncio.gather(*(one(r) for r in rows)))


async def in_process(rows: list[SuiteRow], concurrency: int, images: Path) -> None:
    world = world_named("sketch")
    context = GCRContext(generator=world.generator(images), critic=world.critic(image_dirs=[images]))
    graph = build_gcr_graph(GCRConfig.preset("deep"))
    slots = asyncio.Semaphore(concurrency)

    async def one(row: SuiteRow) -> None:
        async with slots:
            await graph.ainvoke({"prompt": row.prompt, "seed": row.seed}, context=context)

    await asyncio.gather(*(one(r) for r in rows))


def graded(answers: list[dict[str, object]], rows: list[SuiteRow], folder: Path) -> float:
    grader = world_named("sketch").grader()
    correct = 0
    for k, (item, row) in enumerate(zip(answers, rows, strict=True)):
        png = base64.b64decode(str(item["b64_json"]))
        path = folder / f"{k}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png)
        attach_ground_truth(path, json.dumps(item["scene"]), hashlib.sha256(png).hexdigest())
        grade = grader.grade(row, row.prompt, image_ref_from_path(path), None)
        correct += bool(grade and grade.correct)
    return correct / len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=96)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--graded", type=int, default=48)
    args = parser.parse_args()
    rows = [SuiteRow.model_validate(r) for r in world_named("sketch").suite("t2i", args.n, seed=9)]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        start_in = time.perf_counter()
        asyncio.run(in_process(rows, args.concurrency, work / "inproc"))
        inproc = time.perf_counter() - start_in
        refiner, url = start(["serve-refiner", "--preset", "deep", "--work-dir", str(work / "ref")], work)
        try:
            start_http = time.perf_counter()
            refined = asyncio.run(through_http(url, rows, args.concurrency))
            http = time.perf_counter() - start_http
        finally:
            refiner.terminate()
            refiner.wait()
        generator, gen_url = start(["serve-generator", "sketch", "--work-dir", str(work / "gen")], work)
        try:
            plain = asyncio.run(through_http(gen_url, rows[: args.graded], args.concurrency))
        finally:
            generator.terminate()
            generator.wait()
        refined_accuracy = graded(refined[: args.graded], rows[: args.graded], work / "graded-ref")
        plain_accuracy = graded(plain, rows[: args.graded], work / "graded-gen")
    print(f"{args.n} prompts, deep preset, {args.concurrency} in flight, sketch generator and oracle critic")
    print(f"in-process graph: {inproc:.2f} s; serve-refiner over HTTP: {http:.2f} s")
    print(f"overhead_ratio_http_to_in_process: {http / inproc:.3f} ({1000 * (http - inproc) / args.n:.1f} ms of wall time "
          "per request at this concurrency; client and server share this machine's cores)")  # fmt: skip
    print(f"GenEval-style accuracy on {args.graded} prompts: serve-generator {plain_accuracy:.3f}, "
          f"serve-refiner {refined_accuracy:.3f}")  # fmt: skip


if __name__ == "__main__":
    main()

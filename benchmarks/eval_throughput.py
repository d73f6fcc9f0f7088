"""`eval` through an HTTP critic: pairs per second as a ratio of the ideal, against a loopback critic with 300 ms
latency at concurrency 64 (issue: real data in).

Starts `rewardmodel.mock_server` in its own process (every comparison answered after `--latency` seconds), writes
`--n` pairs of 256x256 PNGs as a Parquet file with image structs (the shape public sets publish), and runs the eval
job over it as `rationalrewards eval --data FILE --critic URL --concurrency 64` does: streamed reading, image
encoding, the requests, parsing and one `judgements.jsonl` line per pair. Prints the judging phase's throughput and
the whole job's (reading the figures back and the HTML report included), each as a ratio of concurrency / latency.

    .venv/bin/python benchmarks/eval_throughput.py [--n 2000] [--concurrency 64] [--latency 0.3]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from rationalrewards.rewardmodel.backends.openai_compat import OpenAICompatibleRewardModel
from rationalrewards.rewardmodel.mock_server import free_port
from rationalrewards.runtime.jobs import EvalJob, eval_job


def write_pairs(path: Path, n: int) -> Path:
    rng = random.Random(0)
    pool = []
    for _ in range(40):
        buffer = io.BytesIO()
        Image.new("RGB", (256, 256), tuple(rng.randrange(256) for _ in range(3))).save(buffer, "PNG")
        pool.append({"bytes": buffer.getvalue(), "path": None})
    image = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    schema = pa.schema([("caption", pa.string()), ("jpg_0", image), ("jpg_1", image), ("label", pa.string())])
    table = pa.table(
        {
            "caption": [f"a photo of {rng.randint(2, 4)} clocks" for _ in range(n)],
            "jpg_0": [rng.choice(pool) for _ in range(n)],
            "jpg_1": [rng.choice(pool) for _ in range(n)],
            "label": [rng.choice("AB") for _ in range(n)],
        },
        schema=schema,
    )
    pq.write_table(table, path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.3)
    args = parser.parse_args()
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "rationalrewards.rewardmodel.mock_server", "--port", str(port), "--latency",
         str(args.latency), "--no-validate", "--responder", "parrot"]
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        asyncio.run(OpenAICompatibleRewardModel(url).wait_until_healthy(30))
        with tempfile.TemporaryDirectory() as tmp:
            data = write_pairs(Path(tmp) / "pairs.parquet", args.n)
            job = EvalJob(
                data=data,
                columns="prompt=caption,image_a=jpg_0,image_b=jpg_1",
                critic=url,
                model="mock-critic",
                concurrency=args.concurrency,
                out=Path(tmp) / "eval",
                progress=False,
            )
            start = time.perf_counter()
            result = eval_job(job)
            whole = time.perf_counter() - start
            lines = (Path(tmp) / "eval" / "judgements.jsonl").stat().st_mtime
            first = (Path(tmp) / "eval" / "run.json").stat().st_mtime
            judging = lines - first
    finally:
        server.terminate()
        server.wait()
    ideal = args.concurrency / args.latency
    print(f"pairs: {args.n} ({result['judged']} judged, {result['abstentions']} abstentions), concurrency "
          f"{args.concurrency}, critic latency {args.latency * 1000:.0f} ms; ideal {ideal:.1f} pairs/s")  # fmt: skip
    print(f"judging (manifest written -> last judgement): {judging:.2f} s, {args.n / judging:.1f} pairs/s, "
          f"ratio_of_ideal {args.n / judging / ideal:.3f}  (target >= 0.90)")  # fmt: skip
    print(f"whole job (reading, judging, figures, report): {whole:.2f} s, ratio {args.n / whole / ideal:.3f}")
    print(f"waves: {-(-args.n // args.concurrency)} of {args.concurrency} cap any client at "
          f"{args.n / args.concurrency / -(-args.n // args.concurrency):.3f}")  # fmt: skip


if __name__ == "__main__":
    main()

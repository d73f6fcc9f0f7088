"""`eval` streams: peak memory of an evaluation over 10,000 and over 100,000 rows of one Parquet file, side by side
(issue: real data in). Each run is its own process (`rationalrewards eval --data FILE --critic fake`), its peak RSS
read from the kernel; the images are distinct PNG bytes in `{bytes, path}` structs, as public sets store them. Prints both
peaks and their ratio (flat: near 1; a reader that loads the file would grow ten times with it).

    .venv/bin/python benchmarks/eval_memory.py [--small 10000] [--large 100000]
"""

from __future__ import annotations

import argparse
import io
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image


def _png(rng: random.Random) -> dict[str, object]:
    """A distinct 24x24 noise image (about 1.8 kB as PNG: noise does not compress), so the file's size grows with it."""
    buffer = io.BytesIO()
    Image.frombytes("RGB", (24, 24), rng.randbytes(24 * 24 * 3)).save(buffer, "PNG")
    return {"bytes": buffer.getvalue(), "path": None}


def write(path: Path, rows: int) -> Path:
    rng = random.Random(rows)
    image = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    schema = pa.schema([("prompt", pa.string()), ("image_a", image), ("image_b", image), ("label", pa.string())])
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, rows, 5000):
            n = min(5000, rows - start)
            writer.write_table(
                pa.table(
                    {
                        "prompt": [f"prompt {start + i}" for i in range(n)],
                        "image_a": [_png(rng) for _ in range(n)],
                        "image_b": [_png(rng) for _ in range(n)],
                        "label": ["A" if i % 2 else "B" for i in range(n)],
                    },
                    schema=schema,
                ),
                row_group_size=1000,
            )
    return path


def peak_rss_mb(data: Path, out: Path) -> tuple[float, float]:
    """Peak RSS (MB) and seconds of one `eval` process over `data`."""
    command = [sys.executable, "-m", "rationalrewards", "eval", "--data", str(data), "--critic", "fake",
               "--concurrency", "64", "--out", str(out), "--json"]  # fmt: skip
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    start = time.perf_counter()
    pid = subprocess.Popen(command, stdout=subprocess.DEVNULL, env=env).pid
    _, status, usage = os.wait4(pid, 0)
    if status != 0:
        raise SystemExit(f"eval over {data} failed ({status})")
    return usage.ru_maxrss / 1024, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=100_000)
    args = parser.parse_args()
    _ = resource  # ru_maxrss is in kilobytes on Linux
    with tempfile.TemporaryDirectory() as tmp:
        results = {}
        for rows in (args.small, args.large):
            data = write(Path(tmp) / f"pairs-{rows}.parquet", rows)
            peak, seconds = peak_rss_mb(data, Path(tmp) / f"eval-{rows}")
            results[rows] = peak
            print(
                f"{rows:>7} rows ({data.stat().st_size / 2**20:.0f} MiB Parquet): peak RSS {peak:.0f} MB, {seconds:.0f} s"
            )
    print(
        f"peak_ratio_large_to_small: {results[args.large] / results[args.small]:.3f}  (flat: near 1; rows x{args.large / args.small:.0f})"
    )


if __name__ == "__main__":
    main()

"""Count `Any` in the library (every use of the name: annotations and imports), now and at another commit, per
package. `python tools/count_any.py --against 854c498` prints both side by side; the library is every folder the
package is built from, plus (at older commits) the folders that were the library then."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ("rationalrewards", "plumbing", "rewardmodel", "agents", "sketch", "graphs", "runtime", "training",
           "experiments", "cli")  # fmt: skip
_ANY = re.compile(r"\bAny\b")


def _files(ref: str | None) -> list[str]:
    command = ["git", "ls-tree", "-r", "--name-only", ref] if ref else ["git", "ls-files"]
    names = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    return [n for n in names if n.endswith(".py") and n.split("/")[0] in LIBRARY]


def _text(name: str, ref: str | None) -> str:
    if ref is None:
        return (ROOT / name).read_text()
    return subprocess.run(["git", "show", f"{ref}:{name}"], cwd=ROOT, capture_output=True, text=True, check=True).stdout


def count(ref: str | None) -> Counter[str]:
    per_package: Counter[str] = Counter()
    for name in _files(ref):
        per_package[name.split("/")[0]] += len(_ANY.findall(_text(name, ref)))
    return per_package


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--against", help="a commit to count beside the working tree")
    args = parser.parse_args()
    now = count(None)
    before = count(args.against) if args.against else Counter()
    for package in sorted(set(now) | set(before)):
        print(f"{package:<16} {before.get(package, ''):>6} {now[package]:>6}")
    total_now, total_before = sum(now.values()), sum(before.values())
    print(f"{'total':<16} {total_before or '':>6} {total_now:>6}")
    if args.against:
        print(f"ratio now / {args.against}: {total_now / total_before:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

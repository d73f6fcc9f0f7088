"""Lay out `build/typecheck/rationalrewards/` as the installed package looks, with links to the repository's folders,
so mypy checks the real files under their installed module names (mypy cannot follow setuptools' `package-dir`
mapping of an editable install). The mapping is read from pyproject.toml; the tree is rebuilt on every run and never
committed."""

from __future__ import annotations

import shutil
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    mapping = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    tree = ROOT / "build" / "typecheck"
    if tree.exists():
        shutil.rmtree(tree)
    package = tree / "rationalrewards"
    package.mkdir(parents=True)
    for item in (ROOT / mapping["rationalrewards"]).iterdir():
        if item.name != "__pycache__":
            (package / item.name).symlink_to(item)
    for name, folder in mapping.items():
        if name != "rationalrewards":
            (package / name.removeprefix("rationalrewards.")).symlink_to(ROOT / folder, target_is_directory=True)
    print(tree)
    return 0


if __name__ == "__main__":
    sys.exit(main())

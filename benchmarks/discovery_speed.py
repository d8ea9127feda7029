"""Discovery cost of per-file configuration and .gitignore matching.

    python benchmarks/discovery_speed.py [--dirs 200] [--files 10] [--runs 7]

Builds a git repository of ``--dirs`` packages of ``--files`` small Python files, with a root
``.gitignore`` (5 patterns) and one ``.gitignore`` in every tenth package, then times
``discover()`` (median of ``--runs``, in this process):

- one configuration, .gitignore off (the v1 behaviour);
- one configuration, .gitignore on;
- per-file configuration (a ``pyproject.toml`` with ``[tool.esper-lint]`` in every tenth
  package, found through ``ConfigResolver``), .gitignore on.

Prints the times and the ratios to the first.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from esper_lint.config import ConfigResolver
from esper_lint.discovery import discover


def build(root: Path, dirs: int, files: int) -> None:
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / ".gitignore").write_text("*.log\nbuild_out/\n*_generated.py\n/scratch\n.env\n")
    for index in range(dirs):
        package = root / f"pkg{index:04d}"
        package.mkdir()
        for number in range(files):
            (package / f"m{number}.py").write_text("x = 1\n")
        if index % 10 == 0:
            (package / ".gitignore").write_text("m9.py\n!keep.py\n")
            (package / "pyproject.toml").write_text("[tool.esper-lint]\nexclude = ['m8.py']\n")


def median_time(action: Callable[[], int], runs: int) -> tuple[float, int]:
    times, count = [], 0
    for _ in range(runs):
        start = time.perf_counter()
        count = action()
        times.append(time.perf_counter() - start)
    return statistics.median(times), count


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dirs", type=int, default=200)
    parser.add_argument("--files", type=int, default=10)
    parser.add_argument("--runs", type=int, default=7)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        build(root, options.dirs, options.files)

        def plain() -> int:
            return len(discover([root], (), root, respect_gitignore=False).files)

        def gitignore() -> int:
            return len(discover([root], (), root).files)

        def per_file() -> int:
            resolver = ConfigResolver(cwd=root)
            default = resolver.default
            found = discover([root], (), default.root, config_for=resolver.for_path)
            return len(found.files)

        base, base_count = median_time(plain, options.runs)
        print(f"{options.dirs * options.files} files")
        print(f"one config, no .gitignore: {base * 1000:7.1f} ms  ({base_count} files)  1.00x")
        for name, action in (("one config, .gitignore", gitignore), ("per-file config", per_file)):
            elapsed, count = median_time(action, options.runs)
            ratio = elapsed / base
            print(f"{name + ':':27}{elapsed * 1000:7.1f} ms  ({count} files)  {ratio:.2f}x")


if __name__ == "__main__":
    main()

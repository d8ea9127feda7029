"""Where a cold esper-lint run spends its time, stage by stage, in one process.

    python benchmarks/lint_profile.py ROOT [--jobs 1] [--json stages.json]

Run in a fresh interpreter (``lint_speed.py --stages`` starts one per corpus): it first times
the import of libcst and of the analysis (what a cold CLI run pays on its first candidate), then
runs ``lint_paths`` over ``ROOT`` with a fresh cache directory and ``--jobs 1``, with a timer
around each stage's function. The timers are exclusive: time spent in a timed function called
from another timed function counts for the inner one only (a parse for a project summary made
while deciding candidacy counts as a parse), so the stages add up to at most the run.

The stages are found by name (module attribute or class method); the library is not changed.
A function that no longer exists, or that the run never called, is reported as ``n/a``, so the
profile survives refactors of ``esper_lint`` (update ``STAGES`` to follow them).
"""

from __future__ import annotations

import argparse
import functools
import importlib
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# (stage, "module:attribute" or "module:Class.method", what it covers), in the order of a run.
STAGES: tuple[tuple[str, str, str], ...] = (
    ("discovery", "esper_lint.engine:discover", "walking the tree, excludes, .gitignore"),
    (
        "read + hash + cache lookup",
        "esper_lint.engine:_Run.visit",
        "per file: open/read, blake2b, cache lookups (what the stages below leave of visit)",
    ),
    ("prefilter (byte scan)", "esper_lint.prefilter:candidate_predicate", "the candidate test"),
    (
        "candidacy through project imports",
        "esper_lint.engine:_Run.candidate",
        "the rest of candidacy: noqa scan, imports of project modules that offer a call",
    ),
    (
        "CPython depth check",
        "esper_lint.checker:_cpython_verdict",
        "CPython's parse (ast.parse) before libcst; its tree also plans the partial parse",
    ),
    (
        "partial-parse plan",
        "esper_lint.partial:blank_unrelated",
        "which top-level definitions to blank before libcst parses a candidate",
    ),
    ("libcst parse", "libcst:parse_module", "libcst.parse_module, files and project summaries"),
    ("analysis", "esper_lint.analysis.facts:build_facts", "build_facts"),
    (
        "rules + positions",
        "esper_lint.checker:_diagnose",
        "the rules, noqa, positions of findings (what _diagnose leaves after build_facts)",
    ),
    (
        "project context + dependencies",
        "esper_lint.engine:_check_one",
        "summaries of imported modules, dependency digests (the rest of _check_one)",
    ),
    ("cache save", "esper_lint.cache:Cache.save", "merge and write the cache document"),
)
IMPORTS = ("libcst", "esper_lint.checker", "esper_lint.analysis.facts", "esper_lint.rules")


class Timers:
    """Exclusive wall time per stage: a stack of running stages, each paused by inner ones."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self._stack: list[list[Any]] = []  # [stage, start of its current slice]

    def wrap(self, stage: str, function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def timed(*args: Any, **kwargs: Any) -> Any:
            now = time.perf_counter()
            if self._stack:
                outer = self._stack[-1]
                self.seconds[outer[0]] = self.seconds.get(outer[0], 0.0) + now - outer[1]
            self._stack.append([stage, now])
            self.calls[stage] = self.calls.get(stage, 0) + 1
            try:
                return function(*args, **kwargs)
            finally:
                end = time.perf_counter()
                inner = self._stack.pop()
                self.seconds[stage] = self.seconds.get(stage, 0.0) + end - inner[1]
                if self._stack:
                    self._stack[-1][1] = end

        return timed


def _install(timers: Timers, stage: str, target: str) -> bool:
    """Wrap ``target`` in place; False when it does not exist (the stage is then n/a)."""
    module_name, _, attribute = target.partition(":")
    try:
        owner: Any = importlib.import_module(module_name)
        *parents, name = attribute.split(".")
        for parent in parents:
            owner = getattr(owner, parent)
        function = getattr(owner, name)
    except (ImportError, AttributeError):
        return False
    if not callable(function):
        return False
    if target == "esper_lint.prefilter:candidate_predicate":
        # time the predicate it returns (called per file), not the building of it
        def predicate(*args: Any, **kwargs: Any) -> Any:
            return timers.wrap(stage, function(*args, **kwargs))

        setattr(owner, name, functools.wraps(function)(predicate))
    else:
        setattr(owner, name, timers.wrap(stage, function))
    return True


def import_seconds() -> dict[str, float | None]:
    """Cumulative import time of libcst, then of the analysis on top of it."""
    found: dict[str, float | None] = {}
    for module in IMPORTS:
        start = time.perf_counter()
        try:
            importlib.import_module(module)
        except ImportError:
            found[module] = None
            continue
        found[module] = time.perf_counter() - start
    return found


def profile(root: Path, jobs: int = 1) -> dict[str, Any]:
    """Import times, then one cold ``lint_paths`` over ``root`` with a timer on every stage."""
    imports = import_seconds()
    from esper_lint.config import load_config
    from esper_lint.engine import lint_paths

    timers = Timers()
    installed = {stage: _install(timers, stage, target) for stage, target, _ in STAGES}
    os.chdir(root)  # as the CLI runs: from the project root, on "."
    config = load_config(cwd=root)
    with tempfile.TemporaryDirectory(prefix="esper-lint-profile-") as cache_dir:
        start = time.perf_counter()
        result = lint_paths([Path(".")], config, jobs=jobs, cache_dir=Path(cache_dir))
        total = time.perf_counter() - start
    stages: dict[str, dict[str, Any]] = {}
    for stage, target, covers in STAGES:
        called = installed[stage] and timers.calls.get(stage, 0) > 0
        stages[stage] = {
            "target": target,
            "covers": covers,
            "seconds": timers.seconds.get(stage, 0.0) if called else None,
            "calls": timers.calls.get(stage, 0) if installed[stage] else None,
        }
    timed = sum(entry["seconds"] or 0.0 for entry in stages.values())
    return {
        "root": str(root),
        "jobs": jobs,
        "files_checked": result.files_checked,
        "diagnostics": len(result.diagnostics),
        "imports_s": imports,
        "run_s": total,
        "untimed_s": total - timed,
        "stages": stages,
    }


def report(numbers: dict[str, Any]) -> str:
    """A markdown table: each stage's seconds and share of the run plus the libcst import."""
    imports = numbers["imports_s"]
    libcst_import = imports.get("libcst")
    analysis_import = [v for k, v in imports.items() if k != "libcst" and v is not None]
    import_total = (libcst_import or 0.0) + sum(analysis_import)
    whole = numbers["run_s"] + import_total
    lines = [
        f"Cold run in-process, --jobs {numbers['jobs']}: {numbers['files_checked']} files, "
        f"{numbers['diagnostics']} diagnostics, {whole:.3f} s with the imports",
        "",
        "| stage | s | share | calls |",
        "|---|---|---|---|",
    ]

    def row(label: str, seconds: float | None, calls: object = "") -> str:
        if seconds is None:
            return f"| {label} | n/a | n/a | {calls} |"
        return f"| {label} | {seconds:.3f} | {seconds / whole:.1%} | {calls} |"

    lines.append(row("import of libcst", libcst_import, 1))
    lines.append(row("import of the analysis and rules", sum(analysis_import), 1))
    for stage, entry in numbers["stages"].items():
        calls = entry["calls"] if entry["calls"] is not None else "missing"
        lines.append(row(stage, entry["seconds"], calls))
    lines.append(row("other (engine, not in a timed stage)", numbers["untimed_s"]))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--jobs", type=int, default=1, help="stages are timed in this process")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()
    numbers = profile(args.root.resolve(), args.jobs)
    print(report(numbers))
    if args.json is not None:
        args.json.write_text(json.dumps(numbers, indent=2) + "\n")


if __name__ == "__main__":
    main()

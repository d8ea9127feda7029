"""Lint speed: the real ``esper-lint`` CLI against bare ``libcst`` and ``ast`` parsing.

    python benchmarks/lint_speed.py                 # generate the 640-file corpus and measure
    python benchmarks/lint_speed.py PATH            # measure an existing tree instead
    python benchmarks/lint_speed.py --runs 9 --worst-case-runs 3 --json results.json
    python benchmarks/lint_speed.py --cross-imports --baseline-src /tmp/old  # against a build
    python benchmarks/lint_speed.py --scale --stages --json scale.json  # issue 14: lint_scale.py

Every wall time is the median of ``--runs`` subprocess runs of the installed ``esper-lint``
console script (interpreter start included), with the cache in a private directory
(``ESPER_LINT_CACHE_DIR``):

- cold: the cache directory removed before each run;
- warm: after a priming run, nothing changed;
- one changed file: one parse-candidate file (and, separately, one other file) edited before
  each run, everything else cached;
- worst case: a copy of the corpus in which every file is a parse candidate, cold.

The baselines parse the same files in this process, serially, modules already imported:
``libcst.parse_module(bytes)`` and ``ast.parse(bytes)``.

``--baseline-src DIR`` also times cold and warm runs of another build of esper-lint (a directory
holding its ``esper_lint`` package, e.g. ``git archive`` of an older commit), alternating with
this build run by run, and reports this build over that one; ``--warm-pairs N`` adds N warm
runs of each build alternated with no cold run between them (the median of the paired ratios, and
fastest over fastest). ``--cross-imports`` generates a corpus whose modules import each other
(see ``corpus.py``).

``--scale`` runs the speed-at-scale measures instead (``lint_scale.py``: a large corpus copied from
installed packages against ruff, an Esper-shaped tree against bare libcst parsing, the issue's
targets as a table; ``--stages`` adds ``lint_profile.py``'s profile per stage).
"""

from __future__ import annotations

import argparse
import ast
import functools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus import generate  # noqa: E402


def cli() -> list[str]:
    script = Path(sys.executable).with_name("esper-lint")
    return [str(script)] if script.exists() else [sys.executable, "-m", "esper_lint"]


def compile_bytecode(baseline_src: Path | None) -> None:
    """Write the bytecode of this build's package (and the baseline's), as ``pip install`` does:
    an editable install under ``PYTHONDONTWRITEBYTECODE=1`` would otherwise compile every module
    on every run, which costs more the larger the package (measured: part of a 2x warm ratio)."""
    import compileall

    import esper_lint

    for package in (Path(esper_lint.__file__).parent, baseline_src and baseline_src / "esper_lint"):
        if package:
            compileall.compile_dir(str(package), quiet=1)


def baseline_cli(source_dir: Path) -> list[str]:
    """Another build's CLI: its sources first on the path, this build's editable finder gone."""
    code = (
        "import sys\n"
        "sys.meta_path[:] = [f for f in sys.meta_path"
        " if not type(f).__module__.startswith('__editable__')]\n"
        f"sys.path.insert(0, {str(source_dir)!r})\n"
        "from esper_lint.cli import main\n"
        "sys.exit(main())\n"
    )
    return [sys.executable, "-c", code]


def measure_against(
    root: Path,
    baseline: Path,
    runs: int,
    cache_dir: Path,
    jobs: int | None,
    warm_pairs: int = 0,
) -> dict[str, float]:
    """Cold and warm runs of this build and of ``baseline``, alternated, medians of each; then
    ``warm_pairs`` warm runs of each, back to back in alternating order, with no cold run in
    between (a cold run's load lingers into the warm run after it)."""
    env = {**os.environ, "ESPER_LINT_CACHE_DIR": str(cache_dir)}
    builds = {"this": cli(), "baseline": baseline_cli(baseline)}
    times: dict[str, list[float]] = {f"{b}_{m}": [] for b in builds for m in ("cold", "warm")}
    for _ in range(runs):
        for build, prefix in builds.items():
            command = lint_command(prefix, root, jobs)
            shutil.rmtree(cache_dir, ignore_errors=True)
            times[f"{build}_cold"].append(timed_run(command, env))
            timed_run(command, env)  # prime the signatures
            times[f"{build}_warm"].append(timed_run(command, env))
    results = {key: statistics.median(values) for key, values in times.items()}
    results["cold_over_baseline"] = results["this_cold"] / results["baseline_cold"]
    results["warm_over_baseline"] = results["this_warm"] / results["baseline_warm"]
    if warm_pairs:
        results.update(warm_paired(builds, root, cache_dir, warm_pairs, env, jobs))
    return results


def lint_command(prefix: list[str], root: Path, jobs: int | None) -> list[str]:
    """One build's CLI (``prefix``) linting ``root``; ``--jobs`` when given (argparse takes
    options after the path, for the console script and ``python -c`` alike)."""
    command = [*prefix, "--output-format", "concise", str(root)]
    return command + ["--jobs", str(jobs)] if jobs is not None else command


def warm_paired(
    builds: dict[str, list[str]],
    root: Path,
    cache_dir: Path,
    pairs: int,
    env: dict[str, str],
    jobs: int | None,
) -> dict[str, float]:
    """Warm runs of both builds, each from its own primed cache, alternated pair by pair:
    the median of the per-pair ratios this / baseline, and the ratio of the fastest runs."""
    commands = {build: lint_command(prefix, root, jobs) for build, prefix in builds.items()}
    envs = {build: {**env, "ESPER_LINT_CACHE_DIR": str(cache_dir / build)} for build in builds}
    for build in builds:
        shutil.rmtree(cache_dir / build, ignore_errors=True)
        for _ in range(2):  # fill the cache, then prime the signatures
            timed_run(commands[build], envs[build])
    times: dict[str, list[float]] = {build: [] for build in builds}
    for index in range(pairs):
        order = list(builds) if index % 2 == 0 else list(reversed(builds))
        for build in order:
            times[build].append(timed_run(commands[build], envs[build]))
    ratios = [a / b for a, b in zip(times["this"], times["baseline"], strict=True)]
    return {
        "warm_pairs": pairs,
        "warm_paired_over_baseline": statistics.median(ratios),
        "warm_fastest_over_baseline": min(times["this"]) / min(times["baseline"]),
    }


def python_files(root: Path) -> list[Path]:
    from esper_lint.config import Config
    from esper_lint.discovery import discover

    return [f.path for f in discover([root], (), Config(root=root).root).files]


def timed_run(command: list[str], env: dict[str, str], cwd: Path | None = None) -> float:
    start = time.perf_counter()
    completed = subprocess.run(command, env=env, cwd=cwd, capture_output=True, check=False)
    elapsed = time.perf_counter() - start
    if completed.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(command)} failed:\n{completed.stderr.decode()[-2000:]}")
    return elapsed


def median_of(runs: int, prepare: Callable[[], None], run: Callable[[], float]) -> float:
    times = []
    for _ in range(runs):
        prepare()
        times.append(run())
    return statistics.median(times)


def parse_time(files: list[Path], parse: Callable[[bytes], object]) -> float:
    sources = [path.read_bytes() for path in files]
    start = time.perf_counter()
    for source in sources:
        try:
            parse(source)
        except Exception:  # the baseline tolerates what the linter tolerates
            pass
    return time.perf_counter() - start


def measure_tree(root: Path, runs: int, cache_dir: Path, jobs: int | None) -> dict[str, float]:
    import libcst

    from esper_lint.config import Config
    from esper_lint.prefilter import candidate_predicate

    env = {**os.environ, "ESPER_LINT_CACHE_DIR": str(cache_dir)}
    command = [*cli(), "--output-format", "concise", str(root)]
    if jobs is not None:
        command[1:1] = ["--jobs", str(jobs)]
    files = python_files(root)
    is_candidate = candidate_predicate(Config(root=root))
    candidates = [path for path in files if is_candidate(path.read_bytes())]
    others = [path for path in files if path not in set(candidates)]

    def clear_cache() -> None:
        shutil.rmtree(cache_dir, ignore_errors=True)

    def lint() -> float:
        return timed_run(command, env)

    results: dict[str, float] = {
        "files": len(files),
        "lines": sum(len(path.read_bytes().splitlines()) for path in files),
        "candidates": len(candidates),
    }
    results["interpreter_start_s"] = median_of(
        runs, lambda: None, lambda: timed_run([sys.executable, "-c", "pass"], env)
    )
    results["cold_s"] = median_of(runs, clear_cache, lint)
    lint()  # prime: stores stat signatures once files are older than the racy window
    results["warm_s"] = median_of(runs, lambda: None, lint)
    counter = iter(range(10**9))

    def touch(path: Path) -> Callable[[], None]:
        def edit() -> None:
            with open(path, "a", encoding="utf-8") as stream:
                stream.write(f"# edit {next(counter)}\n")

        return edit

    if candidates:
        results["one_changed_candidate_s"] = median_of(runs, touch(candidates[0]), lint)
    if others:
        results["one_changed_other_s"] = median_of(runs, touch(others[0]), lint)
    results["libcst_parse_s"] = parse_time(files, libcst.parse_module)
    results["ast_parse_s"] = parse_time(files, ast.parse)
    results["files_per_s_cold"] = len(files) / results["cold_s"]
    results["cold_over_libcst"] = results["cold_s"] / results["libcst_parse_s"]
    results["cold_over_ast"] = results["cold_s"] / results["ast_parse_s"]
    return results


def measure_worst_case(
    out: Path, files: int, lines: int, runs: int, cache_dir: Path
) -> dict[str, float]:
    import libcst

    generate(out, files=files, lines=lines, every_file_candidate=True)
    env = {**os.environ, "ESPER_LINT_CACHE_DIR": str(cache_dir)}
    paths = python_files(out)
    results: dict[str, float] = {"files": len(paths)}
    for jobs in (None, 1):
        command = [*cli(), "--output-format", "concise", str(out)]
        if jobs is not None:
            command[1:1] = ["--jobs", str(jobs)]
        label = "cold_s" if jobs is None else "cold_jobs1_s"
        results[label] = median_of(
            runs,
            lambda: shutil.rmtree(cache_dir, ignore_errors=True),
            functools.partial(timed_run, command, env),
        )
    results["libcst_parse_s"] = parse_time(paths, libcst.parse_module)
    results["ast_parse_s"] = parse_time(paths, ast.parse)
    results["cold_over_libcst"] = results["cold_s"] / results["libcst_parse_s"]
    results["cold_jobs1_over_libcst"] = results["cold_jobs1_s"] / results["libcst_parse_s"]
    return results


def report(corpus: dict[str, float], worst: dict[str, float] | None) -> str:
    def row(label: str, value: float, target: str = "") -> str:
        return f"| {label} | {value:.3f} | {target} |"

    lines = [
        f"Corpus: {corpus['files']:.0f} files, {corpus['lines']:.0f} lines, "
        f"{corpus['candidates']:.0f} parse candidates; cores: {os.cpu_count()}",
        "",
        "| measure | value | target |",
        "|---|---|---|",
        row("interpreter start (python -c pass), s", corpus["interpreter_start_s"]),
        row("cold, s", corpus["cold_s"], "<= 2.0"),
        row("warm, s", corpus["warm_s"], "<= 0.3"),
    ]
    for key, label in (
        ("one_changed_candidate_s", "one changed file (a candidate), s"),
        ("one_changed_other_s", "one changed file (not a candidate), s"),
    ):
        if key in corpus:
            lines.append(row(label, corpus[key], "<= 0.3"))
    lines += [
        row("cold files/s", corpus["files_per_s_cold"]),
        row("bare libcst.parse_module of all files, s", corpus["libcst_parse_s"]),
        row("bare ast.parse of all files, s", corpus["ast_parse_s"]),
        row("cold / bare libcst parse", corpus["cold_over_libcst"]),
        row("cold / bare ast.parse", corpus["cold_over_ast"]),
    ]
    if worst is not None:
        lines += [
            row(
                f"worst case ({worst['files']:.0f} files, all candidates): cold, s", worst["cold_s"]
            ),
            row("worst case: cold with --jobs 1, s", worst["cold_jobs1_s"]),
            row("worst case: bare libcst.parse_module, s", worst["libcst_parse_s"]),
            row("worst case: bare ast.parse, s", worst["ast_parse_s"]),
            row("worst case: cold / bare libcst parse", worst["cold_over_libcst"], "<= 1.3"),
            row("worst case: --jobs 1 / bare libcst parse", worst["cold_jobs1_over_libcst"]),
        ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", type=Path, help="an existing tree (default: generate)")
    parser.add_argument("--files", type=int, default=640)
    parser.add_argument("--lines", type=int, default=210_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--worst-case-runs", type=int, default=1)
    parser.add_argument("--worst-case-files", type=int, help="default: --files")
    parser.add_argument("--skip-worst-case", action="store_true")
    parser.add_argument("--jobs", type=int, help="passed to esper-lint (default: its own)")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    parser.add_argument("--cross-imports", action="store_true", help="modules import each other")
    parser.add_argument("--baseline-src", type=Path, help="time another build against this one")
    parser.add_argument(
        "--warm-pairs",
        type=int,
        default=0,
        help="with --baseline-src: also N warm runs of each build, alternated, without cold runs",
    )
    scale = parser.add_argument_group("speed at scale (issue 14): --scale")
    scale.add_argument("--scale", action="store_true", help="the large and Esper-shaped corpora")
    scale.add_argument(
        "--large-from",
        type=Path,
        action="append",
        default=[],
        help="a directory of source trees (one per subdirectory) to add to the large corpus",
    )
    scale.add_argument(
        "--large-max-files", type=int, help="an evenly spaced sample of N files of the large corpus"
    )
    scale.add_argument("--large-runs", type=int, help="runs on the large corpus (default --runs)")
    scale.add_argument(
        "--large-cold-only",
        action="store_true",
        help="on the large corpus, only a cold run, ruff and the bare parses (the whole corpus)",
    )
    scale.add_argument("--skip-large", action="store_true")
    scale.add_argument("--skip-esper", action="store_true")
    scale.add_argument("--esper-files", type=int, default=640)
    scale.add_argument("--esper-lines", type=int, default=211_000)
    scale.add_argument("--stages", action="store_true", help="profile a cold run per stage")
    scale.add_argument("--stages-large", action="store_true", help="also on the large corpus")
    scale.add_argument(
        "--large-one-changed",
        action="store_true",
        help="also time one changed file on the large corpus (each costs about a cold run)",
    )
    args = parser.parse_args()
    compile_bytecode(args.baseline_src)
    if args.scale:
        from lint_scale import run_scale

        run_scale(args)
        return
    with tempfile.TemporaryDirectory(prefix="esper-lint-bench-") as scratch:
        work = Path(scratch)
        root = args.path
        if root is None:
            root = work / "corpus"
            generate(root, files=args.files, lines=args.lines, cross_imports=args.cross_imports)
        against = None
        if args.baseline_src is not None:
            against = measure_against(
                root,
                args.baseline_src,
                args.runs,
                work / "cache-against",
                args.jobs,
                args.warm_pairs,
            )
        corpus = measure_tree(root, args.runs, work / "cache", args.jobs)
        worst = None
        if not args.skip_worst_case:
            worst_files = args.worst_case_files or args.files
            worst = measure_worst_case(
                work / "worst",
                worst_files,
                args.lines * worst_files // args.files,
                args.worst_case_runs,
                work / "worst-cache",
            )
    print(report(corpus, worst))
    if against is not None:
        print("\n| against the baseline build | this | baseline | ratio |\n|---|---|---|---|")
        for mode in ("cold", "warm"):
            print(
                f"| {mode}, s | {against[f'this_{mode}']:.3f} | {against[f'baseline_{mode}']:.3f}"
                f" | {against[f'{mode}_over_baseline']:.3f} |"
            )
        if "warm_pairs" in against:
            print(
                f"\n{against['warm_pairs']:.0f} alternated warm pairs: median of this / baseline "
                f"{against['warm_paired_over_baseline']:.3f}, fastest over fastest "
                f"{against['warm_fastest_over_baseline']:.3f}"
            )
    if args.json is not None:
        numbers = {"corpus": corpus, "worst_case": worst, "against_baseline": against}
        args.json.write_text(json.dumps(numbers, indent=2) + "\n")


if __name__ == "__main__":
    main()

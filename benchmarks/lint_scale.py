"""Speed at scale (issue 14): esper-lint against ruff and bare parsing, on two corpora, one run.

    python benchmarks/lint_speed.py --scale --runs 3 --stages --json scale.json
    python benchmarks/lint_speed.py --scale --large-from /work/corpus/src --large-runs 1
    python benchmarks/lint_speed.py --scale --large-max-files 500 ...   # a sample of the large one
    python benchmarks/lint_speed.py --scale --skip-large --skip-worst-case   # the quick part

Corpora, both built in a temporary directory (a project checkout: a ``pyproject.toml`` at the
root, the cache in a private directory):

- **large**: every ``.py`` file of torch and of whichever of transformers, deepspeed, lightning,
  diffusers, accelerate, timm and mmengine are installed (``importlib.util.find_spec``), plus one
  tree per subdirectory of each ``--large-from DIR`` (extracted sdists) whose project is not
  installed already; copied in sorted order, each source its own project (``build_large``);
  ``--large-max-files N`` keeps an evenly spaced sample;
- **Esper-shaped**: ``corpus.generate_esper_shaped`` (640 files, 211k lines, 13% of the files
  and 28% of the bytes parse candidates); the worst case is the same tree with every file a
  candidate.

For each, in this order: esper-lint cold (also with ``--no-partial-parse``, every candidate
parsed whole: the partial parse's own before and after) and warm with ``--jobs 1`` and with its
default jobs; one changed candidate file (appended to) in the warm project, linted as
pre-commit does (only that file named) and as a whole-tree run; ``ruff check --isolated
--select E,F --no-cache`` on exactly the files ``esper-lint --show-files .`` lists (passed by
name, so ruff's own excludes and ``.gitignore`` handling play no part); then bare
``libcst.parse_module`` and ``ast.parse`` of every file, serially in this process. Wall times
are medians over ``--runs`` (``--large-runs`` for the large corpus) subprocess runs from the
corpus root, interpreter start included. The candidate shares come from esper-lint's own
``prefilter.candidate_predicate``; the machine load is ``os.getloadavg()`` before and after.
On the large corpus, the one-changed-file runs (``--large-one-changed``) and the profile per
stage (``--stages-large``; ``--stages`` profiles the Esper-shaped tree) are opt-in: each costs
about one more cold run. ``--large-cold-only`` keeps, on the large corpus, only the cold run
with the default jobs, ruff and the bare parses: the whole corpus takes about half an hour here.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from corpus import generate_esper_shaped
from lint_speed import cli, parse_time, timed_run

LARGE_PACKAGES = (
    "torch",
    "transformers",
    "deepspeed",
    "lightning",
    "diffusers",
    "accelerate",
    "timm",
    "mmengine",
)
PYPROJECT = '[project]\nname = "{name}"\n'
_VERSION_SUFFIX = re.compile(r"-\d[\w.]*$")


# --- corpora -------------------------------------------------------------------------------------


def installed_sources() -> list[tuple[str, Path]]:
    """(name, package directory) of each of ``LARGE_PACKAGES`` installed here."""
    found = []
    for name in LARGE_PACKAGES:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            continue
        if spec is not None and spec.submodule_search_locations:
            found.append((name, Path(next(iter(spec.submodule_search_locations)))))
    return found


def project_name(directory_name: str) -> str:
    """``megatron_core-0.16.1`` -> ``megatron-core``: an sdist's directory to its project."""
    return _VERSION_SUFFIX.sub("", directory_name).replace("_", "-").lower()


def large_sources(extra: list[Path]) -> list[tuple[str, Path]]:
    sources = installed_sources()
    names = {project_name(name) for name, _ in sources}
    for directory in extra:
        for tree in sorted(p for p in directory.iterdir() if p.is_dir()):
            if project_name(tree.name) not in names:
                names.add(project_name(tree.name))
                sources.append((tree.name, tree))
    return sources


def python_files_under(directory: Path) -> list[Path]:
    found = []
    for parent, directories, files in os.walk(directory):
        directories[:] = sorted(d for d in directories if d != "__pycache__")
        found += [Path(parent) / name for name in sorted(files) if name.endswith(".py")]
    return found


def build_large(out: Path, sources: list[tuple[str, Path]], max_files: int | None) -> list[str]:
    """Copy the ``.py`` files of ``sources`` under ``out``; the sources used, with counts.

    Each source is its own project, as in a checkout of several codebases side by side:
    ``out/<name>/pyproject.toml``, an installed package under ``out/<name>/<name>/`` (so that
    its absolute imports of itself resolve in its project), an sdist's files as they lie.
    With ``max_files``, an evenly spaced sample of the sorted files (every k-th), so that each
    source keeps its share; a sample breaks imports, so it measures less than the whole.
    """
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / "pyproject.toml").write_text(PYPROJECT.format(name="large-corpus"), encoding="utf-8")
    every: list[tuple[str, Path, Path]] = []
    for name, directory in sources:
        base = Path(name, name) if (directory / "__init__.py").exists() else Path(name)
        every += [
            (name, path, base / path.relative_to(directory))
            for path in python_files_under(directory)
        ]
    if max_files is not None and max_files < len(every):
        every = [every[i * len(every) // max_files] for i in range(max_files)]
    counts: dict[str, int] = {}
    for name, path, relative in every:
        target = out / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            shutil.copyfile(path, target)
        except OSError:
            continue
        counts[name] = counts.get(name, 0) + 1
    for name in counts:
        project = out / name / "pyproject.toml"
        if not project.exists():
            project.write_text(PYPROJECT.format(name=name), encoding="utf-8")
    return [f"{name} ({count})" for name, count in counts.items()]


# --- measuring -----------------------------------------------------------------------------------


def load() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


def listed_files(root: Path) -> list[str]:
    """The files esper-lint lints from ``root``, root-relative, as it lists them."""
    completed = subprocess.run(
        [*cli(), "--show-files", "."], cwd=root, capture_output=True, text=True, check=True
    )
    return [line for line in completed.stdout.splitlines() if line]


def shares(root: Path, files: list[str]) -> dict[str, float]:
    from esper_lint.config import load_config
    from esper_lint.prefilter import candidate_predicate

    is_candidate = candidate_predicate(load_config(cwd=root))
    sizes = {"files": 0, "lines": 0, "bytes": 0, "candidate_files": 0, "candidate_bytes": 0}
    for name in files:
        source = (root / name).read_bytes()
        sizes["files"] += 1
        sizes["lines"] += source.count(b"\n")
        sizes["bytes"] += len(source)
        if is_candidate(source):
            sizes["candidate_files"] += 1
            sizes["candidate_bytes"] += len(source)
    numbers: dict[str, float] = dict(sizes)
    numbers["candidate_file_share"] = sizes["candidate_files"] / max(1, sizes["files"])
    numbers["candidate_byte_share"] = sizes["candidate_bytes"] / max(1, sizes["bytes"])
    return numbers


def median_run(runs: int, prepare: Callable[[], None], command: list[str], env: dict[str, str],
               cwd: Path) -> float:  # fmt: skip
    times = []
    for _ in range(runs):
        prepare()
        times.append(timed_run(command, env, cwd))
    return statistics.median(times)


def lint_command(jobs: int | None, *paths: str, options: tuple[str, ...] = ()) -> list[str]:
    jobs_option = ["--jobs", str(jobs)] if jobs is not None else []
    return [*cli(), "--output-format", "concise", *jobs_option, *options, *(paths or (".",))]


WHOLE = ("--no-partial-parse",)  # the cold runs again, every candidate parsed whole


def ruff_command(files: list[str]) -> list[str]:
    ruff = Path(sys.executable).with_name("ruff")
    prefix = [str(ruff)] if ruff.exists() else [sys.executable, "-m", "ruff"]
    return [*prefix, "check", "--isolated", "--select", "E,F", "--no-cache", "--exit-zero",
            "--quiet", *files]  # fmt: skip


def median_candidate(root: Path, files: list[str]) -> str | None:
    """The candidate file of median size: the one a pre-commit run edits."""
    from esper_lint.config import load_config
    from esper_lint.prefilter import candidate_predicate

    is_candidate = candidate_predicate(load_config(cwd=root))
    candidates = sorted(
        (len(source), name) for name in files if is_candidate(source := (root / name).read_bytes())
    )
    return candidates[len(candidates) // 2][1] if candidates else None


def measure(
    root: Path, runs: int, cache_dir: Path, one_changed: bool = True, cold_only: bool = False
) -> dict[str, Any]:
    """Every measure of one corpus; see the module's docstring for the order. ``cold_only``:
    only a cold run with the default jobs, ruff, and the bare parses (a corpus too large for
    the rest on this machine)."""

    env = {**os.environ, "ESPER_LINT_CACHE_DIR": str(cache_dir)}
    files = listed_files(root)
    numbers: dict[str, Any] = {"load_before": load(), **shares(root, files)}

    def clear() -> None:
        shutil.rmtree(cache_dir, ignore_errors=True)

    if cold_only:
        numbers["cold_default_s"] = median_run(runs, clear, lint_command(None), env, root)
        return _finish(numbers, root, files, runs, env)
    for label, jobs in (("default", None), ("jobs1", 1)):
        numbers[f"cold_{label}_s"] = median_run(runs, clear, lint_command(jobs), env, root)
        numbers[f"cold_{label}_whole_s"] = median_run(
            runs, clear, lint_command(jobs, options=WHOLE), env, root
        )
    for label, jobs in (("default", None), ("jobs1", 1)):
        timed_run(lint_command(jobs), env, root)  # prime the stat signatures
        numbers[f"warm_{label}_s"] = median_run(runs, lambda: None, lint_command(jobs), env, root)
    edited = median_candidate(root, files) if one_changed else None
    if edited is not None:
        counter = iter(range(10**9))

        def edit() -> None:
            with open(root / edited, "a", encoding="utf-8") as stream:
                stream.write(f"# edit {next(counter)}\n")

        numbers["edited_file"] = edited
        numbers["one_changed_precommit_s"] = median_run(
            runs, edit, lint_command(None, edited), env, root
        )
        numbers["one_changed_whole_tree_s"] = median_run(runs, edit, lint_command(None), env, root)
    numbers = _finish(numbers, root, files, runs, env)
    numbers["cold_jobs1_over_ruff"] = numbers["cold_jobs1_s"] / numbers["ruff_s"]
    numbers["cold_jobs1_over_libcst"] = numbers["cold_jobs1_s"] / numbers["libcst_parse_s"]
    numbers["warm_over_libcst"] = numbers["warm_default_s"] / numbers["libcst_parse_s"]
    return numbers


def _finish(
    numbers: dict[str, Any], root: Path, files: list[str], runs: int, env: dict[str, str]
) -> dict[str, Any]:
    """ruff, the bare parses and the cold ratios, after the esper-lint runs."""
    import libcst

    numbers["ruff_s"] = median_run(runs, lambda: None, ruff_command(files), env, root)
    paths = [root / name for name in files]
    numbers["libcst_parse_s"] = parse_time(paths, libcst.parse_module)
    numbers["ast_parse_s"] = parse_time(paths, ast.parse)
    numbers["load_after"] = load()
    cold = numbers["cold_default_s"]
    numbers["cold_over_ruff"] = cold / numbers["ruff_s"]
    numbers["cold_over_libcst"] = cold / numbers["libcst_parse_s"]
    numbers["cold_over_ast"] = cold / numbers["ast_parse_s"]
    return numbers


def measure_worst_case(root: Path, runs: int, cache_dir: Path) -> dict[str, Any]:
    import libcst

    env = {**os.environ, "ESPER_LINT_CACHE_DIR": str(cache_dir)}
    files = listed_files(root)
    numbers: dict[str, Any] = {"load_before": load(), **shares(root, files)}

    def clear() -> None:
        shutil.rmtree(cache_dir, ignore_errors=True)

    for label, jobs in (("default", None), ("jobs1", 1)):
        numbers[f"cold_{label}_s"] = median_run(runs, clear, lint_command(jobs), env, root)
        numbers[f"cold_{label}_whole_s"] = median_run(
            runs, clear, lint_command(jobs, options=WHOLE), env, root
        )
    numbers["libcst_parse_s"] = parse_time([root / name for name in files], libcst.parse_module)
    numbers["load_after"] = load()
    numbers["cold_over_libcst"] = numbers["cold_default_s"] / numbers["libcst_parse_s"]
    numbers["cold_jobs1_over_libcst"] = numbers["cold_jobs1_s"] / numbers["libcst_parse_s"]
    return numbers


def stages(root: Path) -> dict[str, Any] | None:
    """``lint_profile.py`` on ``root`` in a fresh interpreter (so the imports count)."""
    script = Path(__file__).with_name("lint_profile.py")
    with tempfile.TemporaryDirectory(prefix="esper-lint-stages-") as scratch:
        out = Path(scratch) / "stages.json"
        completed = subprocess.run(
            [sys.executable, str(script), str(root), "--json", str(out)],
            capture_output=True,
            text=True,
            check=False,
        )
        if completed.returncode != 0 or not out.exists():
            print(f"stages of {root}: failed\n{completed.stderr[-2000:]}", file=sys.stderr)
            return None
        numbers: dict[str, Any] = json.loads(out.read_text())
        return numbers


# --- report --------------------------------------------------------------------------------------


def _ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}x"


def _seconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f} s"


def targets(results: dict[str, Any]) -> list[tuple[str, str, str, bool | None]]:
    """(measure, target, measured, met) for each of the issue's targets."""
    large, esper, worst = results.get("large"), results.get("esper"), results.get("worst_case")
    rows: list[tuple[str, str, str, bool | None]] = []

    def add(label: str, target: str, value: float | None, limit: float, text: str) -> None:
        met = None if value is None else value <= limit
        rows.append((label, target, text, met))

    value = large["cold_over_ruff"] if large else None
    add("cold, large corpus", "<= 10x ruff", value, 10.0,
        "n/a" if not large else f"{value:.1f}x ruff ({large['cold_default_s']:.2f} s / "
        f"{large['ruff_s']:.2f} s)")  # fmt: skip
    value = esper["cold_over_libcst"] if esper else None
    add("cold, Esper-shaped tree", "<= 0.135x libcst parse-all", value, 0.135,
        "n/a" if not esper else f"{value:.3f}x ({esper['cold_default_s']:.3f} s / "
        f"{esper['libcst_parse_s']:.2f} s)")  # fmt: skip
    warm = [
        (name, corpus)
        for name, corpus in (("large", large), ("Esper", esper))
        if corpus and "warm_over_libcst" in corpus
    ]
    value = max((corpus["warm_over_libcst"] for _, corpus in warm), default=None)
    add("warm, either", "<= 0.02x libcst parse-all", value, 0.02,
        ", ".join(f"{name} {corpus['warm_over_libcst']:.4f}x ({corpus['warm_default_s']:.3f} s)"
                  for name, corpus in warm) or "n/a")  # fmt: skip
    value = esper.get("one_changed_precommit_s") if esper else None
    where = " (Esper-shaped, the file named)" if value is not None else ""
    add("one changed file in a warm project (pre-commit)", "<= 0.3 s", value, 0.3,
        _seconds(value) + where)  # fmt: skip
    value = worst["cold_jobs1_over_libcst"] if worst else None
    add("--jobs 1, worst case (every file a candidate)", "<= 1.0x libcst parse-all", value, 1.0,
        "n/a" if not worst else f"{value:.3f}x ({worst['cold_jobs1_s']:.2f} s / "
        f"{worst['libcst_parse_s']:.2f} s)")  # fmt: skip
    return rows


RAW_ROWS = (
    ("files", "files", "{:.0f}"),
    ("lines", "lines", "{:.0f}"),
    ("MB", "bytes", "mb"),
    ("parse candidates (prefilter), files", "candidate_files", "{:.0f}"),
    ("candidates, share of files", "candidate_file_share", "{:.1%}"),
    ("candidates, share of bytes", "candidate_byte_share", "{:.1%}"),
    ("esper-lint cold, default jobs, s", "cold_default_s", "{:.3f}"),
    ("esper-lint cold, --jobs 1, s", "cold_jobs1_s", "{:.3f}"),
    ("esper-lint cold, default jobs, `--no-partial-parse`, s", "cold_default_whole_s", "{:.3f}"),
    ("esper-lint cold, --jobs 1, `--no-partial-parse`, s", "cold_jobs1_whole_s", "{:.3f}"),
    ("esper-lint warm, default jobs, s", "warm_default_s", "{:.3f}"),
    ("esper-lint warm, --jobs 1, s", "warm_jobs1_s", "{:.3f}"),
    ("one changed candidate, only it named (pre-commit), s", "one_changed_precommit_s", "{:.3f}"),
    ("one changed candidate, whole tree, s", "one_changed_whole_tree_s", "{:.3f}"),
    ("ruff check --select E,F --no-cache, s", "ruff_s", "{:.3f}"),
    ("bare libcst.parse_module, every file, s", "libcst_parse_s", "{:.3f}"),
    ("bare ast.parse, every file, s", "ast_parse_s", "{:.3f}"),
    ("cold / ruff", "cold_over_ruff", "{:.1f}x"),
    ("cold --jobs 1 / ruff", "cold_jobs1_over_ruff", "{:.1f}x"),
    ("cold / libcst parse-all", "cold_over_libcst", "{:.3f}x"),
    ("cold --jobs 1 / libcst parse-all", "cold_jobs1_over_libcst", "{:.3f}x"),
    ("warm / libcst parse-all", "warm_over_libcst", "{:.4f}x"),
    ("cold / ast.parse-all", "cold_over_ast", "{:.2f}x"),
    ("load average before (1, 5, 15 min)", "load_before", "load"),
    ("load average after", "load_after", "load"),
)


def _cell(corpus: dict[str, Any] | None, key: str, form: str) -> str:
    if corpus is None or key not in corpus:
        return ""
    value = corpus[key]
    if form == "mb":
        return f"{value / 1e6:.1f}"
    if form == "load":
        return " / ".join(f"{v:.2f}" for v in value)
    return form.format(value)


def report(results: dict[str, Any]) -> str:
    from lint_profile import report as stages_report

    lines = [
        f"Machine: {os.cpu_count()} cores, load average (1/5/15 min) "
        f"{' / '.join(map(str, results['load_before']))} before, "
        f"{' / '.join(map(str, results['load_after']))} after. "
        f"{results['versions']}",
        "",
        "| measure | target | measured | met |",
        "|---|---|---|---|",
    ]
    for label, target, measured, met in targets(results):
        verdict = "n/a" if met is None else ("yes" if met else "**no**")
        lines.append(f"| {label} | {target} | {measured} | {verdict} |")
    names = (("large", "large"), ("Esper-shaped", "esper"), ("worst case", "worst_case"))
    columns = [(name, results[key]) for name, key in names if results.get(key) is not None]
    if columns:
        lines += ["", "| raw | " + " | ".join(name for name, _ in columns) + " |"]
        lines.append("|---|" + "---|" * len(columns))
        for label, key, form in RAW_ROWS:
            cells = [_cell(corpus, key, form) for _, corpus in columns]
            if any(cells):
                lines.append(f"| {label} | " + " | ".join(cells) + " |")
    if results.get("large_sources"):
        sample = " (an evenly spaced sample)" if results["large"].get("sampled") else ""
        lines += ["", f"Large corpus{sample}: " + ", ".join(results["large_sources"])]
    for name, key in (("large", "large_stages"), ("Esper-shaped", "esper_stages")):
        if results.get(key):
            lines += ["", f"Stages, {name}:", "", stages_report(results[key])]
    return "\n".join(lines)


def versions() -> str:
    import importlib.metadata

    import esper_lint

    ruff = ruff_command([])[0]
    command = [ruff, "--version"] if ruff != sys.executable else [ruff, "-m", "ruff", "--version"]
    try:
        ruff_version = subprocess.run(command, capture_output=True, text=True).stdout.strip()
    except OSError:
        ruff_version = "ruff not found"
    try:
        libcst_version = importlib.metadata.version("libcst")
    except importlib.metadata.PackageNotFoundError:
        libcst_version = "?"
    return (
        f"esper-lint {esper_lint.__version__}, {ruff_version}, libcst {libcst_version}, "
        f"Python {platform.python_version()}"
    )


def run_scale(args: argparse.Namespace) -> None:
    results: dict[str, Any] = {"load_before": load(), "versions": versions()}
    runs = args.runs
    with tempfile.TemporaryDirectory(prefix="esper-lint-scale-") as scratch:
        work = Path(scratch)
        if not args.skip_esper:
            root = work / "esper"
            generate_esper_shaped(root, files=args.esper_files, lines=args.esper_lines)
            results["esper"] = measure(root, runs, work / "cache-esper")
            if args.stages:
                results["esper_stages"] = stages(root)
        if not args.skip_worst_case:
            files = args.worst_case_files or args.esper_files
            root = work / "worst"
            generate_esper_shaped(
                root,
                files=files,
                lines=args.esper_lines * files // args.esper_files,
                every_file_candidate=True,
            )
            results["worst_case"] = measure_worst_case(
                root, args.worst_case_runs, work / "cache-worst"
            )
        if not args.skip_large:
            root = work / "large"
            results["large_sources"] = build_large(
                root, large_sources(args.large_from), args.large_max_files
            )
            results["large"] = measure(
                root,
                args.large_runs or runs,
                work / "cache-large",
                args.large_one_changed,
                cold_only=args.large_cold_only,
            )
            results["large"]["sampled"] = args.large_max_files is not None
            if results["large"]["files"] < 5000:
                print(f"note: the large corpus has {results['large']['files']} files (< 5,000)")
            if args.stages_large:
                results["large_stages"] = stages(root)
    results["load_after"] = load()
    results["targets"] = [
        {"measure": label, "target": target, "measured": measured, "met": met}
        for label, target, measured, met in targets(results)
    ]
    print(report(results))
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n")

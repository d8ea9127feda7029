"""The engine: identical results whatever the jobs, cache state and prefilter; read errors."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from esper_lint.config import Config
from esper_lint.diagnostics import Diagnostic
from esper_lint.engine import MIN_CANDIDATES_FOR_POOL, LintResult, lint_paths

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"
sys.path.insert(0, str(REPO / "benchmarks"))
from corpus import generate  # noqa: E402

VIOLATING = textwrap.dedent(
    """
    import torch.distributed as dist

    def train(slots, rank, loader):
        if rank == 0:
            for slot in slots:
                slot.step_epoch()
            dist.barrier()
        for batch in loader:
            slots[0].advance_stage()
    """
)


def modes(root: Path, paths: list[Path], config: Config, cache_dir: Path) -> dict[str, LintResult]:
    """The same lint in every engine mode; the cache modes run cold, then warm."""
    results = {
        "jobs1-nocache": lint_paths(paths, config, jobs=1, use_cache=False),
        "jobs2-nocache": lint_paths(paths, config, jobs=2, use_cache=False),
        "noprefilter-jobs1": lint_paths(paths, config, jobs=1, use_cache=False, prefilter=False),
        "noprefilter-jobs2": lint_paths(paths, config, jobs=2, use_cache=False, prefilter=False),
        "nopartial-jobs1": lint_paths(paths, config, jobs=1, use_cache=False, partial=False),
        "cache-cold-jobs2": lint_paths(paths, config, jobs=2, cache_dir=cache_dir),
        "cache-warm-jobs1": lint_paths(paths, config, jobs=1, cache_dir=cache_dir),
        "cache-warm-noprefilter": lint_paths(paths, config, cache_dir=cache_dir, prefilter=False),
    }
    return results


def assert_all_identical(results: dict[str, LintResult]) -> LintResult:
    reference = results["jobs1-nocache"]
    for mode, result in results.items():
        assert result == reference, mode
    return reference


def bad_inputs(directory: Path) -> None:
    """Files that fail to parse, with and without a symmetric name."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "syntax_candidate.py").write_text("def f(slot):\n    slot.step_epoch(\n")
    (directory / "syntax_plain.py").write_text("def f(:\n    pass\n")
    (directory / "nul_candidate.py").write_bytes(b"x = 1\x00\ndist.barrier()\n")
    (directory / "nul_plain.py").write_bytes(b"x = 1\x00\n")
    (directory / "latin1_plain.py").write_bytes(b"name = '\xe9t\xe9'\n")
    (directory / "latin1_candidate.py").write_bytes(b"name = '\xe9t\xe9'\nslot.step_epoch()\n")
    (directory / "cookie.py").write_bytes(
        b"# -*- coding: latin-1 -*-\nname = '\xe9'\nif rank == 0:\n    slot.step_epoch()\n"
    )
    (directory / "bom_crlf.py").write_bytes(b"\xef\xbb\xbfif rank == 0:\r\n    dist.barrier()\r\n")
    (directory / "python2.py").write_text("print 'step_epoch'\n")
    (directory / "empty.py").write_text("")
    (directory / "deep_plain.py").write_text("x = " + "(" * 400 + "1" + ")" * 400 + "\n")
    nested = "".join("    " * depth + "if x:\n" for depth in range(1, 60))
    (directory / "deep_candidate.py").write_text(
        "def f(slot, x):\n" + nested + "    " * 60 + "slot.step_epoch()\n"
    )


@pytest.mark.slow
def test_identical_across_modes_on_a_generated_corpus(tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    generate(root, files=48, lines=6000, candidate_ratio=0.4)
    bad_inputs(root / "trainpkg" / "bad")
    config = Config(root=root)
    reference = assert_all_identical(modes(root, [root], config, tmp_path / "cache"))
    assert reference.files_checked == 48 + 12
    candidates = 48 * 0.4
    assert candidates >= MIN_CANDIDATES_FOR_POOL  # jobs=2 really used the pool
    parse_failures = {Path(d.path).name for d in reference.diagnostics if d.code == "ESP900"}
    assert "syntax_candidate.py" in parse_failures and "nul_candidate.py" in parse_failures
    assert not parse_failures & {"syntax_plain.py", "nul_plain.py", "latin1_plain.py"}


@pytest.mark.slow
@pytest.mark.skipif(not FIXTURES.is_dir(), reason="tests/fixtures not written yet")
def test_identical_across_modes_on_the_fixtures(tmp_path: Path) -> None:
    config = Config(root=REPO)
    assert_all_identical(modes(REPO, [FIXTURES], config, tmp_path / "cache"))


def test_parse_failures_only_for_candidates_with_or_without_prefilter(tmp_path: Path) -> None:
    bad_inputs(tmp_path)
    config = Config(root=tmp_path)
    with_prefilter = lint_paths([tmp_path], config, use_cache=False)
    without = lint_paths([tmp_path], config, use_cache=False, prefilter=False)
    assert with_prefilter == without
    failed = {Path(d.path).name for d in without.diagnostics if d.code in ("ESP900", "ESP901")}
    assert {"syntax_candidate.py", "nul_candidate.py"} <= failed
    assert not failed & {"syntax_plain.py", "nul_plain.py", "latin1_plain.py", "deep_plain.py"}


def test_diagnostics_are_sorted_filtered_and_name_the_path_as_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "b.py").write_text("def f(slot):\n    slot.step_epoch(\n")
    (tmp_path / "a.py").write_text(VIOLATING)
    (tmp_path / "a.py.txt").write_text(VIOLATING)
    monkeypatch.chdir(tmp_path)
    result = lint_paths([Path(".")], Config(root=tmp_path), use_cache=False)
    assert result.files_checked == 2
    assert result.diagnostics == sorted(result.diagnostics)
    assert {d.path for d in result.diagnostics} == {"a.py", "b.py"}
    ignoring = Config(root=tmp_path, ignore=("ESP900",))
    ignored = lint_paths([Path(".")], ignoring, use_cache=False)
    assert [d for d in result.diagnostics if d.code != "ESP900"] == ignored.diagnostics


def test_read_error_becomes_esp902_and_the_run_goes_on(tmp_path: Path) -> None:
    """A real read failure that root can't bypass: reading /proc/self/mem at offset 0 is EIO."""
    if not os.path.exists("/proc/self/mem"):
        pytest.skip("needs Linux /proc")
    os.symlink("/proc/self/mem", tmp_path / "unreadable.py")
    (tmp_path / "ok.py").write_text("def f(slot):\n    slot.step_epoch(\n")
    result = lint_paths([tmp_path], Config(root=tmp_path), cache_dir=tmp_path / "cache")
    unreadable = [d for d in result.diagnostics if d.code == "ESP902"]
    assert unreadable == [
        Diagnostic(str(tmp_path / "unreadable.py"), 1, 1, 1, 1, "ESP902",
                   "file could not be read: Input/output error")
    ]  # fmt: skip
    assert any(d.code == "ESP900" and d.path.endswith("ok.py") for d in result.diagnostics)
    assert result.files_checked == 2


def test_permission_denied_becomes_esp902(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads any file; see the /proc/self/mem test")
    secret = tmp_path / "secret.py"
    secret.write_text("x = 1\n")
    secret.chmod(0)
    result = lint_paths([tmp_path], Config(root=tmp_path), use_cache=False)
    assert [(d.code, d.message) for d in result.diagnostics] == [
        ("ESP902", "file could not be read: Permission denied")
    ]


def test_missing_explicit_path_becomes_esp902(tmp_path: Path) -> None:
    result = lint_paths([tmp_path / "nope.py"], Config(root=tmp_path), use_cache=False)
    assert [(d.code, d.message) for d in result.diagnostics] == [
        ("ESP902", "file could not be read: No such file or directory")
    ]
    assert result.files_checked == 0


def test_warnings_are_collected(tmp_path: Path) -> None:
    os.symlink(tmp_path / "gone.py", tmp_path / "dangling.py")
    (tmp_path / "ok.py").write_text("x = 1\n")
    result = lint_paths([tmp_path], Config(root=tmp_path), use_cache=False)
    assert result.warnings == [f"{tmp_path / 'dangling.py'}: broken symlink, skipped"]
    assert result.diagnostics == [] and result.files_checked == 1


NO_PARSE_SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from esper_lint.config import Config
    from esper_lint.engine import lint_paths
    root = Path(sys.argv[1])
    result = lint_paths([root], Config(root=root), use_cache=False)
    assert result.files_checked == 1 and not result.diagnostics
    heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("libcst", "concurrent"))
    print(",".join(heavy))
    """
)


def test_a_run_that_parses_nothing_never_imports_libcst(tmp_path: Path) -> None:
    (tmp_path / "plain.py").write_text("import math\nvalue = math.pi\n")
    completed = subprocess.run(
        [sys.executable, "-c", NO_PARSE_SCRIPT, str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert completed.stdout.strip() == ""


WARM_CLI_SCRIPT = textwrap.dedent(
    """
    import atexit, sys
    from esper_lint.cli import main
    def loaded():
        names = (m for m in sys.modules if m.startswith("esper_lint.analysis.") or m == "shutil")
        print(",".join(sorted(names)))
    atexit.register(loaded)
    sys.exit(main(sys.argv[1:]))
    """
)


def test_a_warm_run_imports_no_analysis_and_no_shutil(tmp_path: Path) -> None:
    """Every file answered from the cache: the analysis, the project model (the project root
    is looked up only on a miss) and shutil (argparse's terminal width) stay unimported."""
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'p'\n")
    (tmp_path / "train.py").write_text(
        "import torch.distributed as dist\nif dist.get_rank() == 0:\n    dist.barrier()\n"
    )
    (tmp_path / "plain.py").write_text("value = 1\n")
    env = {**os.environ, "ESPER_LINT_CACHE_DIR": str(tmp_path / "cache")}
    command = [sys.executable, "-c", WARM_CLI_SCRIPT, "--output-format", "concise", str(tmp_path)]
    cold = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    warm = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    assert cold.returncode == warm.returncode == 1
    assert "ESP004" in cold.stdout and "esper_lint.analysis.facts" in cold.stdout
    findings, loaded = warm.stdout.rstrip("\n").rsplit("\n", 1)
    assert findings == cold.stdout.rstrip("\n").rsplit("\n", 1)[0]
    assert loaded == "esper_lint.analysis.backend_names"


def test_the_collector_runs_less_while_linting_and_as_before_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import esper_lint.checker as checker

    (tmp_path / "train.py").write_text("import torch.distributed as dist\ndist.barrier()\n")
    seen: list[tuple[int, int, int]] = []
    real_check = checker.check_source

    def spy(*args: object, **kwargs: object) -> object:
        seen.append(gc.get_threshold())
        return real_check(*args, **kwargs)  # type: ignore[arg-type]

    before = gc.get_threshold()
    monkeypatch.setattr(checker, "check_source", spy)
    lint_paths([tmp_path], Config(root=tmp_path), jobs=1, use_cache=False)
    assert seen and seen[0][0] > before[0]
    assert gc.get_threshold() == before


def test_an_internal_error_is_not_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Fault injection: a transient failure (MemoryError) inside the analysis of one file.
    import esper_lint.analysis.facts as facts

    source = "import torch.distributed as dist\nif dist.get_rank() == 0:\n    dist.barrier()\n"
    (tmp_path / "train.py").write_text(source, encoding="utf-8")
    config, cache_dir = Config(root=tmp_path), tmp_path / "cache"

    def out_of_memory(*args: object) -> object:
        raise MemoryError

    with monkeypatch.context() as patch:
        patch.setattr(facts, "build_facts", out_of_memory)
        failed = lint_paths([tmp_path], config, jobs=1, cache_dir=cache_dir)
    assert [d.code for d in failed.diagnostics] == ["ESP901"]
    again = lint_paths([tmp_path], config, jobs=1, cache_dir=cache_dir)
    assert [(d.line, d.code) for d in again.diagnostics] == [(3, "ESP004")]


HELPERS = textwrap.dedent(
    """
    import torch.distributed as dist

    def finish():
        dist.barrier()

    def label():
        return "barrier"  # names a symmetric call as a word, makes none
    """
)


def summaries_decide(root: Path, users: int, quiet: int) -> None:
    """Files that name no symmetric call and call into ``helpers``, whose summary decides: the
    users call ``finish`` (a barrier) under a rank test, the quiet ones ``label`` (nothing)."""
    (root / "pyproject.toml").write_text("")
    (root / "helpers.py").write_text(HELPERS)
    for index in range(users):
        (root / f"user{index}.py").write_text(
            "from helpers import finish\n\ndef end(rank):\n    if rank == 0:\n        finish()\n"
        )
    for index in range(quiet):
        (root / f"quiet{index}.py").write_text(
            "from helpers import label\n\ndef end(rank):\n    if rank == 0:\n        label()\n"
        )


@pytest.mark.parametrize("jobs", [1, 2])
def test_files_decided_on_summaries_are_decided_where_they_are_checked(
    tmp_path: Path, jobs: int
) -> None:
    """The summaries that decide whether a file is a candidate are computed in the process that
    checks it: with a pool, its workers, so the main process summarises nothing."""
    import esper_lint.engine as engine

    summaries_decide(tmp_path, users=MIN_CANDIDATES_FOR_POOL, quiet=MIN_CANDIDATES_FOR_POOL)
    result = lint_paths([tmp_path], Config(root=tmp_path), jobs=jobs, use_cache=False)
    flagged = sorted(Path(d.path).name for d in result.diagnostics if d.code == "ESP004")
    assert flagged == [f"user{index}.py" for index in range(MIN_CANDIDATES_FOR_POOL)]
    main_summaries = [s for p in engine._projects.values() for s in p.summaries.values() if s]
    assert bool(main_summaries) == (jobs == 1)


def test_a_file_decided_in_a_worker_is_checked_again_when_its_helper_changes(
    tmp_path: Path,
) -> None:
    summaries_decide(tmp_path, users=MIN_CANDIDATES_FOR_POOL, quiet=1)
    config = Config(root=tmp_path)
    cache = tmp_path / ".cache"
    cold = lint_paths([tmp_path], config, jobs=2, cache_dir=cache)
    assert not any("quiet0.py" in d.path for d in cold.diagnostics)
    assert lint_paths([tmp_path], config, jobs=2, cache_dir=cache) == cold
    (tmp_path / "helpers.py").write_text(HELPERS.replace('return "barrier"', "dist.barrier()"))
    warm = lint_paths([tmp_path], config, jobs=2, cache_dir=cache)
    assert [d.line for d in warm.diagnostics if "quiet0.py" in d.path] == [5]
    assert warm == lint_paths([tmp_path], config, jobs=1, use_cache=False)

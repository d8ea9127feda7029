"""Adopting esper-lint in an existing repository, through the real `esper-lint` command: config
per file, .gitignore, every command-line option, standard input, noqa, --add-noqa and fixes."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ESPER_LINT = str(Path(sys.executable).with_name("esper-lint"))

COLLECTIVE = """\
import torch.distributed as dist


def save(model, path):
    if dist.get_rank() == 0:
        dist.barrier()
        torch.save(model.state_dict(), path)
"""
COLLECTIVE_FIXED = """\
import torch.distributed as dist


def save(model, path):
    if dist.get_rank() == 0:
        torch.save(model.state_dict(), path)
    dist.barrier()
"""
LIFECYCLE = """\
import torch.distributed as dist


def train(slot):
    if dist.get_rank() == 0:
        slot.step_epoch()
"""
CLEAN = "def train(slot):\n    slot.step_epoch()\n"


def put(root: Path, name: str, text: str) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def lint(cwd: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    env.pop("ESPER_LINT_CACHE_DIR", None)
    env["GIT_CONFIG_GLOBAL"] = os.devnull
    completed = subprocess.run(
        [ESPER_LINT, *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert "Traceback" not in completed.stdout + completed.stderr, completed.stderr
    return completed


def codes(output: str) -> list[tuple[str, str]]:
    """(path, code) of each concise line."""
    return [
        (m.group(1), m.group(2))
        for m in re.finditer(r"^(\S+?):\d+:\d+: (ESP\d+) ", output, flags=re.MULTILINE)
    ]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A monorepo: the root config selects everything; trainer/ has its own pyproject."""
    put(tmp_path, "pyproject.toml", "[tool.esper-lint]\n")
    put(tmp_path, "trainer/pyproject.toml", '[tool.esper-lint]\nignore = ["ESP001"]\n')
    put(tmp_path, "trainer/src/train.py", LIFECYCLE)
    put(tmp_path, "trainer/src/save.py", COLLECTIVE)
    put(tmp_path, "tools/train.py", LIFECYCLE)
    return tmp_path


# --- configuration per file ---------------------------------------------------------------------


def test_each_file_uses_its_closest_configuration(repo: Path) -> None:
    result = lint(repo, "--no-cache", "trainer/src", "tools")

    assert codes(result.stdout) == [
        ("tools/train.py", "ESP001"),
        ("trainer/src/save.py", "ESP004"),
    ], result.stdout
    assert result.returncode == 1


def test_dedicated_files_win_over_pyproject_in_the_same_directory(repo: Path) -> None:
    put(repo, "trainer/esper-lint.toml", 'ignore = ["ESP004"]\n')
    assert codes(lint(repo, "--no-cache", "trainer").stdout) == [("trainer/src/train.py", "ESP001")]
    put(repo, "trainer/.esper-lint.toml", 'ignore = ["ESP"]\n')
    assert codes(lint(repo, "--no-cache", "trainer").stdout) == []


def test_extend_inherits_and_globs_stay_relative_to_their_own_file(repo: Path) -> None:
    put(
        repo,
        "pyproject.toml",
        '[tool.esper-lint]\nignore = ["ESP001"]\n'
        '[tool.esper-lint.per-file-ignores]\n"trainer/src/save.py" = ["ESP004"]\n',
    )
    put(repo, "trainer/pyproject.toml", '[tool.esper-lint]\nextend = "../pyproject.toml"\n')

    assert codes(lint(repo, "--no-cache", "trainer").stdout) == []
    settings = lint(repo / "trainer", "--show-settings", "src/save.py").stdout
    assert f"configuration file: {(repo / 'trainer' / 'pyproject.toml').resolve()}" in settings
    assert f"extends: {(repo / 'pyproject.toml').resolve()}" in settings
    assert 'per-file-ignores = { "/src/save.py" = ["ESP004"] }' in settings
    assert 'ignore = ["ESP001"]' in settings

    put(repo, "trainer/pyproject.toml", '[tool.esper-lint]\nextend = "../nope.toml"\n')
    broken = lint(repo, "--no-cache", "trainer")
    assert broken.returncode == 2 and "'extend': no such file" in broken.stderr


def test_config_option_overrides_every_file(repo: Path) -> None:
    put(repo, "strict.toml", 'select = ["ESP"]\n')

    result = lint(repo, "--no-cache", "--config", "strict.toml", "trainer")

    assert codes(result.stdout) == [
        ("trainer/src/save.py", "ESP004"),
        ("trainer/src/train.py", "ESP001"),
    ]


def test_show_files_lists_what_would_be_linted(repo: Path) -> None:
    put(repo, "trainer/pyproject.toml", '[tool.esper-lint]\nexclude = ["src/save.py"]\n')
    put(repo, "tools/notes.txt", "x")

    result = lint(repo, "--show-files")

    assert result.returncode == 0
    assert result.stdout.splitlines() == ["tools/train.py", "trainer/src/train.py"]


# --- .gitignore ---------------------------------------------------------------------------------


@pytest.fixture
def git_repo(tmp_path: Path) -> Path:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    put(tmp_path, "pyproject.toml", "[tool.esper-lint]\n")
    put(tmp_path, ".gitignore", "build_out/\n*_generated.py\n")
    put(tmp_path, "pkg/.gitignore", "!keep_generated.py\nlocal/\n")
    put(tmp_path, ".git/info/exclude", "scratch.py\n")
    for name in (
        "train.py",
        "build_out/train.py",
        "model_generated.py",
        "pkg/keep_generated.py",
        "pkg/local/train.py",
        "scratch.py",
    ):
        put(tmp_path, name, LIFECYCLE)
    return tmp_path


def test_gitignore_info_exclude_and_nested_negation_are_respected(git_repo: Path) -> None:
    listed = lint(git_repo, "--show-files").stdout.splitlines()
    assert listed == ["pkg/keep_generated.py", "train.py"]
    # git agrees with every verdict
    ignored = subprocess.run(
        [
            "git",
            "check-ignore",
            "--no-index",
            *[
                "build_out/train.py",
                "model_generated.py",
                "pkg/local/train.py",
                "scratch.py",
                "pkg/keep_generated.py",
                "train.py",
            ],
        ],
        cwd=git_repo,
        capture_output=True,
        text=True,
    ).stdout.split()
    assert sorted(ignored) == sorted(
        ["build_out/train.py", "model_generated.py", "pkg/local/train.py", "scratch.py"]
    )

    everything = lint(git_repo, "--show-files", "--no-respect-gitignore").stdout.splitlines()
    assert len(everything) == 6
    put(git_repo, "pyproject.toml", "[tool.esper-lint]\nrespect-gitignore = false\n")
    assert len(lint(git_repo, "--show-files").stdout.splitlines()) == 6


# --- command-line file and rule selection ---------------------------------------------------------


def test_exclude_extend_exclude_and_force_exclude(tmp_path: Path) -> None:
    put(tmp_path, "pyproject.toml", '[tool.esper-lint]\nexclude = ["legacy"]\n')
    put(tmp_path, "legacy/old.py", LIFECYCLE)
    put(tmp_path, "gen/x.py", LIFECYCLE)
    put(tmp_path, "train.py", LIFECYCLE)

    assert [p for p, _ in codes(lint(tmp_path, "-n").stdout)] == ["gen/x.py", "train.py"]
    result = lint(tmp_path, "-n", "--extend-exclude", "gen")
    assert [p for p, _ in codes(result.stdout)] == ["train.py"]
    result = lint(tmp_path, "-n", "--exclude", "gen,train.py")
    assert [p for p, _ in codes(result.stdout)] == ["legacy/old.py"]
    # an explicit path is linted, unless --force-exclude (what the pre-commit hook passes)
    assert codes(lint(tmp_path, "-n", "legacy/old.py").stdout) == [("legacy/old.py", "ESP001")]
    forced = lint(tmp_path, "-n", "--force-exclude", "legacy/old.py", "train.py")
    assert [p for p, _ in codes(forced.stdout)] == ["train.py"]
    # CLI globs are relative to the current directory
    inner = lint(tmp_path / "gen", "-n", "--force-exclude", "--extend-exclude", "x.py", "x.py")
    assert codes(inner.stdout) == [] and inner.returncode == 0


def test_extend_select_and_per_file_ignores_on_the_command_line(tmp_path: Path) -> None:
    put(tmp_path, "pyproject.toml", '[tool.esper-lint]\nselect = ["ESP004"]\n')
    put(tmp_path, "a/train.py", LIFECYCLE)
    put(tmp_path, "b/save.py", COLLECTIVE)

    assert codes(lint(tmp_path, "-n").stdout) == [("b/save.py", "ESP004")]
    result = lint(tmp_path, "-n", "--extend-select", "ESP001")
    assert codes(result.stdout) == [("a/train.py", "ESP001"), ("b/save.py", "ESP004")]
    result = lint(tmp_path, "-n", "--extend-select", "ESP001", "--per-file-ignores", "b/*:ESP")
    assert codes(result.stdout) == [("a/train.py", "ESP001")]
    bad = lint(tmp_path, "-n", "--per-file-ignores", "nocolon")
    assert bad.returncode == 2 and "expected GLOB:CODES" in bad.stderr


def test_cache_dir_and_no_cache(tmp_path: Path) -> None:
    put(tmp_path, "pyproject.toml", "[tool.esper-lint]\n")
    put(tmp_path, "train.py", LIFECYCLE)

    lint(tmp_path, "-n")
    assert not (tmp_path / ".esper_lint_cache").exists()
    lint(tmp_path, "--no-cache")
    assert not (tmp_path / ".esper_lint_cache").exists()
    lint(tmp_path, "--cache-dir", "elsewhere")
    assert list((tmp_path / "elsewhere").glob("v*/*.json"))
    assert not (tmp_path / ".esper_lint_cache").exists()


def test_color_always_never_auto(tmp_path: Path) -> None:
    put(tmp_path, "train.py", LIFECYCLE)

    assert "\x1b[" in lint(tmp_path, "-n", "--color", "always").stdout
    assert "\x1b[" not in lint(tmp_path, "-n", "--color", "never").stdout
    assert "\x1b[" not in lint(tmp_path, "-n", "--color", "auto").stdout  # not a terminal
    assert lint(tmp_path, "-n", "--color", "sometimes").returncode == 2


# --- standard input -----------------------------------------------------------------------------


def test_stdin_is_linted_as_the_named_file(repo: Path) -> None:
    inside = lint(repo, "-n", "-", "--stdin-filename", "trainer/src/new.py", stdin=LIFECYCLE)
    assert inside.returncode == 0 and codes(inside.stdout) == []  # trainer ignores ESP001

    outside = lint(repo, "-n", "-", "--stdin-filename", "tools/new.py", stdin=LIFECYCLE)
    assert outside.returncode == 1
    assert codes(outside.stdout) == [("tools/new.py", "ESP001")]

    anonymous = lint(repo, "-n", "-", stdin=COLLECTIVE)
    assert codes(anonymous.stdout) == [("-", "ESP004")]


def test_stdin_with_force_exclude_skips_an_excluded_name(tmp_path: Path) -> None:
    put(tmp_path, "pyproject.toml", '[tool.esper-lint]\nexclude = ["legacy"]\n')

    args = ("-n", "--force-exclude", "-", "--stdin-filename", "legacy/x.py")
    result = lint(tmp_path, *args, stdin=LIFECYCLE)

    assert (result.returncode, result.stdout) == (0, "")


def test_stdin_uses_the_named_files_project_for_cross_file_facts(tmp_path: Path) -> None:
    """An unsaved buffer in an editor: its rank test lives in another module of the project."""
    put(tmp_path, "pyproject.toml", '[project]\nname = "p"\n')
    put(tmp_path, "pkg/__init__.py", "")
    put(
        tmp_path,
        "pkg/roles.py",
        "import torch.distributed as dist\n\ndef leads():\n    return dist.get_rank() == 0\n",
    )
    buffer = "import torch.distributed as dist\nfrom pkg.roles import leads\n\n\n"
    buffer += "def save():\n    if leads():\n        dist.barrier()\n"
    args = ("-n", "--output-format", "concise", "-", "--stdin-filename", "pkg/train.py")

    result = lint(tmp_path, *args, stdin=buffer)

    assert codes(result.stdout) == [("pkg/train.py", "ESP004")], result.stdout
    assert "(leads())" in result.stdout
    put(tmp_path, "pkg/roles.py", "def leads():\n    return True\n")
    assert lint(tmp_path, *args, stdin=buffer).returncode == 0


def test_stdin_fix_writes_the_fixed_buffer_to_stdout(tmp_path: Path) -> None:
    args = ("-n", "--fix", "--unsafe-fixes", "-", "--stdin-filename", "save.py")
    result = lint(tmp_path, *args, stdin=COLLECTIVE)

    assert result.stdout == COLLECTIVE_FIXED
    assert "All checks passed!" in result.stderr
    assert result.returncode == 0


# --- noqa ---------------------------------------------------------------------------------------


def test_a_noqa_survives_ruff_format_splitting_the_call(tmp_path: Path) -> None:
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    long_call = (
        "import torch.distributed as dist\n\n\n"
        "def sync(rank, tensor_with_a_long_name, another_long_argument_name):\n"
        "    if rank == 0:\n"
        "        dist.all_reduce(tensor_with_a_long_name, op=another_long_argument_name, "
        "async_op=False, group=None)  # noqa: ESP004\n"
    )
    path = put(tmp_path, "sync.py", long_call)
    assert lint(tmp_path, "-n", "--extend-select", "ESP100").returncode == 0

    subprocess.run([ruff, "format", "--isolated", "--line-length", "88", str(path)], check=True)

    formatted = path.read_text(encoding="utf-8")
    call_lines = formatted.splitlines()[5:]
    assert len(call_lines) > 1 and "noqa" not in call_lines[0], formatted
    result = lint(tmp_path, "-n", "--extend-select", "ESP100")
    assert (result.returncode, codes(result.stdout)) == (0, []), formatted + result.stdout
    # and the suppression is what keeps it quiet
    path.write_text(formatted.replace("  # noqa: ESP004", ""), encoding="utf-8")
    assert codes(lint(tmp_path, "-n").stdout) == [("sync.py", "ESP004")]


def test_unused_noqa_is_off_unless_selected_and_its_fix_is_safe(tmp_path: Path) -> None:
    source = "import torch.distributed as dist\n\ndist.barrier()  # noqa: ESP004, E501  # why\n"
    path = put(tmp_path, "a.py", source)

    assert lint(tmp_path, "-n").returncode == 0
    assert lint(tmp_path, "-n", "--select", "ESP").returncode == 0
    selected = lint(tmp_path, "-n", "--extend-select", "ESP100")
    assert codes(selected.stdout) == [("a.py", "ESP100")]
    assert "unused: ESP004" in selected.stdout

    fixed = lint(tmp_path, "-n", "--extend-select", "ESP100", "--fix")
    assert fixed.returncode == 0, fixed.stdout
    assert path.read_text(encoding="utf-8") == (
        "import torch.distributed as dist\n\ndist.barrier()  # noqa: E501  # why\n"
    )


def test_add_noqa_suppresses_everything_changes_nothing_else_and_is_idempotent(
    tmp_path: Path,
) -> None:
    source = (
        "import torch.distributed as dist\r\n\r\n\r\n"
        "def f(rank, slot):\r\n"
        "    if rank == 0:\r\n"
        "        dist.barrier()  # keep this\r\n"
        "        slot.step_epoch()  # noqa: E501\r\n"
        '        dist.broadcast_object_list(["""\r\n'
        'x""", 1])\r\n'
    )
    path = tmp_path / "a.py"
    path.write_bytes(source.encode("utf-8"))

    first = lint(tmp_path, "-n", "--add-noqa")
    assert first.returncode == 0 and "Added 3 noqa directives." in first.stderr
    after = path.read_bytes().decode("utf-8")
    old_lines, new_lines = source.split("\r\n"), after.split("\r\n")
    assert len(old_lines) == len(new_lines)
    changed = {
        i + 1: new
        for i, (old, new) in enumerate(zip(old_lines, new_lines, strict=True))
        if old != new
    }
    assert changed == {
        6: "        dist.barrier()  # keep this  # noqa: ESP004",
        7: "        slot.step_epoch()  # noqa: E501, ESP001",
        9: 'x""", 1])  # noqa: ESP004',
    }
    assert lint(tmp_path, "-n", "--extend-select", "ESP100").returncode == 0

    second = lint(tmp_path, "-n", "--add-noqa")
    assert "Added 0 noqa directives." in second.stderr
    assert path.read_bytes().decode("utf-8") == after


# --- fixes --------------------------------------------------------------------------------------


def test_fix_needs_unsafe_fixes_and_then_moves_the_collective(tmp_path: Path) -> None:
    path = put(tmp_path, "save.py", COLLECTIVE)

    safe_only = lint(tmp_path, "-n", "--fix")
    assert safe_only.returncode == 1
    assert "1 hidden fix can be enabled with --unsafe-fixes" in safe_only.stdout
    assert path.read_text(encoding="utf-8") == COLLECTIVE

    diff = lint(tmp_path, "-n", "--diff", "--unsafe-fixes")
    assert diff.returncode == 1
    assert "-        dist.barrier()\n" in diff.stdout and "+    dist.barrier()\n" in diff.stdout
    assert path.read_text(encoding="utf-8") == COLLECTIVE

    fixed = lint(tmp_path, "-n", "--fix", "--unsafe-fixes", "--show-fixes")
    assert fixed.returncode == 0, fixed.stdout
    assert "save.py:6: ESP004 Move `dist.barrier()`" in fixed.stdout
    assert "Fixed 1 error" in fixed.stdout
    assert path.read_text(encoding="utf-8") == COLLECTIVE_FIXED


def test_exit_non_zero_on_fix(tmp_path: Path) -> None:
    put(tmp_path, "save.py", COLLECTIVE)

    result = lint(tmp_path, "-n", "--fix", "--unsafe-fixes", "--exit-non-zero-on-fix")

    assert result.returncode == 1 and "All checks passed!" in result.stdout
    again = lint(tmp_path, "-n", "--fix", "--unsafe-fixes", "--exit-non-zero-on-fix")
    assert again.returncode == 0


def test_fix_is_refused_when_relinting_would_report_something_new(tmp_path: Path) -> None:
    nested = (
        "import torch.distributed as dist\n\n\n"
        "def f(rank, local_rank):\n"
        "    if rank == 0:\n"
        "        if local_rank == 0:\n"
        "            dist.barrier()\n"
    )
    path = put(tmp_path, "nested.py", nested)

    result = lint(tmp_path, "-n", "--fix", "--unsafe-fixes")

    assert path.read_text(encoding="utf-8") == nested
    assert codes(result.stdout) == [("nested.py", "ESP004")]


# --- output formats -----------------------------------------------------------------------------


def test_gitlab_report_matches_the_code_quality_schema(tmp_path: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(
        (Path(__file__).parent / "data" / "gitlab-codequality.schema.json").read_text("utf-8")
    )
    put(tmp_path, "pyproject.toml", "[tool.esper-lint]\n")
    put(
        tmp_path,
        "pkg/a.py",
        COLLECTIVE + "\n\ndef g(rank):\n    if rank == 0:\n        dist.barrier()\n",
    )

    result = lint(tmp_path / "pkg", "-n", "--output-format", "gitlab")

    report = json.loads(result.stdout)
    jsonschema.validate(report, schema)
    assert [issue["location"]["path"] for issue in report] == ["pkg/a.py", "pkg/a.py"]
    assert len({issue["fingerprint"] for issue in report}) == 2


def test_junit_report_is_read_by_junitparser(tmp_path: Path) -> None:
    junitparser = pytest.importorskip("junitparser")
    put(tmp_path, "a.py", COLLECTIVE)
    put(tmp_path, "b.py", LIFECYCLE)

    report = tmp_path / "report.xml"
    lint(tmp_path, "-n", "--output-format", "junit", "-o", str(report))

    xml = junitparser.JUnitXml.fromfile(str(report))
    cases = [(suite.name, case.name, case.result[0].type) for suite in xml for case in suite]
    assert cases == [("a.py", "ESP004 at 6:9", "ESP004"), ("b.py", "ESP001 at 6:9", "ESP001")]
    assert xml.failures == 2

    put(tmp_path, "a.py", CLEAN)
    put(tmp_path, "b.py", CLEAN)
    lint(tmp_path, "-n", "--output-format", "junit", "-o", str(report))
    clean = junitparser.JUnitXml.fromfile(str(report))
    assert clean.failures == 0 and clean.tests == 1


def test_sarif_fingerprints_do_not_move_with_the_line(tmp_path: Path) -> None:
    put(tmp_path, "a.py", COLLECTIVE)
    first = json.loads(lint(tmp_path, "-n", "--output-format", "sarif").stdout)
    put(tmp_path, "a.py", "# a new first line\n" + COLLECTIVE)
    second = json.loads(lint(tmp_path, "-n", "--output-format", "sarif").stdout)

    def prints(log: dict[str, object]) -> list[object]:
        run = log["runs"][0]  # type: ignore[index]
        return [r["partialFingerprints"] for r in run["results"]]  # type: ignore[index]

    assert prints(first) == prints(second)
    run = second["runs"][0]
    assert run["invocations"][0]["executionSuccessful"] is True
    rule = next(r for r in run["tool"]["driver"]["rules"] if r["id"] == "ESP004")
    assert rule["properties"] == {"tags": ["correctness", "distributed"], "precision": "high"}


# --- every other option, through the real entry point ---------------------------------------------

OPTION_CASES = [
    # (arguments, exit code, text expected in stdout + stderr)
    (["--select", "ESP004"], 1, "b.py:6:9: ESP004"),
    (["--select", "ESP004", "--ignore", "ESP004"], 0, "All checks passed!"),
    (["--ignore", "ESP"], 0, "All checks passed!"),
    (["-e"], 0, "Found 2 errors"),
    (["--exit-zero"], 0, "Found 2 errors"),
    (["-q"], 1, "a.py:6:9: ESP001"),
    (["--statistics"], 1, "Found 2 errors."),
    (["--explain", "ESP004"], 0, "# ESP004: rank-dependent-collective"),
    (["-j", "2"], 1, "Found 2 errors"),
    (["--jobs", "0"], 2, "must be at least 1"),
    (["--no-prefilter"], 1, "Found 2 errors"),
    (["--version"], 0, "esper-lint "),
    (["--output-format", "concise"], 1, "a.py:6:9: ESP001 "),
    (["--output-format", "text"], 1, "a.py:6:9: ESP001 "),
    (["--output-format", "full"], 1, "= help: "),
    (["--output-format", "json"], 1, '"name": "rank-conditional-lifecycle-call"'),
    (["--output-format", "json-lines"], 1, '"noqa_row": 6'),
    (["--output-format", "sarif"], 1, '"partialFingerprints"'),
    (["--output-format", "github"], 1, "::error file=a.py,line=6"),
    (["--output-format", "gitlab"], 1, '"check_name": "ESP001"'),
    (["--output-format", "junit"], 1, '<testcase name="ESP001 at 6:9"'),
    (["--respect-gitignore"], 1, "Found 2 errors"),
    (["--no-force-exclude", "a.py"], 1, "Found 1 error"),
    (["--no-fix"], 1, "Found 2 errors"),
    (["--no-unsafe-fixes", "--fix"], 1, "2 hidden fixes can be enabled with --unsafe-fixes"),
    (["--unsafe-fixes"], 1, "Found 2 errors"),  # without --fix: nothing is fixed
    (["--stdin-filename", "x.py"], 2, "--stdin-filename needs '-'"),
    (["-", "a.py"], 2, "cannot be combined"),
    (["--per-file-ignores", "a.py:NOPE1"], 2, "unknown code 'NOPE1'"),
    (["--extend-select", "XYZ"], 2, "unknown code 'XYZ'"),
    (["--config", "missing.toml"], 2, "cannot read the configuration file"),
]


@pytest.mark.parametrize(("args", "exit_code", "expected"), OPTION_CASES, ids=str)
def test_option_through_the_entry_point(
    tmp_path: Path, args: list[str], exit_code: int, expected: str
) -> None:
    put(tmp_path, "pyproject.toml", "[tool.esper-lint]\n")
    put(tmp_path, "a.py", LIFECYCLE)
    put(tmp_path, "b.py", COLLECTIVE)

    result = lint(tmp_path, "-n", *args, stdin="")

    assert result.returncode == exit_code, result.stdout + result.stderr
    assert expected in result.stdout + result.stderr


def test_output_file_gets_the_report(tmp_path: Path) -> None:
    put(tmp_path, "a.py", LIFECYCLE)

    result = lint(tmp_path, "-n", "-o", "out/report.json", "--output-format", "json")

    assert result.returncode == 1 and result.stdout == ""
    report = json.loads((tmp_path / "out" / "report.json").read_text(encoding="utf-8"))
    assert [item["code"] for item in report] == ["ESP001"]


def test_unused_noqa_in_a_file_without_any_symmetric_call_is_found(tmp_path: Path) -> None:
    put(tmp_path, "plain.py", "x = 1  # noqa: ESP004\ny = 2  # noqa: E501\n")

    result = lint(tmp_path, "-n", "--extend-select", "ESP100")

    assert codes(result.stdout) == [("plain.py", "ESP100")]
    assert lint(tmp_path, "-n", "--extend-select", "ESP100", "--no-prefilter").stdout == (
        result.stdout
    )

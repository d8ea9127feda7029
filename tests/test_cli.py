"""The esper-lint command: exit codes, options, configuration errors, output destinations."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from esper_lint import __version__
from esper_lint.cli import main
from esper_lint.rules import ALL_RULES, known_codes

VIOLATION = """\
import torch.distributed as dist


def train(slot):
    if dist.get_rank() == 0:
        slot.step_epoch()
"""
VIOLATION_LINE = "train.py:6:9: ESP001 "
# A syntax error in a file that mentions a collective, so the prefilter lets it through: ESP900.
BROKEN = "import torch.distributed as dist\ndef f(:\n    dist.barrier()\n"
CLEAN = "def train(slot):\n    slot.step_epoch()\n"

Run = tuple[int, str, str]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project (pyproject.toml without settings) as the cwd, with the cache off."""
    (tmp_path / "pyproject.toml").write_text("[tool.esper-lint]\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    for name in ("NO_COLOR", "FORCE_COLOR"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def put(root: Path, name: str, text: str) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> Run:
    code = main(["--no-cache", *args])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def run_process(*args: str, cwd: Path, env: dict[str, str] | None = None) -> Run:
    completed = subprocess.run(
        [sys.executable, "-m", "esper_lint", "--no-cache", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )
    assert "Traceback" not in completed.stdout + completed.stderr
    return completed.returncode, completed.stdout, completed.stderr


# --- exit codes ------------------------------------------------------------------------------


def test_clean_tree_exits_0(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    put(project, "train.py", CLEAN)

    code, out, err = run(capsys)

    assert (code, err) == (0, "")
    assert out == "All checks passed! (1 file checked)\n"


def test_findings_exit_1_with_one_concise_line_each(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    put(project, "train.py", VIOLATION)

    code, out, _ = run(capsys, ".")

    assert code == 1
    first, summary = out.splitlines()
    assert first.startswith(VIOLATION_LINE)
    assert "may not run on every rank" in first
    assert summary == "Found 1 error in 1 file (1 file checked)."


def test_default_path_is_the_current_directory(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    put(project, "pkg/broken.py", BROKEN)

    code, out, _ = run(capsys)

    assert code == 1
    assert out.startswith("pkg/broken.py:") or out.startswith("./pkg/broken.py:")
    assert " ESP900 " in out


def test_exit_zero_still_reports(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    put(project, "broken.py", BROKEN)

    code, out, _ = run(capsys, "--exit-zero", "broken.py")

    assert code == 0
    assert "broken.py:" in out and " ESP900 " in out


def test_quiet_prints_diagnostics_only(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    put(project, "broken.py", BROKEN)
    put(project, "ok.py", CLEAN)

    assert run(capsys, "-q", "ok.py") == (0, "", "")
    code, out, _ = run(capsys, "--quiet", "broken.py")
    assert code == 1
    assert len(out.splitlines()) == 1
    assert out.startswith("broken.py:")


def test_usage_errors_exit_2(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for args in (["--output-format", "xml"], ["--jobs", "0"], ["--jobs", "two"], ["--bogus"]):
        code, out, err = run(capsys, *args)
        assert code == 2, args
        assert "esper-lint: error:" in err


def test_internal_error_exits_2_without_traceback(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "bad\0name.py")

    assert code == 2
    assert err.startswith("esper-lint: error: ")


def test_engine_warnings_go_to_stderr(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    put(project, "ok.py", CLEAN)
    (project / "dangling.py").symlink_to(project / "nowhere.py")

    code, out, err = run(capsys)

    assert code == 0
    assert "All checks passed!" in out
    assert err.startswith("esper-lint: warning: ")
    assert "dangling.py" in err


def test_no_python_files_is_a_warning(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "empty").mkdir()

    code, _, err = run(capsys, "empty")

    assert code == 0
    assert "esper-lint: warning: no Python files found" in err


# --- select / ignore / per-file-ignores ------------------------------------------------------


def test_select_and_ignore_from_the_command_line(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    put(project, "train.py", VIOLATION)
    put(project, "broken.py", BROKEN)

    _, out, _ = run(capsys, "-q", "--select", "ESP004")
    # ESP9xx is reported whatever select says.
    assert [line.split()[1] for line in out.splitlines()] == ["ESP900"]

    code, out, _ = run(capsys, "-q", "--select", "ESP001", "--ignore", "esp9")
    assert code == 1
    assert [line.split()[1] for line in out.splitlines()] == ["ESP001"]

    assert run(capsys, "-q", "--ignore", "ESP001,ESP900")[:2] == (0, "")


def test_cli_select_overrides_the_config(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    put(project, "pyproject.toml", '[tool.esper-lint]\nselect = ["ESP004"]\nignore = ["ESP9"]\n')
    put(project, "train.py", VIOLATION)
    put(project, "broken.py", BROKEN)

    assert run(capsys, "-q")[:2] == (0, "")
    _, out, _ = run(capsys, "-q", "--select", "ESP")
    assert sorted(line.split()[1] for line in out.splitlines()) == ["ESP001", "ESP900"]


def test_per_file_ignores_from_pyproject(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    put(
        project,
        "pyproject.toml",
        '[tool.esper-lint.per-file-ignores]\n"legacy/*.py" = ["ESP9"]\n"scripts" = ["ESP001"]\n',
    )
    put(project, "legacy/broken.py", BROKEN)
    put(project, "scripts/train.py", VIOLATION)
    put(project, "src/broken.py", BROKEN)
    put(project, "src/train.py", VIOLATION)

    # Run from a subdirectory: globs stay relative to the project root.
    os.chdir(project / "src")
    _, out, _ = run(capsys, "-q", "..")

    reported = sorted(line.split(":")[0] for line in out.splitlines())
    assert reported == ["../src/broken.py", "../src/train.py"]


def test_config_option_with_a_dedicated_file(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    put(project, "broken.py", BROKEN)
    config = put(project, "ci/esper.toml", 'ignore = ["ESP900"]\n')

    assert run(capsys, "-q", "--config", str(config))[:2] == (0, "")


def test_exclude_from_pyproject(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    put(project, "pyproject.toml", '[tool.esper-lint]\nexclude = ["generated"]\n')
    put(project, "generated/broken.py", BROKEN)

    assert run(capsys, "-q")[:2] == (0, "")


# --- configuration errors: exit 2, the file and the key or line named -------------------------


@pytest.mark.parametrize(
    ("pyproject", "expected"),
    [
        ('[tool.esper-lint]\nselect = ["ESP001"\n', ["pyproject.toml", "invalid TOML", "line 3"]),
        ('[tool.esper-lint]\nignor = ["ESP001"]\n', ["unknown key 'ignor'", "'ignore'"]),
        ("[tool.esper-lint]\nexclude = 3\n", ["'exclude' must be a list of strings"]),
        ('[tool.esper-lint]\nselect = ["ESP777"]\n', ["'select'", "unknown code 'ESP777'"]),
        (
            '[tool.esper-lint.per-file-ignores]\n"a.py" = ["XYZ1"]\n',
            ["per-file-ignores", "unknown code 'XYZ1'"],
        ),
    ],
)
def test_config_errors_exit_2_naming_the_problem(
    project: Path, capsys: pytest.CaptureFixture[str], pyproject: str, expected: list[str]
) -> None:
    put(project, "pyproject.toml", pyproject)
    put(project, "train.py", CLEAN)

    code, out, err = run(capsys)

    assert code == 2
    assert out == ""
    assert err.startswith("esper-lint: error: ")
    assert str(project / "pyproject.toml") in err
    for fragment in expected:
        assert fragment in err


def test_unknown_code_on_the_command_line_exits_2(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "--ignore", "ESP001,F401")

    assert code == 2
    assert "esper-lint: error: --ignore: unknown code 'F401'" in err


def test_missing_config_file_exits_2(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--config", "nope.toml")

    assert code == 2
    assert "nope.toml" in err


# --- output formats and destinations ---------------------------------------------------------


def test_json_output(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    put(project, "train.py", VIOLATION)

    code, out, _ = run(capsys, "--output-format", "json", "train.py")

    assert code == 1
    (item,) = json.loads(out)
    assert (item["code"], item["filename"], item["location"]) == (
        "ESP001",
        "train.py",
        {"row": 6, "column": 9},
    )
    assert item["fix"] is None


def test_machine_formats_have_no_summary(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    put(project, "ok.py", CLEAN)

    assert json.loads(run(capsys, "--output-format", "json")[1]) == []
    assert run(capsys, "--output-format", "json-lines")[1] == ""
    assert run(capsys, "--output-format", "github")[1] == ""


def test_json_lines_and_github_output(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    put(project, "broken.py", BROKEN)
    put(project, "train.py", VIOLATION)

    _, out, _ = run(capsys, "--output-format", "json-lines")
    assert [json.loads(line)["code"] for line in out.splitlines()] == ["ESP900", "ESP001"]

    _, out, _ = run(capsys, "--output-format", "github", "train.py")
    assert out.startswith("::error file=train.py,line=6,col=9,")
    assert ",title=ESP001::" in out
    assert "::ESP001 " in out


def test_full_output_shows_source_and_caret(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    put(project, "train.py", VIOLATION)

    _, out, _ = run(capsys, "--output-format", "full", "train.py")

    lines = out.splitlines()
    assert lines[0].startswith(VIOLATION_LINE)
    assert lines[2] == "5 |     if dist.get_rank() == 0:"
    assert lines[3] == "  |     ------------------------ rank-dependent condition"
    assert lines[4] == "6 |         slot.step_epoch()"
    assert lines[5].startswith("  |         ^")
    assert lines[6].startswith("  = help: Move the call out")
    assert lines[7] == "  = see: https://esper-lint.readthedocs.io/en/latest/rules/ESP001/"
    assert lines[-1] == "Found 1 error in 1 file (1 file checked)."


def test_output_file(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    put(project, "train.py", VIOLATION)
    target = project / "reports" / "deep" / "esper.json"

    code, out, _ = run(capsys, "--output-format", "json", "--output-file", str(target))

    assert (code, out) == (1, "")
    assert json.loads(target.read_text(encoding="utf-8"))[0]["code"] == "ESP001"


def test_output_file_never_gets_colour(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")
    put(project, "broken.py", BROKEN)

    run(capsys, "-o", "out.txt")

    text = (project / "out.txt").read_text(encoding="utf-8")
    assert " ESP900 " in text and "\x1b[" not in text


def test_unwritable_output_file_exits_2(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    put(project, "blocker", "a file, not a directory")

    code, _, err = run(capsys, "-o", "blocker/out.json")

    assert code == 2
    assert "esper-lint: error: cannot write blocker/out.json" in err


def test_statistics(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    put(project, "a.py", BROKEN)
    put(project, "b.py", BROKEN)
    put(project, "train.py", VIOLATION)

    code, out, _ = run(capsys, "--statistics")

    assert code == 1
    lines = out.splitlines()
    assert [line.split("\t")[:2] for line in lines[:-1]] == [["2", "ESP900"], ["1", "ESP001"]]
    assert lines[-1] == "Found 3 errors."
    _, out, _ = run(capsys, "--statistics", "--output-format", "json")
    assert [(e["code"], e["count"]) for e in json.loads(out)] == [("ESP900", 2), ("ESP001", 1)]


# --- colour ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "coloured"),
    [({}, False), ({"FORCE_COLOR": "1"}, True), ({"FORCE_COLOR": "1", "NO_COLOR": "1"}, False)],
)
def test_colour_when_not_a_terminal(
    project: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    environ: dict[str, str],
    coloured: bool,
) -> None:
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    put(project, "broken.py", BROKEN)

    out = run(capsys)[1]

    assert ("\x1b[" in out) is coloured
    assert "\x1b[" not in run(capsys, "--output-format", "json")[1]


def run_on_terminal(project: Path, env: dict[str, str]) -> str:
    """Run in a subprocess whose stdout is a pseudo-terminal; return what it printed."""
    leader, follower = pty.openpty()
    environ = {**os.environ, "TERM": "xterm", **env}
    for name in ("NO_COLOR", "FORCE_COLOR"):
        if name not in env:
            environ.pop(name, None)
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "esper_lint", "--no-cache", "broken.py"],
            cwd=project,
            stdout=follower,
            stderr=subprocess.DEVNULL,
            env=environ,
        )
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert process.wait(timeout=120) == 1
    finally:
        os.close(leader)
    return b"".join(chunks).decode("utf-8")


def test_terminal_gets_full_format_in_colour_unless_no_color(project: Path) -> None:
    put(project, "broken.py", BROKEN)

    coloured = run_on_terminal(project, {})
    plain = run_on_terminal(project, {"NO_COLOR": "1"})

    assert "\x1b[" in coloured
    assert "\x1b[" not in plain
    # full format: the source line under the headline.
    assert " |     dist.barrier()" in plain or " | def f(:" in plain


# --- rule documentation, version -------------------------------------------------------------


def test_rule_prints_the_rules_markdown(capsys: pytest.CaptureFixture[str]) -> None:
    for rule in ALL_RULES:
        assert main(["rule", rule.code]) == 0
        assert capsys.readouterr().out == rule.markdown()
    assert main(["rule", "esp001"]) == 0
    assert capsys.readouterr().out.startswith("# ESP001")


def test_explain_is_the_same_as_rule(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--explain", "ESP002"]) == 0
    explained = capsys.readouterr().out
    assert main(["rule", "ESP002"]) == 0
    assert capsys.readouterr().out == explained
    assert "ESP002" in explained


def test_rule_all_lists_every_rule(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rule", "--all"]) == 0

    lines = capsys.readouterr().out.splitlines()

    assert [line.split()[0] for line in lines] == list(known_codes())
    for line, rule in zip(lines, ALL_RULES, strict=True):
        assert rule.name in line and rule.summary in line


@pytest.mark.parametrize("args", [["rule", "ESP999"], ["--explain", "nope"], ["rule"]])
def test_unknown_or_missing_rule_code_exits_2(
    capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    assert main(args) == 2
    assert "esper-lint" in capsys.readouterr().err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"esper-lint {__version__}\n"


# --- real processes --------------------------------------------------------------------------


def test_console_script_and_module_agree(project: Path) -> None:
    put(project, "broken.py", BROKEN)
    script = Path(sys.executable).with_name("esper-lint")

    via_module = run_process("-q", cwd=project)
    via_script = subprocess.run(
        [str(script), "--no-cache", "-q"], cwd=project, capture_output=True, text=True
    )

    assert via_module[0] == via_script.returncode == 1
    assert via_module[1] == via_script.stdout
    assert " ESP900 " in via_script.stdout


def test_process_exit_codes_and_no_traceback(project: Path) -> None:
    put(project, "train.py", CLEAN)
    assert run_process(cwd=project)[0] == 0
    assert run_process("--version", cwd=project)[1] == f"esper-lint {__version__}\n"

    put(project, "pyproject.toml", "[tool.esper-lint\n")
    code, out, err = run_process(cwd=project)
    assert (code, out) == (2, "")
    assert err.startswith("esper-lint: error: ") and "line 1" in err


def test_importing_the_cli_stays_cheap() -> None:
    probe = (
        "import sys, esper_lint.cli; "
        "print(sorted(m for m in ('libcst', 'esper_lint.engine', 'esper_lint.checker', 'difflib',"
        " 'json') if m in sys.modules))"
    )
    completed = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )

    assert completed.stdout.strip() == "[]"


def test_help_wraps_as_argparse_does_at_the_width_columns_gives(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The formatter reads the width without shutil; the help must not change for it."""
    import argparse

    from esper_lint.cli import build_parser

    helps = []
    for columns in ("50", "200"):
        monkeypatch.setenv("COLUMNS", columns)
        ours = build_parser()
        stock = build_parser()
        stock.formatter_class = argparse.HelpFormatter
        assert ours.format_help() == stock.format_help()
        helps.append(ours.format_help())
    assert helps[0] != helps[1]

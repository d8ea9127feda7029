"""Hostile inputs: every case yields a diagnostic or a clear skip message and a defined exit code,
and every other file in the tree is still linted.

The committed cases live in tests/fixtures/bad/ and carry `# expect: ESP9xx` markers, read from
the raw bytes (tokenize can't read most of them). The cases that can't hold a marker (binary,
unreadable, symlinks, 50,000 lines) are built here in a temporary directory. Each case is linted
by the real CLI in a subprocess next to a file with a real finding, which must still be reported.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from test_fixtures import expected_findings

from esper_lint.checker import check_source
from esper_lint.cli import main
from esper_lint.config import Config

REPO = Path(__file__).resolve().parent.parent
FIXTURES_DIR = REPO / "tests" / "fixtures"
BAD_DIR = FIXTURES_DIR / "bad"
RAW_MARKER = re.compile(rb"#\s*expect:\s*(ESP\d{3}(?:\s*,\s*ESP\d{3})*)")

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2
SEGFAULT = -11

NEIGHBOUR_NAME = "neighbour.py"
NEIGHBOUR = b"import torch.distributed as dist\n\nif dist.get_rank() == 0:\n    dist.barrier()\n"
NEIGHBOUR_FINDING = (NEIGHBOUR_NAME, 4, "ESP004")
CANDIDATE_HEADER = b"import torch.distributed as dist\n"

Finding = tuple[str, int, str]  # (path relative to the linted directory, line, code)


def raw_markers(data: bytes) -> set[tuple[int, str]]:
    """(line, code) of every `# expect:` marker, from bytes (universal newlines, like Python)."""
    found: set[tuple[int, str]] = set()
    for number, line in enumerate(data.splitlines(), start=1):
        for match in RAW_MARKER.finditer(line):
            codes = match.group(1).decode("ascii").split(",")
            found.update((number, code.strip()) for code in codes)
    return found


def marked_files(directory: Path) -> Iterator[Path]:
    for path in sorted(directory.rglob("*")):
        if path.is_file() and not path.is_symlink() and path.suffix in (".py", ".pyi"):
            yield path


BAD_FILES = list(marked_files(BAD_DIR))


@dataclass
class CliRun:
    code: int
    findings: set[Finding]
    messages: dict[Finding, str]
    stderr: str
    seconds: float

    def warnings(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.startswith("esper-lint: warn")]


# The interpreter lives under /root here, which an unprivileged user can't reach: start as root,
# import everything the run needs, then drop privileges for good before linting.
DROP_PRIVILEGES_THEN_LINT = """
import os, sys
import json, tomllib, concurrent.futures, multiprocessing
import io, shutil, subprocess, tempfile, tokenize, pathspec  # imported lazily by the run
import libcst
import esper_lint.analysis.facts, esper_lint.checker, esper_lint.cli, esper_lint.engine
import esper_lint.prefilter, esper_lint.report, esper_lint.report.json_output, esper_lint.rules
uid, gid = int(sys.argv[1]), int(sys.argv[2])
os.setgroups([])
os.setgid(gid)
os.setuid(uid)
sys.exit(esper_lint.cli.main(sys.argv[3:]))
"""


def _no_core_dumps() -> None:
    # A crash under test must fail fast, not spend seconds writing a core file.
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def run_cli(
    directory: Path,
    *arguments: str,
    as_user: tuple[int, int] | None = None,
    timeout: float = 120,
) -> CliRun:
    """The real ``esper-lint`` in a subprocess, on ``directory`` (its cwd), JSON output."""
    options = [".", "--output-format", "json", "--no-cache", *arguments]
    if as_user is None:
        command = [sys.executable, "-m", "esper_lint", *options]
    else:
        uid, gid = as_user
        command = [sys.executable, "-c", DROP_PRIVILEGES_THEN_LINT, str(uid), str(gid), *options]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "NO_COLOR": "1"}
    started = time.perf_counter()
    completed = subprocess.run(
        command,
        cwd=directory,
        capture_output=True,
        timeout=timeout,
        env=env,
        preexec_fn=_no_core_dumps,
    )
    seconds = time.perf_counter() - started
    stderr = completed.stderr.decode("utf-8", "replace")
    assert "Traceback" not in stderr, stderr
    findings: set[Finding] = set()
    messages: dict[Finding, str] = {}
    if completed.returncode in (EXIT_CLEAN, EXIT_FINDINGS):
        for item in json.loads(completed.stdout):
            filename = os.path.normpath(item["filename"])
            finding = (filename, item["location"]["row"], item["code"])
            findings.add(finding)
            messages[finding] = item["message"]
    return CliRun(completed.returncode, findings, messages, stderr, seconds)


# --- the committed bad inputs -----------------------------------------------------------------


def test_every_committed_case_is_present() -> None:
    names = {path.relative_to(BAD_DIR).as_posix() for path in BAD_FILES}
    required = {
        "syntax_error.py",
        "python2_code.py",
        "non_utf8_bytes.py",
        "latin1_cookie.py",
        "bom_crlf.py",
        "tabs_consistent.py",
        "tabs_inconsistent.py",
        "nul_byte_in_code.py",
        "empty.py",
        "nesting_500_levels.py",
        "directory_named_like_a_module.py/inner.py",
    }
    assert required <= names
    # git must keep these bytes exact (no CRLF normalisation): .gitattributes says -text.
    assert (BAD_DIR / "bom_crlf.py").read_bytes().count(b"\r\n") >= 5
    assert (BAD_DIR / "cr_only_line_endings.py").read_bytes().count(b"\n") == 0
    assert (BAD_DIR / "empty.py").read_bytes() == b""
    assert b"\t" in (BAD_DIR / "tabs_inconsistent.py").read_bytes()
    assert (BAD_DIR / "nesting_500_levels.py").read_bytes().count(b"[") == 500
    gitattributes = (REPO / ".gitattributes").read_text(encoding="utf-8")
    assert "tests/fixtures/bad/** -text" in gitattributes


@pytest.mark.parametrize(
    "bad_file", BAD_FILES, ids=[path.relative_to(BAD_DIR).as_posix() for path in BAD_FILES]
)
def test_committed_case_reports_its_markers_with_a_defined_exit_code(
    bad_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = bad_file.read_bytes()
    diagnostics = check_source(source, str(bad_file), Config())
    assert {(d.line, d.code) for d in diagnostics} == raw_markers(source)
    exit_code = main([str(bad_file), "--no-cache", "--output-format", "concise"])
    assert exit_code == (EXIT_FINDINGS if raw_markers(source) else EXIT_CLEAN)
    assert "Traceback" not in capsys.readouterr().err
    for diagnostic in diagnostics:
        if diagnostic.code == "ESP900":
            assert diagnostic.message.startswith("file could not be parsed: ")
            assert len(diagnostic.message) > len("file could not be parsed: ")


@pytest.mark.slow
def test_committed_cases_through_the_cli_next_to_a_real_finding(tmp_path: Path) -> None:
    shutil.copytree(BAD_DIR, tmp_path / "bad", symlinks=True)
    (tmp_path / NEIGHBOUR_NAME).write_bytes(NEIGHBOUR)
    expected = {NEIGHBOUR_FINDING}
    for path in marked_files(tmp_path / "bad"):
        relative = str(path.relative_to(tmp_path))
        expected.update((relative, line, code) for line, code in raw_markers(path.read_bytes()))

    for jobs in ("1", "2"):
        run = run_cli(tmp_path, "--jobs", jobs)
        assert run.code == EXIT_FINDINGS, run.stderr
        assert run.findings == expected
        assert run.warnings() == []


def test_nesting_500_levels_is_esp901_through_the_cli(tmp_path: Path) -> None:
    shutil.copy(BAD_DIR / "nesting_500_levels.py", tmp_path / "deep.py")
    (tmp_path / NEIGHBOUR_NAME).write_bytes(NEIGHBOUR)

    run = run_cli(tmp_path)

    assert run.code == EXIT_FINDINGS
    assert run.findings == {("deep.py", 1, "ESP901"), NEIGHBOUR_FINDING}
    assert "nesting is too deep" in run.messages[("deep.py", 1, "ESP901")]


@pytest.mark.slow
def test_nesting_500_levels_in_pool_workers(tmp_path: Path) -> None:
    """Enough candidates for the process pool: a RecursionError in a worker is ESP901 too."""
    deep = (BAD_DIR / "nesting_500_levels.py").read_bytes()
    for index in range(10):
        (tmp_path / f"deep_{index}.py").write_bytes(deep + f"# copy {index}\n".encode())
    (tmp_path / NEIGHBOUR_NAME).write_bytes(NEIGHBOUR)

    run = run_cli(tmp_path, "--jobs", "2")

    assert run.code == EXIT_FINDINGS
    expected = {(f"deep_{index}.py", 1, "ESP901") for index in range(10)} | {NEIGHBOUR_FINDING}
    assert run.findings == expected


def test_cli_reports_exactly_the_marked_lines_of_every_fixture() -> None:
    """`esper-lint tests/fixtures` reports the union of all markers, flat fixtures and bad/."""
    completed = subprocess.run(
        [sys.executable, "-m", "esper_lint", "tests/fixtures", "--output-format", "json"]
        + ["--no-cache"],
        cwd=REPO,
        capture_output=True,
        timeout=240,
    )
    assert completed.returncode == EXIT_FINDINGS, completed.stderr
    reported = {
        (os.path.normpath(item["filename"]), item["location"]["row"], item["code"])
        for item in json.loads(completed.stdout)
    }
    expected: set[Finding] = set()
    for path in sorted(FIXTURES_DIR.rglob("*.py*")):
        if not path.is_file() or path.suffix not in (".py", ".pyi"):
            continue
        data = path.read_bytes()
        in_bad = BAD_DIR in path.parents
        markers = raw_markers(data) if in_bad else expected_findings(data)
        relative = os.path.normpath(path.relative_to(REPO))
        expected.update((relative, line, code) for line, code in markers)
    assert reported - expected == set(), "reported but not marked"
    assert expected - reported == set(), "marked but not reported"


# --- bad inputs that can't be committed or can't hold a marker --------------------------------


@dataclass
class Case:
    """A hostile entry built in the tree, and what linting the tree must say about it."""

    build: Callable[[Path], None]
    findings: set[Finding] = field(default_factory=set)
    warnings: tuple[str, ...] = ()
    exit_alone: int = EXIT_FINDINGS


def _binary_with_name(root: Path) -> None:
    (root / "blob.py").write_bytes(
        bytes(range(256)) * 8 + b" dist.barrier() " + bytes(range(255, -1, -1))
    )


def _binary_without_names(root: Path) -> None:
    (root / "blob.py").write_bytes(bytes(range(256)) * 64)


def _broken_symlink(root: Path) -> None:
    (root / "dangling.py").symlink_to(root / "missing.py")


def _file_symlink_loop(root: Path) -> None:
    (root / "loop.py").symlink_to("loop.py")


def _two_file_symlink_loop(root: Path) -> None:
    (root / "ping.py").symlink_to("pong.py")
    (root / "pong.py").symlink_to("ping.py")


def _directory_symlink_loop(root: Path) -> None:
    (root / "pkg").mkdir()
    (root / "pkg" / "ok.py").write_bytes(b"x = 1\n")
    (root / "pkg" / "again").symlink_to("..")


def _directory_named_x_py(root: Path) -> None:
    (root / "x.py").mkdir()
    (root / "x.py" / "inside.py").write_bytes(NEIGHBOUR)
    (root / "empty.py").mkdir()


def _fifo(root: Path) -> None:
    os.mkfifo(root / "pipe.py")


def _proc_mem_symlink(root: Path) -> None:
    # /proc/self/mem is a "regular file" whose first page can't be read, even by root: EIO.
    (root / "memory.py").symlink_to("/proc/self/mem")


def _symlink_to_the_tree(root: Path) -> None:
    (root / "self").symlink_to(".")


BUILT_CASES = {
    "binary_with_a_symmetric_name": Case(_binary_with_name, findings={("blob.py", 1, "ESP900")}),
    "binary_without_symmetric_names_is_not_parsed": Case(
        _binary_without_names, exit_alone=EXIT_CLEAN
    ),
    "broken_symlink": Case(
        _broken_symlink, warnings=("dangling.py: broken symlink, skipped",), exit_alone=EXIT_CLEAN
    ),
    "symlink_loop_file": Case(
        _file_symlink_loop, warnings=("loop.py: symlink loop, skipped",), exit_alone=EXIT_CLEAN
    ),
    "symlink_loop_two_files": Case(
        _two_file_symlink_loop,
        warnings=("ping.py: symlink loop, skipped", "pong.py: symlink loop, skipped"),
        exit_alone=EXIT_CLEAN,
    ),
    "symlink_loop_directory": Case(
        _directory_symlink_loop,
        warnings=("pkg/again: symlink loop, skipped",),
        exit_alone=EXIT_CLEAN,
    ),
    "symlink_to_the_tree_itself": Case(
        _symlink_to_the_tree, warnings=("self: symlink loop, skipped",), exit_alone=EXIT_CLEAN
    ),
    "directory_named_x_py": Case(_directory_named_x_py, findings={("x.py/inside.py", 4, "ESP004")}),
    "fifo_named_py": Case(
        _fifo, warnings=("pipe.py: not a regular file, skipped",), exit_alone=EXIT_CLEAN
    ),
    "unreadable_proc_mem": Case(_proc_mem_symlink, findings={("memory.py", 1, "ESP902")}),
}


def _lint_in_process(root: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    cwd = os.getcwd()
    os.chdir(root)
    try:
        code = main([".", "--no-cache", "--output-format", "concise"])
    finally:
        os.chdir(cwd)
    return code, capsys.readouterr().err


@pytest.mark.parametrize("name", sorted(BUILT_CASES))
def test_built_case_alone_and_next_to_a_real_finding(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case = BUILT_CASES[name]
    alone, beside = tmp_path / "alone", tmp_path / "beside"
    for root in (alone, beside):
        root.mkdir()
        case.build(root)
    (beside / NEIGHBOUR_NAME).write_bytes(NEIGHBOUR)

    # Alone, in-process: the exit code the case defines by itself.
    code, stderr = _lint_in_process(alone, capsys)
    assert code == case.exit_alone, stderr
    for warning in case.warnings:
        assert f"esper-lint: warning: {warning}" in stderr

    # Beside a real finding, in a subprocess: the case's outcome and the finding, nothing else.
    run = run_cli(beside, timeout=60)
    assert run.code == EXIT_FINDINGS, run.stderr
    assert run.findings == case.findings | {NEIGHBOUR_FINDING}
    assert sorted(run.warnings()) == sorted(f"esper-lint: warning: {w}" for w in case.warnings)


def test_a_binary_file_with_a_name_reports_the_decoding_error(tmp_path: Path) -> None:
    _binary_with_name(tmp_path)
    run = run_cli(tmp_path)
    assert "can't decode byte" in run.messages[("blob.py", 1, "ESP900")]


def test_read_error_message_names_the_os_error(tmp_path: Path) -> None:
    _proc_mem_symlink(tmp_path)
    run = run_cli(tmp_path)
    assert run.messages[("memory.py", 1, "ESP902")] == "file could not be read: Input/output error"


# --- an unreadable file and directory: the CLI as an unprivileged user -----------------------


def _unprivileged() -> tuple[int, int] | None:
    """(uid, gid) to drop to, if this process can drop privileges; None otherwise."""
    if os.geteuid() != 0:
        return os.geteuid(), os.getegid()
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        return None
    return nobody.pw_uid, nobody.pw_gid


@pytest.fixture()
def world_readable_tree() -> Iterator[Path]:
    """A directory the unprivileged user can reach (pytest's tmp_path is private to root)."""
    directory = Path(tempfile.mkdtemp(prefix="esper-lint-unreadable-"))
    directory.chmod(0o755)
    try:
        yield directory
    finally:
        for path in directory.rglob("*"):
            if not path.is_symlink():
                path.chmod(0o700)
        shutil.rmtree(directory)


def test_unreadable_file_and_directory(world_readable_tree: Path) -> None:
    ids = _unprivileged()
    if ids is None:
        pytest.skip("running as root and no 'nobody' user exists: nothing can deny a read")
    root = world_readable_tree
    (root / NEIGHBOUR_NAME).write_bytes(NEIGHBOUR)
    (root / NEIGHBOUR_NAME).chmod(0o644)
    secret = root / "secret.py"
    secret.write_bytes(NEIGHBOUR)
    secret.chmod(0o000)
    locked = root / "locked"
    locked.mkdir()
    (locked / "hidden.py").write_bytes(NEIGHBOUR)
    locked.chmod(0o000)

    run = run_cli(root, as_user=ids if os.geteuid() == 0 else None)

    assert run.code == EXIT_FINDINGS, run.stderr
    assert run.findings == {("secret.py", 1, "ESP902"), NEIGHBOUR_FINDING}
    assert run.messages[("secret.py", 1, "ESP902")] == "file could not be read: Permission denied"
    assert run.warnings() == [
        "esper-lint: warning: locked: cannot list directory (Permission denied), skipped"
    ]


# --- a 50,000-line file ---------------------------------------------------------------------

FIFTY_THOUSAND = 50_000


def _long_candidate(lines: int) -> bytes:
    middle = lines // 2
    body = [b"import torch.distributed as dist"]
    body += [f"value_{index} = {index} * 2  # filler".encode() for index in range(2, lines - 2)]
    body[middle - 1] = b"if dist.get_rank() == 0: dist.barrier()"
    body += [b"if dist.get_rank() == 0:", b"    dist.barrier()"]
    return b"\n".join(body) + b"\n"


@pytest.mark.slow
def test_a_50000_line_file_is_linted_with_exact_positions(tmp_path: Path) -> None:
    source = _long_candidate(FIFTY_THOUSAND)
    assert source.count(b"\n") == FIFTY_THOUSAND - 1
    (tmp_path / "long.py").write_bytes(source)
    (tmp_path / "long_plain.py").write_bytes(b"x = 1\n" * FIFTY_THOUSAND)
    (tmp_path / NEIGHBOUR_NAME).write_bytes(NEIGHBOUR)

    run = run_cli(tmp_path, timeout=240)

    assert run.code == EXIT_FINDINGS, run.stderr
    assert run.findings == {
        ("long.py", FIFTY_THOUSAND // 2, "ESP004"),
        ("long.py", FIFTY_THOUSAND - 1, "ESP004"),
        NEIGHBOUR_FINDING,
    }


# --- crashes found while writing these tests (see docs/reliability.md) ------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    "deep_line",
    [
        b"x = " + b"f(" * 1200 + b")" * 1200,  # crashed libcst before checker.py's bracket guard
        b"x = " + b"[" * 5000 + b"]" * 5000,
        b"x = a" + b"[b" * 999 + b"]" * 999,
    ],
    ids=["calls_1200", "lists_5000", "subscripts_999"],
)
def test_deep_brackets_do_not_kill_the_run(tmp_path: Path, deep_line: bytes) -> None:
    (tmp_path / "deeper.py").write_bytes(CANDIDATE_HEADER + deep_line + b"\ndist.barrier()\n")
    (tmp_path / NEIGHBOUR_NAME).write_bytes(NEIGHBOUR)

    run = run_cli(tmp_path)

    assert run.code == EXIT_FINDINGS, f"exit {run.code}: {run.stderr}"
    assert run.findings == {("deeper.py", 1, "ESP901"), NEIGHBOUR_FINDING}


@pytest.mark.slow
def test_long_operator_chains_do_not_kill_the_run(tmp_path: Path) -> None:
    (tmp_path / "chain.py").write_bytes(
        CANDIDATE_HEADER + b"x = " + b"-" * 10_000 + b"y\ndist.barrier()\n"
    )
    (tmp_path / NEIGHBOUR_NAME).write_bytes(NEIGHBOUR)

    run = run_cli(tmp_path)

    assert run.code == EXIT_FINDINGS, f"exit {run.code} ({SEGFAULT} is SIGSEGV): {run.stderr}"
    assert NEIGHBOUR_FINDING in run.findings
    assert {code for path, _, code in run.findings if path == "chain.py"} <= {"ESP900", "ESP901"}


def test_a_syntax_error_is_reported_on_its_own_line() -> None:
    source = CANDIDATE_HEADER + b"x = = 1\ndist.barrier()\n"
    [diagnostic] = check_source(source, "broken.py", Config())
    assert (diagnostic.code, diagnostic.line) == ("ESP900", 2)


@pytest.mark.parametrize(
    "literal", [b'"\x00RANK"', b'"\\N{NO SUCH NAME}"', b"'\\x'"], ids=["nul", "bad_name", "bad_hex"]
)
def test_an_undecodable_string_literal_does_not_abort_the_analysis(literal: bytes) -> None:
    source = (
        CANDIDATE_HEADER
        + b"import os\n\nif os.getenv("
        + literal
        + b") == '0':\n    dist.barrier()\nif dist.get_rank() == 0:\n    dist.barrier()\n"
    )
    diagnostics = check_source(source, "strings.py", Config())
    assert "ESP901" not in {d.code for d in diagnostics}, diagnostics
    assert (7, "ESP004") in {(d.line, d.code) for d in diagnostics}


# --- configuration errors, through the real process -------------------------------------------


@pytest.mark.parametrize(
    ("pyproject", "fragments"),
    [
        (b'[tool.esper-lint]\nselect = ["ESP001"\n', ["invalid TOML", "line 3"]),
        (b"[tool.esper-lint]\nselect = []\n# caf\xe9\n", ["invalid TOML", "not UTF-8"]),
        (b'[tool.esper-lint]\nselect = ["ESP001"]\x00\n', ["invalid TOML", "line 2"]),
        (b"\xef\xbb\xbf[tool.esper-lint]\n", ["invalid TOML", "line 1"]),
        (b'[tool.esper-lint]\nselect = "ESP001"\n', ["'select' must be a list of strings"]),
        (b"[tool.esper-lint]\nper-file-ignores = 3\n", ["'per-file-ignores' must be a table"]),
        (b'[tool.esper-lint]\nignore = ["ESP0999"]\n', ["'ignore'", "unknown code 'ESP0999'"]),
        (b'[tool.esper-lint]\nsellect = ["ESP001"]\n', ["unknown key 'sellect'"]),
    ],
)
def test_config_errors_exit_2_in_a_real_process(
    tmp_path: Path, pyproject: bytes, fragments: list[str]
) -> None:
    (tmp_path / "pyproject.toml").write_bytes(pyproject)
    (tmp_path / NEIGHBOUR_NAME).write_bytes(NEIGHBOUR)

    run = run_cli(tmp_path)

    assert run.code == EXIT_ERROR
    assert run.stderr.startswith(f"esper-lint: error: {tmp_path / 'pyproject.toml'}: ")
    for fragment in fragments:
        assert fragment in run.stderr
    assert len(run.stderr.splitlines()) == 1


def test_config_option_naming_a_directory_exits_2(tmp_path: Path) -> None:
    (tmp_path / "conf.toml").mkdir()
    (tmp_path / NEIGHBOUR_NAME).write_bytes(NEIGHBOUR)
    run = run_cli(tmp_path, "--config", "conf.toml")
    assert run.code == EXIT_ERROR
    assert "conf.toml" in run.stderr and "Is a directory" in run.stderr

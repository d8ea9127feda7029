"""The cache under stress: concurrent processes, corrupted files, a read-only directory.

Every result is compared with a ``--no-cache`` baseline of the same tree: the cache may only
ever make a run faster, never change what it reports.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from esper_lint.config import Config
from esper_lint.engine import lint_paths

CACHE_ENV = "ESPER_LINT_CACHE_DIR"
Outcome = list[tuple[str, int, int, str, str]]

VIOLATING = (
    "import torch.distributed as dist\n\n\n"
    "def epoch_end(slot, rank):\n"
    "    if rank == 0:\n"
    "        slot.step_epoch()\n"
    "    dist.barrier()\n"
)
CLEAN_CANDIDATE = "import torch.distributed as dist\n\n\ndef sync():\n    dist.barrier()\n"
BROKEN_CANDIDATE = "import torch.distributed as dist\ndist.barrier() dist.barrier()\n"
PLAIN = "def add(a, b):\n    return a + b\n"
TEMPLATES = [VIOLATING, CLEAN_CANDIDATE, BROKEN_CANDIDATE, PLAIN]


def make_tree(root: Path, files: int = 30) -> list[Path]:
    paths = []
    for index in range(files):
        path = root / f"pkg{index % 4}" / f"module_{index}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(TEMPLATES[index % len(TEMPLATES)] + f"# {index}\n", encoding="utf-8")
        paths.append(path)
    return paths


def baseline(root: Path) -> Outcome:
    result = lint_paths([root], Config(root=root), jobs=1, use_cache=False)
    assert not result.warnings
    return [
        (os.path.relpath(d.path, root), d.line, d.column, d.code, d.message)
        for d in result.diagnostics
    ]


def cached_run(root: Path, cache: Path) -> tuple[Outcome, list[str]]:
    result = lint_paths([root], Config(root=root), jobs=1, cache_dir=cache)
    outcome = [
        (os.path.relpath(d.path, root), d.line, d.column, d.code, d.message)
        for d in result.diagnostics
    ]
    return outcome, result.warnings


def cli_command(*options: str) -> list[str]:
    return [sys.executable, "-m", "esper_lint", ".", "--output-format", "json", *options]


def cli_env(cache: Path) -> dict[str, str]:
    return {**os.environ, CACHE_ENV: str(cache), "PYTHONDONTWRITEBYTECODE": "1"}


def parse_cli(stdout: bytes) -> Outcome:
    return [
        (
            os.path.normpath(item["filename"]),
            item["location"]["row"],
            item["location"]["column"],
            item["code"],
            item["message"],
        )
        for item in json.loads(stdout)
    ]


def run_cli(
    root: Path, cache: Path, *options: str, prefix: tuple[str, ...] = ()
) -> tuple[int, Outcome, list[str]]:
    completed = subprocess.run(
        [*prefix, *cli_command(*options)],
        cwd=root,
        env=cli_env(cache),
        capture_output=True,
        timeout=120,
    )
    stderr = completed.stderr.decode("utf-8", "replace")
    assert "Traceback" not in stderr, stderr
    warnings = [line for line in stderr.splitlines() if "warning" in line]
    return completed.returncode, parse_cli(completed.stdout), warnings


# --- two processes at once, 20 rounds ---------------------------------------------------------

ROUNDS = 20


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_two_processes_linting_at_once_never_corrupt_results(tmp_path: Path) -> None:
    root, cache = tmp_path / "tree", tmp_path / "cache"
    paths = make_tree(root)
    shuffle = random.Random(20)
    for round_number in range(ROUNDS):
        # Change a few files every round so both processes have entries to write.
        for path in shuffle.sample(paths, 4):
            template = shuffle.choice(TEMPLATES)
            path.write_text(template + f"# round {round_number}\n", encoding="utf-8")
        expected = baseline(root)
        processes = [
            subprocess.Popen(
                cli_command("--jobs", jobs),
                cwd=root,
                env=cli_env(cache),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            for jobs in ("1", "2")
        ]
        for process in processes:
            stdout, stderr = process.communicate(timeout=120)
            assert process.returncode == 1, stderr.decode()
            assert stderr == b"", stderr.decode()
            assert parse_cli(stdout) == expected, f"round {round_number}"
    # What the racing writers left behind is a valid cache that answers correctly.
    documents = list(cache.rglob("*.json"))
    assert len(documents) == 1
    assert json.loads(documents[0].read_bytes())["files"]
    assert not list(cache.rglob(".tmp-*")), "a temporary file was left behind"
    assert cached_run(root, cache) == (baseline(root), [])


# --- corrupted cache files ----------------------------------------------------------------------


def _truncate_half(data: bytes) -> bytes:
    return data[: len(data) // 2]


def _garbage(data: bytes) -> bytes:
    return random.Random(len(data)).randbytes(max(len(data), 64))


def _flip_bytes(data: bytes) -> bytes:
    mutable = bytearray(data)
    for index in range(0, len(mutable), 7):
        mutable[index] ^= 0x5A
    return bytes(mutable)


def _wrong_shapes(data: bytes) -> bytes:
    """A well-formed document whose every entry has the wrong shape or types."""
    try:
        document = json.loads(data)
    except ValueError:
        return b"[]"
    if not isinstance(document, dict) or not isinstance(document.get("files"), dict):
        return b'{"magic": 1}'
    shapes: list[object] = [
        "entry",
        [None, "0" * 32],
        [None, "short", False, []],
        [[1, 2, 3, 4], "0" * 32, "yes", []],
        [[1, 2, 3, "4"], "0" * 32, True, []],
        [None, "0" * 32, True, [[True, 1, 1, 1, "ESP001", "m"]]],
        [None, "0" * 32, True, [[1.5, 1, 1, 1, "ESP001", "m"]]],
        [None, "0" * 32, True, [[1, 1, 1, 1, None, "m"]]],
        [None, "0" * 32, True, "diagnostics"],
    ]
    files = document["files"]
    for index, key in enumerate(sorted(files)):
        files[key] = shapes[index % len(shapes)]
    return json.dumps(document).encode()


CORRUPTIONS: dict[str, Callable[[bytes], bytes]] = {
    "empty": lambda data: b"",
    "truncated": _truncate_half,
    "one byte short": lambda data: data[:-1],
    "garbage": _garbage,
    "flipped bits": _flip_bytes,
    "nul bytes": lambda data: b"\0" * len(data),
    "not utf-8": lambda data: b"\xff\xfe" + data,
    "json null": lambda data: b"null",
    "json list": lambda data: b"[1, 2, 3]",
    "deeply nested json": lambda data: b"[" * 100_000 + b"]" * 100_000,
    "wrong shapes": _wrong_shapes,
}


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_corrupted_cache_files_are_ignored(tmp_path: Path, corruption: str) -> None:
    root, cache = tmp_path / "tree", tmp_path / "cache"
    make_tree(root, files=12)
    expected = baseline(root)
    assert cached_run(root, cache) == (expected, [])
    files = [path for path in cache.rglob("*") if path.is_file()]
    assert any(path.suffix == ".json" for path in files)

    for path in files:
        path.write_bytes(CORRUPTIONS[corruption](path.read_bytes()))

    assert cached_run(root, cache) == (expected, [])
    assert cached_run(root, cache) == (expected, []), "the rebuilt cache must answer right"


def test_a_directory_in_place_of_the_document_degrades_with_one_warning(tmp_path: Path) -> None:
    root, cache = tmp_path / "tree", tmp_path / "cache"
    make_tree(root, files=8)
    expected = baseline(root)
    cached_run(root, cache)
    [document] = cache.rglob("*.json")
    document.unlink()
    document.mkdir()

    outcome, warnings = cached_run(root, cache)

    assert outcome == expected
    assert len(warnings) == 1 and "not writable" in warnings[0]


def _symlink_to_dev_zero(document: Path) -> None:
    document.symlink_to("/dev/zero")


NON_REGULAR_DOCUMENTS: dict[str, Callable[[Path], None]] = {
    "fifo": os.mkfifo,
    "symlink to /dev/zero": _symlink_to_dev_zero,
}


@pytest.mark.slow
@pytest.mark.parametrize("replacement", sorted(NON_REGULAR_DOCUMENTS))
def test_a_fifo_in_place_of_the_document_does_not_hang(tmp_path: Path, replacement: str) -> None:
    """Neither a FIFO (blocks the open) nor /dev/zero (reads without end) stalls a run."""
    root, cache = tmp_path / "tree", tmp_path / "cache"
    make_tree(root, files=4)
    cached_run(root, cache)
    [document] = cache.rglob("*.json")
    document.unlink()
    NON_REGULAR_DOCUMENTS[replacement](document)
    try:
        completed = subprocess.run(
            cli_command(), cwd=root, env=cli_env(cache), capture_output=True, timeout=8
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"esper-lint hung reading a {replacement} in the cache directory")
    assert completed.returncode == 1, completed.stderr.decode()
    assert completed.stderr == b"", completed.stderr.decode()
    assert parse_cli(completed.stdout) == baseline(root)
    # The intruder was replaced by a rebuilt document, which answers right.
    assert not document.is_symlink() and document.is_file()
    assert json.loads(document.read_bytes())["files"]
    assert cached_run(root, cache) == (baseline(root), [])


# --- a read-only cache directory --------------------------------------------------------------


def test_cache_dir_under_a_file_runs_without_cache_and_one_warning(tmp_path: Path) -> None:
    """ENOTDIR: a real failure even for root, which permission bits don't stop."""
    root = tmp_path / "tree"
    make_tree(root, files=10)
    blocker = tmp_path / "not-a-directory"
    blocker.write_bytes(b"")
    expected = baseline(root)
    for _ in range(2):
        code, outcome, warnings = run_cli(root, blocker / "cache")
        assert code == 1
        assert outcome == expected
        assert len(warnings) == 1, warnings
        assert warnings[0].startswith("esper-lint: warning: cache directory ")
        assert str(blocker / "cache") in warnings[0] and "ran without cache" in warnings[0]
    assert blocker.read_bytes() == b""


def _read_only_mount_prefix(directory: Path) -> tuple[str, ...]:
    """Run a command in a private mount namespace where ``directory`` is mounted read-only."""
    return (
        "unshare",
        "--mount",
        "sh",
        "-c",
        'mount --bind -o ro "$0" "$0" && exec "$@"',
        str(directory),
    )


@pytest.fixture()
def read_only_mounts(tmp_path: Path) -> Iterator[Callable[[Path], tuple[str, ...]]]:
    """A real read-only file system (EROFS, which stops root too), or a skip saying why not."""
    probe = tmp_path / "probe"
    probe.mkdir()
    if shutil.which("unshare") is None:
        pytest.skip("no unshare(1): can't make a read-only bind mount")
    attempt = subprocess.run(
        [*_read_only_mount_prefix(probe), "touch", str(probe / "x")],
        capture_output=True,
        timeout=30,
    )
    if b"Read-only file system" not in attempt.stderr:
        reason = attempt.stderr.decode("utf-8", "replace").strip()
        pytest.skip(f"no private read-only bind mount here (needs CAP_SYS_ADMIN): {reason}")
    yield _read_only_mount_prefix


def test_read_only_mounted_empty_cache_dir_degrades_with_one_warning(
    tmp_path: Path, read_only_mounts: Callable[[Path], tuple[str, ...]]
) -> None:
    root, cache = tmp_path / "tree", tmp_path / "cache"
    make_tree(root, files=10)
    cache.mkdir()
    expected = baseline(root)

    code, outcome, warnings = run_cli(root, cache, prefix=read_only_mounts(cache))

    assert code == 1 and outcome == expected
    assert len(warnings) == 1, warnings
    assert "Read-only file system" in warnings[0] and "ran without cache" in warnings[0]
    assert list(cache.iterdir()) == []


def test_read_only_mounted_warm_cache_still_answers_and_warns_once(
    tmp_path: Path, read_only_mounts: Callable[[Path], tuple[str, ...]]
) -> None:
    root, cache = tmp_path / "tree", tmp_path / "cache"
    paths = make_tree(root, files=10)
    assert run_cli(root, cache)[2] == []  # a writable run fills the cache
    before = {path: path.read_bytes() for path in cache.rglob("*") if path.is_file()}
    paths[0].write_text(VIOLATING + "# changed\n", encoding="utf-8")
    paths[3].write_text(PLAIN + "# changed\n", encoding="utf-8")
    expected = baseline(root)

    code, outcome, warnings = run_cli(root, cache, prefix=read_only_mounts(cache))

    assert code == 1 and outcome == expected
    assert len(warnings) == 1, warnings
    assert "Read-only file system" in warnings[0]
    assert {path: path.read_bytes() for path in cache.rglob("*") if path.is_file()} == before

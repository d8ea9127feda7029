"""examples/ddp_train.py under the real torchrun: a completed job, and a desync that fails fast.

Each launch starts real processes (torchrun's agent plus one worker per rank, gloo on CPU), once
as a standalone two-process job and once as two single-process "nodes" meeting through a c10d
rendezvous on loopback. Every launch carries a unique `--run-tag` argument, so the test can find
every process it started in /proc, assert that none outlives the job, and kill stragglers.
"""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

from esper_lint.checker import check_source
from esper_lint.config import Config

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "ddp_train.py"
BUGGY_EXAMPLE = ROOT / "examples" / "buggy_train.py"
EPOCHS = 3
GUARD_TIMEOUT = 5.0
# Interpreter and torch start-up dominate a launch; on two busy cores it can take several times
# the ~6 s measured on an idle machine.
LAUNCH_DEADLINE = 90.0
# A desync must surface within the guard timeout plus slack (issue 6), counted from the moment
# the rank's process group is up; the example prints that time with the error.
DETECTION_BOUND = GUARD_TIMEOUT + 10.0
EXIT_DESYNC = 3  # the example's documented exit code for DesyncError

ALPHAS_LINE = re.compile(r"rank (\d+) epoch (\d+) alphas (\S+) (\S+)")
DESYNC_LINE = re.compile(r"rank (\d+): (DesyncError|DesyncTimeout) after ([\d.]+) s:")


@dataclass(frozen=True)
class Job:
    """What one torchrun job left behind: each launcher's exit code and the merged output."""

    exit_codes: tuple[int, ...]
    output: str
    seconds: float
    tag: str


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ddp_train_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", GLOO_SOCKET_IFNAME="lo")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    return env


def torchrun(launcher_args: list[str], script_args: list[str]) -> list[str]:
    launcher = [sys.executable, "-m", "torch.distributed.run", "--max-restarts", "0"]
    return [*launcher, *launcher_args, str(EXAMPLE), *script_args]


def tagged_pids(tag: str) -> list[int]:
    """Live processes whose command line holds `tag` (zombies have an empty cmdline)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:  # exited while we looked
            continue
        if tag.encode() in cmdline:
            pids.append(int(entry.name))
    return pids


def kill_tagged(tag: str) -> None:
    for pid in tagged_pids(tag):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def run_job(launches: list[list[str]], tag: str, workdir: Path) -> Job:
    """Start every launcher at once, wait for all of them, return their exit codes and output."""
    logs = [workdir / f"launcher{index}.log" for index in range(len(launches))]
    started = time.monotonic()
    processes = []
    for command, log in zip(launches, logs, strict=True):
        with open(log, "wb") as sink:
            processes.append(
                subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=child_env())
            )
    deadline = started + LAUNCH_DEADLINE
    try:
        exit_codes = tuple(
            process.wait(timeout=max(0.1, deadline - time.monotonic())) for process in processes
        )
    except subprocess.TimeoutExpired:
        kill_tagged(tag)
        output = "\n".join(log.read_text(errors="replace") for log in logs)
        pytest.fail(f"torchrun job still running after {LAUNCH_DEADLINE:.0f} s:\n{output}")
    seconds = time.monotonic() - started
    output = "\n".join(log.read_text(errors="replace") for log in logs)
    return Job(exit_codes, output, seconds, tag)


def standalone(script_args: list[str], tag: str, workdir: Path) -> Job:
    command = torchrun(["--standalone", "--nproc-per-node", "2"], script_args)
    return run_job([command], tag, workdir)


def two_nodes(script_args: list[str], tag: str, workdir: Path) -> Job:
    endpoint = f"127.0.0.1:{free_port()}"
    node = ["--nnodes", "2", "--nproc-per-node", "1", "--local-addr", "127.0.0.1"]
    rendezvous = ["--rdzv-backend", "c10d", "--rdzv-endpoint", endpoint, "--rdzv-id", tag]
    launches = [
        torchrun([*node, *rendezvous, "--node-rank", str(node_rank)], script_args)
        for node_rank in (0, 1)
    ]
    return run_job(launches, tag, workdir)


TOPOLOGIES: dict[str, Callable[[list[str], str, Path], Job]] = {
    "standalone": standalone,
    "two-nodes": two_nodes,
}


@pytest.fixture
def run_tag() -> Iterator[str]:
    tag = f"esper-torchrun-{uuid.uuid4().hex[:12]}"
    yield tag
    kill_tagged(tag)  # only matters when an assertion failed before the job was reaped


def assert_nothing_left(tag: str) -> None:
    deadline = time.monotonic() + 5.0  # torchrun reaps its workers just before exiting
    while (left := tagged_pids(tag)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not left, f"processes left behind by the job: {left}"


def expected_alphas(epochs: int) -> list[tuple[str, str]]:
    """The per-epoch alphas of one unwrapped, single-process model on the same schedule."""
    example = load_example()
    model = example.TinyModel()
    ticks_per_epoch = example.BATCHES_PER_EPOCH // example.BATCHES_PER_TICK
    rows = []
    for _ in range(epochs):
        for _ in range(ticks_per_epoch):
            model.slot_a.step_epoch()
            model.slot_b.step_epoch()
        rows.append((f"{model.slot_a.alpha:.6f}", f"{model.slot_b.alpha:.6f}"))
    return rows


@pytest.mark.slow
@pytest.mark.multiprocess
@pytest.mark.timeout(LAUNCH_DEADLINE + 30)
@pytest.mark.parametrize("topology", sorted(TOPOLOGIES))
def test_even_data_completes_with_identical_alphas(
    topology: str, run_tag: str, tmp_path: Path
) -> None:
    args = ["--epochs", str(EPOCHS), "--timeout", str(GUARD_TIMEOUT), "--run-tag", run_tag]
    job = TOPOLOGIES[topology](args, run_tag, tmp_path)

    assert job.exit_codes == (0,) * len(job.exit_codes), job.output
    per_rank: dict[int, dict[int, tuple[str, str]]] = {0: {}, 1: {}}
    for rank, epoch, alpha_a, alpha_b in ALPHAS_LINE.findall(job.output):
        per_rank[int(rank)][int(epoch)] = (alpha_a, alpha_b)
    assert sorted(per_rank[0]) == list(range(EPOCHS)), job.output
    assert per_rank[0] == per_rank[1], job.output
    assert [per_rank[0][epoch] for epoch in range(EPOCHS)] == expected_alphas(EPOCHS)
    assert_nothing_left(run_tag)


@pytest.mark.slow
@pytest.mark.multiprocess
@pytest.mark.timeout(LAUNCH_DEADLINE + 30)
@pytest.mark.parametrize("topology", sorted(TOPOLOGIES))
def test_uneven_data_fails_fast_on_every_rank(topology: str, run_tag: str, tmp_path: Path) -> None:
    args = ["--epochs", str(EPOCHS), "--timeout", str(GUARD_TIMEOUT), "--run-tag", run_tag]
    job = TOPOLOGIES[topology]([*args, "--uneven"], run_tag, tmp_path)

    assert all(code != 0 for code in job.exit_codes), job.output
    errors = {
        int(rank): (kind, float(after)) for rank, kind, after in DESYNC_LINE.findall(job.output)
    }
    assert sorted(errors) == [0, 1], f"every rank must print the desync error:\n{job.output}"
    # Both ranks reach the epoch-boundary check with different tick counts: a mismatch, seen
    # by both at once, not a timeout on one of them.
    assert {kind for kind, _ in errors.values()} == {"DesyncError"}, job.output
    assert "step_epoch() call counts differ (rank 0: 2, rank 1: 3)" in job.output
    assert all(after <= DETECTION_BOUND for _, after in errors.values()), errors
    assert f"exitcode  : {EXIT_DESYNC}" in job.output, job.output
    assert ALPHAS_LINE.search(job.output) is None, "no epoch may complete once ranks disagree"
    assert_nothing_left(run_tag)


def test_bundled_examples_lint_as_documented() -> None:
    """ddp_train.py is clean; buggy_train.py is flagged exactly on its lines marked BUG (ESPnnn)."""
    clean = check_source(EXAMPLE.read_bytes(), str(EXAMPLE), Config())
    assert clean == []

    source = BUGGY_EXAMPLE.read_bytes()
    marked = [
        (number + 1, match.group(1))  # the marker comment sits on the line above the call
        for number, line in enumerate(source.decode().splitlines(), start=1)
        if (match := re.search(r"# BUG \((ESP\d{3})\)", line))
    ]
    found = [(d.line, d.code) for d in check_source(source, str(BUGGY_EXAMPLE), Config())]
    assert sorted(found) == sorted(marked) and len(marked) == 2

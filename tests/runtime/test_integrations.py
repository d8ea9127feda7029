"""Lightning and accelerate integrations, each in a real 2-process CPU launch of its own kind.

- Lightning: ``Trainer(strategy="ddp", accelerator="cpu", devices=2)`` with
  ``EsperSlotsCallback``; Lightning starts the second process itself.
- accelerate: ``accelerate launch --multi_gpu --num_processes 2`` (torchrun underneath) of a
  script with ``Accelerator(cpu=True)``. ``--cpu`` cannot start two processes without
  ``mpirun``, so the launcher is told "multi-GPU" and the script asks for the CPU; accelerate
  then runs DDP over gloo (``DistributedType.MULTI_CPU``).

Each launch runs in its own session; whatever is left of it at the end is killed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

pytestmark = [pytest.mark.slow, pytest.mark.multiprocess]

HERE = Path(__file__).resolve().parent
LAUNCH_TIMEOUT = 150.0
EPOCHS, BATCHES_PER_EPOCH = 3, 4  # 64 samples, batch 8, split over 2 ranks


@pytest.fixture(autouse=True)
def _keep_global_rng() -> Iterator[None]:
    # ReferenceSlot's layers draw from torch's global RNG: leave it as later tests found it
    # (test_runtime_units draws unseeded inputs from it).
    with torch.random.fork_rng():
        yield


def _launch(command: list[str], out_dir: Path, home: Path) -> list[dict[str, Any]]:
    env = {**os.environ, "GLOO_SOCKET_IFNAME": "lo", "HF_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        command,
        cwd=HERE,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + LAUNCH_TIMEOUT
    output = ""
    try:
        output, _ = process.communicate(timeout=LAUNCH_TIMEOUT)
        # Lightning's rank 0 does not wait for the process it started: give rank 1 its time.
        while len(list(out_dir.glob("rank*.json"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
    except subprocess.TimeoutExpired:
        pass
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(10)
    results = [out_dir / f"rank{rank}.json" for rank in (0, 1)]
    missing = [path.name for path in results if not path.exists()]
    assert not missing, f"no result from {missing}; launch output:\n{output[-4000:]}"
    records = [json.loads(path.read_text()) for path in results]
    crashes = [r["crash"] for r in records if "crash" in r]
    assert not crashes, "\n".join(crashes)
    return records


def _lightning(tmp_path: Path, mode: str) -> list[dict[str, Any]]:
    command = [sys.executable, str(HERE / "lightning_job.py"), str(tmp_path), mode]
    return _launch(command, tmp_path, tmp_path / "home")


def _accelerate(tmp_path: Path, mode: str) -> list[dict[str, Any]]:
    command = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--main_process_port",
        "0",
        str(HERE / "accelerate_job.py"),
        str(tmp_path),
        mode,
    ]
    return _launch(command, tmp_path, tmp_path / "home")


def _expected_alphas() -> list[list[float]]:
    """The slots' alphas after each epoch tick, single process, no guard."""
    from esper_runtime.testing import ReferenceSlot

    slots = [ReferenceSlot(4, "cosine") for _ in range(2)]
    history = []
    for _ in range(EPOCHS):
        for slot in slots:
            slot.step_epoch()
        history.append([slot.alpha for slot in slots])
    return history


def _assert_divergence_caught(records: list[dict[str, Any]]) -> None:
    for rank, record in enumerate(records):
        error = record.get("error")
        assert error is not None, f"rank {rank} trained on: {record}"
        assert error["type"] == "DesyncError"
        message = error["message"]
        assert "seen from rank" in message  # the first verdict written may be another rank's
        assert "first divergence: slot 'slots.0', state.alpha:" in message
        assert "rank 1 has 0.625" in message
        # Rank 1 set the alpha before batch 2 of epoch 1: backward #7 is the one right after.
        assert "at backward #7 " in message and "The check at backward #6 passed" in message


@pytest.mark.timeout(200)
def test_lightning_ddp_callback_wraps_ticks_and_checks(tmp_path: Path) -> None:
    records = _lightning(tmp_path, "healthy")
    expected = _expected_alphas()
    for rank, record in enumerate(records):
        assert record["rank"] == rank and record["world_size"] == 2
        assert record["strategy"] == "DDPStrategy"
        assert record["alphas"] == expected, f"rank {rank}"
        assert record["epochs_ticked"] == EPOCHS
        assert record["checks"] == record["batches"] == EPOCHS * BATCHES_PER_EPOCH
        assert record["unwrapped"] is True


@pytest.mark.timeout(200)
def test_lightning_ddp_divergence_raises_on_every_rank(tmp_path: Path) -> None:
    records = _lightning(tmp_path, "diverge")
    _assert_divergence_caught(records)
    for record in records:
        assert record["unwrapped"] is True  # on_exception unwrapped the guard


@pytest.mark.timeout(200)
def test_accelerate_launch_prepare_slots_and_slot_epochs(tmp_path: Path) -> None:
    records = _accelerate(tmp_path, "healthy")
    expected = _expected_alphas()
    for rank, record in enumerate(records):
        assert record["rank"] == rank
        assert record["distributed_type"] == "DistributedType.MULTI_CPU"
        assert record["ddp"] == "DistributedDataParallel"
        assert record["slot_names"] == ["slots.0", "slots.1"]  # no DDP "module." prefix
        # alphas[e] is the value trained with in epoch e; the last entry follows the last tick.
        assert record["alphas"] == [[0.0, 0.0], *expected]
        assert record["checks"] == record["batches"] == EPOCHS * BATCHES_PER_EPOCH


@pytest.mark.timeout(200)
def test_accelerate_launch_divergence_raises_on_every_rank(tmp_path: Path) -> None:
    _assert_divergence_caught(_accelerate(tmp_path, "diverge"))


def test_integrations_import_no_framework() -> None:
    code = (
        "import sys, esper_runtime, esper_runtime.comm_hook, esper_runtime.integrations; "
        "print(sorted({'lightning', 'pytorch_lightning', 'accelerate'} & set(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"

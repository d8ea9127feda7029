"""Issue 13: faults inside a real DDP loop end on every rank with the guard's error, in time.

One launch per fault and world size (a fault ends with ranks exiting). Gloo, CPU, real
processes, DistributedDataParallel in the loop, guard timeout 2 s. The bound is the timeout plus
10 s, measured from the fault on the faulty rank to the error on each rank (same machine clock).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ddp_scenarios as scenarios
import pytest

from esper_runtime import DesyncError, DesyncTimeout
from esper_runtime.testing import RankDied, RankTimedOut, run_on_ranks

pytestmark = [pytest.mark.slow, pytest.mark.multiprocess]

BOUND = scenarios.TIMEOUT + 10.0
FAULTY = 1


def _run(
    fault: str, world_size: int, tmp_path: Path, hooked: bool = False, join: bool = False
) -> tuple[list[Any], float, Path]:
    fault_file = tmp_path / "fault_at"
    results = run_on_ranks(
        scenarios.ddp_fault_job,
        world_size,
        timeout=90,
        args=(fault, FAULTY, str(fault_file), hooked, join),
    )
    stragglers = [r for r, out in enumerate(results) if isinstance(out, RankTimedOut)]
    assert not stragglers, f"ranks {stragglers} were still running at the deadline: {results!r}"
    return results, float(fault_file.read_text()), fault_file


def _detected_after(fault_file: Path, rank: int, t_fault: float) -> float:
    return float(Path(f"{fault_file}.t_error.{rank}").read_text()) - t_fault


def _excerpt(error: BaseException) -> str:
    return str(error).splitlines()[0][:160]


# With the comm hook, the call for DDP's last bucket waits for the gradient all-reduces and checks
# the slots there: every fault must still end in the guard's error, whichever of the two sees it.
@pytest.mark.timeout(150)
@pytest.mark.parametrize("hooked", [False, True], ids=["plain", "comm-hook"])
@pytest.mark.parametrize("world_size", [2, 4], ids=["ws2", "ws4"])
@pytest.mark.parametrize(
    "fault",
    [f for f in scenarios.FAULTS if f != "an extra guard.step_epoch() after the loop"],
    ids=lambda f: f.replace(" ", "-"),
)
def test_every_rank_raises_the_guards_error(
    fault: str, world_size: int, hooked: bool, tmp_path: Path, record_detection: Any
) -> None:
    _check_every_rank(fault, world_size, tmp_path, record_detection, hooked=hooked)


# Inside ddp.join(): the other ranks have run out of batches and wait in join()'s loop, in
# collectives the guard does not run, while the faulty rank trains alone and fails.
@pytest.mark.timeout(150)
@pytest.mark.parametrize("hooked", [False, True], ids=["plain", "comm-hook"])
@pytest.mark.parametrize("world_size", [2, 4], ids=["ws2", "ws4"])
@pytest.mark.parametrize("fault", scenarios.JOIN_FAULTS, ids=lambda f: f.replace(" ", "-"))
def test_every_rank_raises_the_guards_error_inside_join(
    fault: str, world_size: int, hooked: bool, tmp_path: Path, record_detection: Any
) -> None:
    _check_every_rank(fault, world_size, tmp_path, record_detection, hooked=hooked, join=True)


@pytest.mark.timeout(150)
@pytest.mark.parametrize("hooked", [False, True], ids=["plain", "comm-hook"])
@pytest.mark.parametrize("world_size", [2, 4], ids=["ws2", "ws4"])
def test_a_slow_uneven_tail_inside_join_is_no_fault(
    world_size: int, hooked: bool, tmp_path: Path
) -> None:
    # The joined ranks wait longer than the timeout in all, but never longer than one step of the
    # faulty rank at a time: join()'s wait restarts its clock at every round.
    assert scenarios.JOIN_EXTRA_BATCHES * scenarios.TAIL_STEP_S > 1.5 * scenarios.TIMEOUT
    results = run_on_ranks(
        scenarios.ddp_fault_job,
        world_size,
        timeout=90,
        args=(scenarios.SLOW_TAIL, FAULTY, str(tmp_path / "fault_at"), hooked, True),
    )
    assert all(isinstance(outcome, dict) for outcome in results), repr(results)
    assert len({outcome["syncs"] for outcome in results}) == 1, repr(results)


def _check_every_rank(
    fault: str,
    world_size: int,
    tmp_path: Path,
    record_detection: Any,
    *,
    hooked: bool,
    join: bool = False,
) -> None:
    results, t_fault, fault_file = _run(fault, world_size, tmp_path, hooked, join)
    for rank, outcome in enumerate(results):
        if rank == FAULTY and fault == "SIGKILL":
            assert isinstance(outcome, RankDied) and outcome.exitcode == -9
            continue
        if rank == FAULTY and fault == "a rank that raises and exits":
            assert isinstance(outcome, ValueError)  # the injected fault itself
            continue
        assert isinstance(outcome, DesyncError), f"rank {rank}: {outcome!r}"
        detected = _detected_after(fault_file, rank, t_fault)
        label = f"DDP{' + comm hook' if hooked else ''}{' in join()' if join else ''}: {fault}"
        record_detection(label, world_size, rank, detected, _excerpt(outcome))
        assert detected <= BOUND, f"rank {rank} took {detected:.1f} s"
        _assert_message(fault, outcome, rank)
        if join:
            # Each waiting rank is named as waiting in join(), not as running Python.
            assert "in ddp.join(), waiting for the ranks still training at" in str(outcome)


def _assert_message(fault: str, error: DesyncError, rank: int) -> None:
    text = str(error)
    if fault == "different slot counts":
        assert "wrapped different slots" in text
        return
    # The verdict names where every rank is, and this rank says what it was doing.
    assert "Where each rank is:" in text and "rank  state" in text
    assert (
        f"(rank {rank} got this verdict while" in text
        or f"(rank {rank} detected this and wrote the verdict)" in text
    )
    if fault == "uneven loaders":
        assert isinstance(error, DesyncTimeout)
        assert f"rank {FAULTY} " in text and "backward (step #" in text
    elif fault == "an extra wrapped step_epoch":
        assert "blocks.0.step_epoch() (synced at backward)" in text
    elif fault == "a skipped advance_stage":
        assert "blocks.0.advance_stage() pre-check" in text
    elif fault == "a rank that raises and exits":
        assert f"rank {FAULTY} exited after raising ValueError: loss is NaN" in text
    elif fault == "a rank that catches an exception and stays alive":
        assert "running, not in a collective the guard knows" in text
        assert "while rank(s) [" in text and "are elsewhere" in text
    elif fault == "SIGKILL":
        assert "stopped heartbeating" in text


@pytest.mark.timeout(150)
@pytest.mark.parametrize("hooked", [False, True], ids=["plain", "comm-hook"])
@pytest.mark.parametrize("world_size", [2, 4], ids=["ws2", "ws4"])
def test_an_extra_guard_step_epoch_after_the_loop_names_finished_ranks(
    world_size: int, hooked: bool, tmp_path: Path, record_detection: Any
) -> None:
    fault = "an extra guard.step_epoch() after the loop"
    results, t_fault, fault_file = _run(fault, world_size, tmp_path, hooked)
    error = results[FAULTY]
    assert isinstance(error, DesyncTimeout), repr(error)
    finished = [r for r in range(world_size) if r != FAULTY]
    syncs = {r: results[r]["syncs"] for r in finished}
    assert len(set(syncs.values())) == 1
    text = str(error)
    assert all(isinstance(results[rank], dict) for rank in finished)
    # Ranks that finished cleanly are not "did not arrive": they left after their last sync.
    # (The verdict is written as soon as one has left; the slower ones may still be leaving.)
    named = [r for r in finished if f"rank {r} finished after sync #{syncs[r]}" in text]
    assert named, text
    assert "did not arrive" not in text
    detected = _detected_after(fault_file, FAULTY, t_fault)
    label = f"DDP{' + comm hook' if hooked else ''}: {fault}"
    record_detection(label, world_size, FAULTY, detected, _excerpt(error))
    assert detected <= BOUND

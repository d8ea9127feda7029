"""The DDP comm hook: same gradients as stock DDP, divergence caught at the next backward on every
rank, composition with a user's hook (real DDP on two gloo ranks in real processes); then the
decoding of reduced check values and the table, in one process."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import comm_hook_scenarios as scenarios
import pytest
import torch

from esper_runtime import DesyncError, wrap_slots
from esper_runtime.comm_hook import CHECK_VALUES, SlotCheckHook, _Reduction, describe_rows
from esper_runtime.testing import ReferenceSlot, run_on_ranks


@pytest.fixture(autouse=True)
def _keep_global_rng() -> Iterator[None]:
    # ReferenceSlot's layers draw from torch's global RNG: leave it as later tests found it
    # (test_runtime_units draws unseeded inputs from it).
    with torch.random.fork_rng():
        yield


@pytest.fixture(scope="module")
def ranks() -> list[dict[str, Any]]:
    results = run_on_ranks(scenarios.comm_hook_job, 2, timeout=150)
    failures = [
        f"rank {rank} failed: {outcome!r}\n{getattr(outcome, 'remote_traceback', '')}"
        for rank, outcome in enumerate(results)
        if isinstance(outcome, BaseException)
    ]
    if failures:
        pytest.fail("\n".join(failures))
    return [r for r in results if isinstance(r, dict)]


@pytest.mark.slow
@pytest.mark.multiprocess
@pytest.mark.timeout(180)
def test_gradients_are_bitwise_those_of_stock_ddp(ranks: list[dict[str, Any]]) -> None:
    for rank, result in enumerate(ranks):
        plain, checked = result["stock_plain"], result["stock_checked"]
        assert scenarios.same_grads(plain, checked), f"rank {rank}: gradients differ"
        # Every backward was checked, and the guard's epoch ticks moved the alphas meanwhile.
        assert checked["checks"] == scenarios.STEPS and checked["skipped"] == 0
        assert plain["alphas"] == checked["alphas"] and plain["alphas"][0] > 0
        # Gradients that are views into DDP's buckets come out the same too.
        assert scenarios.same_grads(result["view_plain"], result["view_checked"])
        assert result["view_checked"]["checks"] == scenarios.STEPS
    # Averaged, not local: both ranks hold the same gradients though their batches differ.
    assert scenarios.same_grads(ranks[0]["stock_checked"], ranks[1]["stock_checked"])


@pytest.mark.slow
@pytest.mark.multiprocess
@pytest.mark.timeout(180)
def test_uneven_inputs_under_join_train_as_stock_ddp_and_are_checked(
    ranks: list[dict[str, Any]],
) -> None:
    for rank, result in enumerate(ranks):
        assert scenarios.same_grads(result["join_plain"], result["join_checked"]), f"rank {rank}"
    # Rank 0 joined early and shadowed rank 1's last two all-reduces through the hook: both
    # ranks checked every one of rank 1's backwards.
    assert [r["join_checked"]["checks"] for r in ranks] == [scenarios.STEPS + 2] * 2
    assert scenarios.same_grads(ranks[0]["join_checked"], ranks[1]["join_checked"])


@pytest.mark.slow
@pytest.mark.multiprocess
@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("hook", "world_size", "joined"),
    [("stock", 2, 1), ("fp16", 2, 1), ("stock", 4, 2), ("fp16", 4, 2)],
)
def test_a_mismatch_seen_in_the_join_shadow_ends_every_rank_with_the_guards_error(
    hook: str, world_size: int, joined: int
) -> None:
    # Before the fix the joined rank took the mismatch for a passed check (a failed future is
    # seen only from Python, and DDP's shadow waits from C++) and both ranks hung.
    at = scenarios.STEPS + 2 * (joined - 1)  # ranks 0 .. joined - 1 are in join()'s shadow
    results = run_on_ranks(scenarios.join_diverge_job, world_size, timeout=60, args=(hook, at))
    divergence = ", ".join(
        f"rank {r} has {0.0 if r < joined else 0.625}" for r in range(world_size)
    )
    for rank, outcome in enumerate(results):
        assert isinstance(outcome, DesyncError), f"rank {rank}: {outcome!r}"
        message = str(outcome)
        assert "the wrapped slots' state differs between ranks" in message
        assert f"at backward #{at + 1}" in message
        # The table, whichever rank's verdict came first: the joined ranks gather it from the
        # shadow, after its last all-reduce, as the training ranks do after their backward.
        assert f"first divergence: slot 'slots.1', state.alpha: {divergence}" in message, (
            f"rank {rank}: {message}"
        )


@pytest.mark.slow
@pytest.mark.multiprocess
@pytest.mark.timeout(180)
def test_divergence_mid_epoch_is_caught_at_the_next_backward_on_every_rank(
    ranks: list[dict[str, Any]],
) -> None:
    for rank, result in enumerate(ranks):
        outcome = result["diverge_stock"]
        assert outcome["error"] == "DesyncError", f"rank {rank}: {outcome}"
        assert outcome["failed_at_step"] == scenarios.DIVERGE_AT
        message = outcome["message"]
        assert f"at backward #{scenarios.DIVERGE_AT + 1}" in message
        assert "seen from rank" in message  # the first verdict written may be another rank's
        # The per-rank table names the slot and both values (the epoch tick at step 1 moved
        # rank 0's alpha to the cosine curve's first point).
        assert "first divergence: slot 'slots.1', state.alpha:" in message
        assert "rank 1 has 0.625" in message
        assert f"The check at backward #{scenarios.DIVERGE_AT} passed" in message


@pytest.mark.slow
@pytest.mark.multiprocess
@pytest.mark.timeout(180)
def test_static_graph_trains_as_stock_ddp_and_divergence_is_caught(
    ranks: list[dict[str, Any]],
) -> None:
    for rank, result in enumerate(ranks):
        for plain, checked in (
            ("static_plain", "static_checked"),
            ("static_stock_plain", "static_stock_checked"),
        ):
            assert scenarios.same_grads(result[plain], result[checked]), f"rank {rank}: {checked}"
            assert result[checked]["checks"] == scenarios.STEPS, f"rank {rank}: {checked}"
        # The wrapped fp16 hook ran for every bucket, as without the check.
        assert result["static_checked"]["user_calls"] == result["static_plain"]["user_calls"]
        outcome = result["diverge_static"]
        assert outcome["error"] == "DesyncError", f"rank {rank}: {outcome}"
        assert outcome["failed_at_step"] == scenarios.DIVERGE_AT
        assert "first divergence: slot 'slots.1', state.alpha:" in outcome["message"]


@pytest.mark.slow
@pytest.mark.multiprocess
@pytest.mark.timeout(180)
def test_a_user_hook_is_wrapped_and_still_checks(ranks: list[dict[str, Any]]) -> None:
    for rank, result in enumerate(ranks):
        plain, checked = result["fp16_plain"], result["fp16_checked"]
        assert scenarios.same_grads(plain, checked), f"rank {rank}: fp16 gradients differ"
        # The user's hook ran for every bucket of every backward (several once DDP rebuilt them).
        assert checked["user_calls"] == plain["user_calls"] > scenarios.STEPS
        assert checked["checks"] == scenarios.STEPS
        outcome = result["diverge_fp16"]
        assert outcome["error"] == "DesyncError" and outcome["failed_at_step"] == 3, outcome
        assert "rank 1 has 0.625" in outcome["message"]


@pytest.mark.slow
@pytest.mark.multiprocess
@pytest.mark.timeout(180)
def test_a_hook_that_does_not_communicate_is_skipped_not_misread(
    ranks: list[dict[str, Any]],
) -> None:
    for result in ranks:
        local = result["local_checked"]
        assert local["checks"] == 0 and local["skipped"] == scenarios.STEPS


@pytest.mark.slow
@pytest.mark.multiprocess
@pytest.mark.timeout(180)
def test_misuse_is_refused_with_a_reason(ranks: list[dict[str, Any]]) -> None:
    for result in ranks:
        refusals = result["refusals"]
        assert refusals["powersgd"].startswith("ValueError: esper_runtime cannot check slots")
        assert "low-rank" in refusals["powersgd"]
        assert refusals["not_ddp"].startswith("TypeError: install_comm_hook() needs a")
        assert "already has a comm hook (allreduce_hook)" in refusals["second_hook"]
        assert "hook=your_hook" in refusals["second_hook"]


# --------------------------------------------------------------------------- decoding, one process


def _hook(world_size: int, rank: int = 0) -> SlotCheckHook:
    guard = wrap_slots([ReferenceSlot(4, "cosine")])  # no process group: an inactive guard
    return SlotCheckHook(guard, None, world_size, rank, None, None)  # type: ignore[arg-type]


def _reduce(tails: list[torch.Tensor], divide: bool) -> torch.Tensor:
    """What a SUM all-reduce of these ranks' values returns, averaged first like the stock hook."""
    world = len(tails)
    parts = [t / world if divide else t for t in tails]
    return torch.stack(parts).sum(dim=0)


def _tails(world_size: int, alphas: list[float]) -> list[torch.Tensor]:
    tails = []
    for rank, alpha in enumerate(alphas):
        hook = _hook(world_size, rank)
        hook.guard.slots[0].set_alpha(alpha)
        tails.append(hook.check_values(torch.float32, torch.device("cpu"))[0])
    return tails


@pytest.mark.parametrize("divide", [True, False], ids=["averaged", "summed"])
def test_three_ranks_that_agree_pass_whatever_the_scaling(divide: bool) -> None:
    hook = _hook(3)
    reduced = _reduce(_tails(3, [0.25, 0.25, 0.25]), divide)
    assert reduced.numel() == CHECK_VALUES
    assert hook._agreement(_Reduction(1, [], 0), reduced) is True
    assert (hook.checks, hook.skipped) == (1, 0)


@pytest.mark.parametrize("divide", [True, False], ids=["averaged", "summed"])
def test_one_rank_of_three_that_differs_is_a_mismatch(divide: bool) -> None:
    hook = _hook(3)
    reduced = _reduce(_tails(3, [0.25, 0.25, 0.5]), divide)
    assert hook._agreement(_Reduction(1, [], 0), reduced) is False


def test_values_that_were_not_reduced_are_skipped_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    hook = _hook(2)
    local = _tails(2, [0.25])[0]  # what a hook that never communicates hands back
    with caplog.at_level(logging.WARNING, logger="esper_runtime.comm_hook"):
        for number in (1, 2):
            assert hook._agreement(_Reduction(number, [], 0), local) is None
    assert (hook.checks, hook.skipped) == (0, 2)
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "did not all-reduce the checked bucket" in warnings[0]


def test_the_table_names_the_first_divergence_and_every_differing_field() -> None:
    rows = [
        {"rank": r, "slots": {"a": {"stage": "BLENDING", "state.alpha": a}}, "raw": [a]}
        for r, a in enumerate([0.5, 0.7])
    ]
    text = describe_rows(rows)
    assert text.startswith("first divergence: slot 'a', state.alpha: rank 0 has 0.5, rank 1 has")
    assert "stage" not in text  # equal fields are left out
    same = [{**row, "slots": rows[0]["slots"]} for row in rows]
    assert "the guard's own fingerprint (call counters)" in describe_rows(same)


def test_the_hook_hashes_the_guards_fingerprint_and_sees_every_change() -> None:
    hook = _hook(2)
    guard, slot = hook.guard, hook.guard.slots[0]
    tail, values = hook.check_values(torch.float32, torch.device("cpu"))
    # The plain numbers the hook hashes are the guard's fingerprint, field for field.
    assert torch.equal(torch.tensor(values, dtype=torch.float64), guard.fingerprint())
    again, _ = hook.check_values(torch.float32, torch.device("cpu"))
    assert again is tail  # unchanged slots: the cached values, no new tensor
    slot.set_alpha(0.5)
    moved, moved_values = hook.check_values(torch.float32, torch.device("cpu"))
    assert moved_values != values and not torch.equal(moved[2:], tail[2:])
    assert moved[:2].tolist() == [1.0, 1.0]  # rank 0's pilots


def _stock_sum(parts: list[torch.Tensor]) -> torch.Tensor:
    """The stock hook's reduction: every rank divides by the world size, then the ranks sum."""
    total = parts[0].clone()
    for part in parts[1:]:
        total += part
    return total


@pytest.mark.parametrize("world_size", [2, 3, 4, 8])
@pytest.mark.parametrize("agree", [True, False], ids=["agree", "one-differs"])
def test_the_one_comparison_verdict_is_the_full_decodings(world_size: int, agree: bool) -> None:
    alphas = [0.25] * world_size if agree else [0.25] * (world_size - 1) + [0.5]
    shares, agreed = [], []
    for rank, alpha in enumerate(alphas):
        hook = _hook(world_size, rank)
        hook.guard.slots[0].set_alpha(alpha)
        values = hook.guard.fingerprint_values()
        tail = hook._tails(values, torch.float32, torch.device("cpu"))
        shares.append(tail.divided)
        agreed.append(tail.agreed)
    reduced = _stock_sum(shares)
    for rank in range(world_size):
        fast, full = _hook(world_size, rank), _hook(world_size, rank)
        verdict = fast._agreement(_Reduction(1, [], 0, agreed[rank]), reduced)
        assert verdict is full._agreement(_Reduction(1, [], 0), reduced) is agree
        assert (fast.checks, fast.skipped) == (full.checks, full.skipped) == (1, 0)
    # Sums of n equal shares are exact at powers of two: there the comparison alone decides.
    if agree and world_size in (2, 4, 8):
        assert all(torch.equal(reduced, image) for image in agreed)

"""The DDP comm hook: same gradients as stock DDP, divergence caught at the next backward on every
rank, composition with a user's hook. Real DDP on two gloo ranks in real processes."""

from __future__ import annotations

from typing import Any

import comm_hook_scenarios as scenarios
import pytest

from esper_runtime.testing import run_on_ranks

pytestmark = [pytest.mark.slow, pytest.mark.multiprocess]


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


@pytest.mark.timeout(180)
def test_a_hook_that_does_not_communicate_is_skipped_not_misread(
    ranks: list[dict[str, Any]],
) -> None:
    for result in ranks:
        local = result["local_checked"]
        assert local["checks"] == 0 and local["skipped"] == scenarios.STEPS


@pytest.mark.timeout(180)
def test_misuse_is_refused_with_a_reason(ranks: list[dict[str, Any]]) -> None:
    for result in ranks:
        refusals = result["refusals"]
        assert refusals["powersgd"].startswith("ValueError: esper_runtime cannot check slots")
        assert "low-rank" in refusals["powersgd"]
        assert refusals["not_ddp"].startswith("TypeError: install_comm_hook() needs a")
        assert "already has a comm hook (allreduce_hook)" in refusals["second_hook"]
        assert "hook=your_hook" in refusals["second_hook"]

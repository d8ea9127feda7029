"""``run_on_ranks``: results, exceptions, dead ranks and stragglers all come back; nothing hangs."""

from __future__ import annotations

import time

import pytest
import runtime_scenarios as scenarios

from esper_runtime.testing import RankDied, RankTimedOut, RemoteError, run_on_ranks

pytestmark = [pytest.mark.slow, pytest.mark.multiprocess]


@pytest.mark.timeout(90)
def test_run_on_ranks_reports_values_exceptions_and_dead_ranks() -> None:
    results = run_on_ranks(scenarios.harness_outcomes, 4, timeout=60, args=(42,))
    assert results[0] == {"rank": 0, "value": 42}
    assert isinstance(results[1], ValueError) and "rank 1 failed on purpose" in str(results[1])
    assert "Traceback" in getattr(results[1], "remote_traceback", "")
    assert isinstance(results[2], RemoteError) and "_Unpicklable: holds a lock" in str(results[2])
    assert isinstance(results[3], RankDied) and results[3].exitcode == -9
    assert "SIGKILL" in str(results[3])


@pytest.mark.timeout(90)
def test_run_on_ranks_kills_stragglers_at_the_deadline() -> None:
    started = time.monotonic()
    # The deadline must cover process start-up (a torch import) on a loaded 2-core machine.
    results = run_on_ranks(scenarios.harness_straggler, 2, timeout=25)
    assert time.monotonic() - started < 45
    assert results[0] == 0
    assert isinstance(results[1], RankTimedOut) and "did not finish within 25.0 s" in str(
        results[1]
    )

"""Shared setup for the runtime tests: importable scenarios and a detection-time report."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    # Spawned ranks unpickle scenario functions by module name; they inherit sys.path.
    sys.path.insert(0, str(HERE))

_detections: list[dict[str, Any]] = []


@pytest.fixture
def record_detection() -> Any:
    """Record how long a surviving rank took to raise after a fault was injected."""

    def record(case: str, world_size: int, rank: int, seconds: float, error: str) -> None:
        _detections.append(
            {
                "case": case,
                "world_size": world_size,
                "rank": rank,
                "seconds": round(seconds, 2),
                "error": error,
            }
        )

    return record


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _detections:
        return
    terminalreporter.section("esper_runtime fault detection times")
    for row in _detections:
        terminalreporter.write_line(
            f"{row['case']:<40} ws={row['world_size']} rank={row['rank']} "
            f"{row['seconds']:>6.2f} s  {row['error']}"
        )
    target = os.environ.get("ESPER_RUNTIME_DETECTIONS_JSON")
    if target:
        Path(target).write_text(json.dumps(_detections, indent=2))

"""The entry point the launched integration jobs share: run, record, leave without teardown."""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any


def run_and_record(train: Callable[[str], dict[str, Any]], rank_variable: str) -> None:
    """``train(mode)`` with argv ``OUT_DIR MODE``; its record (or the crash) goes to
    ``OUT_DIR/rank<N>.json``, N read from ``rank_variable``. Exits with ``os._exit(0)``: the
    launchers' own teardown must not decide the outcome, the record does."""
    out_dir, mode = Path(sys.argv[1]), sys.argv[2]
    rank = int(os.environ.get(rank_variable, "0"))
    started = time.monotonic()
    try:
        record = train(mode)
    except BaseException:  # noqa: BLE001 - the test reads what went wrong from the file
        record = {"rank": rank, "crash": traceback.format_exc()}
    record["seconds"] = time.monotonic() - started
    (out_dir / f"rank{rank}.json").write_text(json.dumps(record))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)

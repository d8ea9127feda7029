"""Test helpers: a reference seed slot and a harness that runs a function on N gloo ranks.

``ReferenceSlot`` has the shape of Esper's ``SeedSlot`` (``step_epoch``, ``advance_stage``,
``state`` with an ``alpha_controller`` dataclass, ``set_alpha``) without importing Esper, so
guards and training loops can be tested anywhere.

``run_on_ranks(fn, world_size)`` spawns ``world_size`` processes, initialises a gloo process
group in each (the parent hosts a TCPStore on a free port), calls ``fn(rank, world_size, *args)``
and returns, per rank, the return value or the exception it raised. It never hangs: ranks still
running at the deadline are killed and reported as :class:`RankTimedOut`.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import pickle
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from enum import IntEnum
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch._C._distributed_c10d import TCPStore

__all__ = [
    "AlphaController",
    "AlphaCurve",
    "AlphaMode",
    "GateResult",
    "RankDied",
    "RankTimedOut",
    "ReferenceSlot",
    "RemoteError",
    "SeedStage",
    "SlotState",
    "run_on_ranks",
]


class SeedStage(IntEnum):
    DORMANT = 0
    GERMINATED = 1
    TRAINING = 2
    BLENDING = 3
    HOLDING = 4
    FOSSILIZED = 5


class AlphaMode(IntEnum):
    HOLD = 0
    UP = 1
    DOWN = 2


class AlphaCurve(IntEnum):
    LINEAR = 0
    COSINE = 1
    SIGMOID = 2


def _curve_progress(curve: AlphaCurve, t: float, steepness: float) -> float:
    """Map linear progress ``t`` in [0, 1] to curved progress in [0, 1]."""
    if curve is AlphaCurve.LINEAR:
        return t
    if curve is AlphaCurve.COSINE:
        return 0.5 - 0.5 * math.cos(math.pi * t)
    low = 1.0 / (1.0 + math.exp(steepness * 0.5))
    high = 1.0 / (1.0 + math.exp(-steepness * 0.5))
    raw = 1.0 / (1.0 + math.exp(-steepness * (t - 0.5)))
    return (raw - low) / (high - low)


@dataclass
class AlphaController:
    """Ramps alpha from ``alpha_start`` to ``alpha_target`` over ``alpha_steps_total`` ticks."""

    alpha: float = 0.0
    alpha_start: float = 0.0
    alpha_target: float = 1.0
    alpha_mode: AlphaMode = AlphaMode.UP
    alpha_curve: AlphaCurve = AlphaCurve.LINEAR
    alpha_steepness: float = 12.0
    alpha_steps_total: int = 10
    alpha_steps_done: int = 0

    def tick(self) -> float:
        """Advance one step (no-op when holding or done) and return the new alpha."""
        if self.alpha_mode is AlphaMode.HOLD or self.alpha_steps_done >= self.alpha_steps_total:
            return self.alpha
        self.alpha_steps_done += 1
        t = self.alpha_steps_done / max(self.alpha_steps_total, 1)
        progress = _curve_progress(self.alpha_curve, t, self.alpha_steepness)
        self.alpha = self.alpha_start + (self.alpha_target - self.alpha_start) * progress
        if self.alpha_steps_done >= self.alpha_steps_total:
            self.alpha = self.alpha_target
            self.alpha_mode = AlphaMode.HOLD
        return self.alpha


@dataclass
class SlotState:
    stage: SeedStage
    alpha: float
    alpha_controller: AlphaController = field(default_factory=AlphaController)


@dataclass(frozen=True)
class GateResult:
    passed: bool
    stage: SeedStage


class ReferenceSlot(nn.Module):
    """A seed slot: ``forward`` blends a host path and a seed path with ``state.alpha``.

    The seed starts in BLENDING (``seeded=False`` leaves the slot empty, ``state is None``).
    ``step_epoch()`` ticks the controller once; ``advance_stage()`` moves to the next stage and,
    like Esper's slot, agrees on the gate decision with a rank-0 ``broadcast_object_list`` when
    a process group is up, so it is a collective.
    """

    def __init__(
        self,
        total_steps: int = 10,
        curve: str = "linear",
        *,
        features: int = 4,
        steepness: float = 12.0,
        seeded: bool = True,
        alpha_start: float = 0.0,
        alpha_target: float = 1.0,
    ) -> None:
        super().__init__()
        self.host = nn.Linear(features, features)
        self.seed = nn.Linear(features, features)
        self.state: SlotState | None = None
        self._alpha_cache: torch.Tensor | None = None
        if seeded:
            controller = AlphaController(
                alpha=alpha_start,
                alpha_start=alpha_start,
                alpha_target=alpha_target,
                alpha_mode=AlphaMode.UP,
                alpha_curve=AlphaCurve[curve.upper()],
                alpha_steepness=steepness,
                alpha_steps_total=total_steps,
            )
            self.state = SlotState(SeedStage.BLENDING, alpha_start, controller)

    @property
    def alpha(self) -> float:
        return 0.0 if self.state is None else self.state.alpha

    def _alpha_tensor(self, like: torch.Tensor) -> torch.Tensor:
        if self._alpha_cache is None or self._alpha_cache.device != like.device:
            self._alpha_cache = torch.tensor(self.alpha, dtype=like.dtype, device=like.device)
        return self._alpha_cache

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden: torch.Tensor = self.host(x)
        if self.state is None:
            return hidden
        alpha = self._alpha_tensor(hidden)
        blended: torch.Tensor = hidden + alpha * (self.seed(hidden) - hidden)
        return blended

    def set_alpha(self, value: float) -> None:
        """Write alpha to the state and the controller and drop the cached alpha tensor."""
        if self.state is None:
            raise RuntimeError("set_alpha() on an empty slot")
        self.state.alpha = float(value)
        self.state.alpha_controller.alpha = float(value)
        self._alpha_cache = None

    def step_epoch(self) -> None:
        """Tick the alpha controller once (only while BLENDING)."""
        if self.state is None or self.state.stage is not SeedStage.BLENDING:
            return
        self.set_alpha(self.state.alpha_controller.tick())

    def advance_stage(self, target_stage: SeedStage | int | None = None) -> GateResult:
        """Move to ``target_stage`` (default: the next stage) if rank 0's gate passes."""
        if self.state is None:
            return GateResult(False, SeedStage.DORMANT)
        current = self.state.stage
        wanted = SeedStage(current + 1 if target_stage is None else target_stage)
        passed = _agree_on_rank0(wanted <= SeedStage.FOSSILIZED and wanted > current)
        if passed:
            self.state.stage = wanted
        return GateResult(passed, self.state.stage)


def _agree_on_rank0(decision: bool) -> bool:
    """Esper's gate sync: every rank adopts rank 0's decision (a pickled object broadcast)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return decision
    box: list[object] = [decision]
    dist.broadcast_object_list(box, src=0)
    return bool(box[0])


# --------------------------------------------------------------------------- rank harness


class RemoteError(Exception):
    """Stands in for a rank's exception that could not be pickled."""

    def __init__(self, type_name: str, message: str, remote_traceback: str) -> None:
        super().__init__(f"{type_name}: {message}")
        self.type_name = type_name
        self.remote_traceback = remote_traceback

    def __reduce__(self) -> tuple[object, ...]:
        return (RemoteError, (self.type_name, str(self), self.remote_traceback))


class RankDied(Exception):
    """The rank's process exited without reporting a result (crash, SIGKILL, os._exit)."""

    def __init__(self, rank: int, exitcode: int | None) -> None:
        super().__init__(f"rank {rank} died without a result: {_describe_exit(exitcode)}")
        self.rank = rank
        self.exitcode = exitcode

    def __reduce__(self) -> tuple[object, ...]:
        return (RankDied, (self.rank, self.exitcode))


class RankTimedOut(Exception):
    """The rank was still running at the harness deadline and was killed."""

    def __init__(self, rank: int, timeout: float) -> None:
        super().__init__(f"rank {rank} did not finish within {timeout:.1f} s and was killed")
        self.rank = rank
        self.timeout = timeout

    def __reduce__(self) -> tuple[object, ...]:
        return (RankTimedOut, (self.rank, self.timeout))


def _describe_exit(exitcode: int | None) -> str:
    if exitcode is None:
        return "still running"
    if exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name} (exit code {exitcode})"
        except ValueError:
            return f"killed by signal {-exitcode} (exit code {exitcode})"
    return f"exit code {exitcode}"


def _picklable(value: object) -> object:
    try:
        pickle.dumps(value)
    except Exception:  # noqa: BLE001 - anything unpicklable is replaced, whatever the reason
        if isinstance(value, BaseException):
            tb = "".join(traceback.format_exception(type(value), value, value.__traceback__))
            return RemoteError(type(value).__name__, str(value), tb)
        return RemoteError(type(value).__name__, f"unpicklable result {value!r:.200}", "")
    return value


def _write_result(path: Path, value: object) -> None:
    partial = path.with_suffix(".partial")
    with open(partial, "wb") as handle:
        pickle.dump(_picklable(value), handle)
    os.replace(partial, path)


_HOST = "127.0.0.1"
_RELEASE_KEY = "esper_runtime_testing/release"


def _rank_main(
    fn: Callable[..., object],
    rank: int,
    world_size: int,
    args: tuple[Any, ...],
    workdir: str,
    store_port: int,
    pg_timeout: float,
) -> None:
    if sys.platform.startswith("linux"):
        os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    result_path = Path(workdir) / f"rank{rank}.result"
    timeout = timedelta(seconds=pg_timeout)
    store = TCPStore(_HOST, store_port, world_size, is_master=False, timeout=timeout)
    try:
        dist.init_process_group(
            "gloo", store=store, rank=rank, world_size=world_size, timeout=timeout
        )
        outcome: object = fn(rank, world_size, *args)
    except BaseException as exc:  # noqa: BLE001 - the harness reports every failure
        lines = traceback.format_exception(type(exc), exc, exc.__traceback__)
        exc.__dict__.setdefault("remote_traceback", "".join(lines))
        outcome = exc
    # Tell the guard's peers how this rank leaves, as the atexit/excepthook handlers would
    # in a real process (os._exit below skips them).
    from .watchdog import note_exit

    note_exit(outcome if isinstance(outcome, BaseException) else None)
    _write_result(result_path, outcome)
    if not isinstance(outcome, BaseException):
        # A rank that finished normally stays up until every rank is done, so that its exit
        # cannot disturb peers still reading its last messages. A rank that raised exits at
        # once, as it would in a real job.
        try:
            store.wait([_RELEASE_KEY])
        except RuntimeError:
            pass
    # Tearing down gloo after a desync can block on dead peers; the result is already saved.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def run_on_ranks(
    fn: Callable[..., object],
    world_size: int,
    *,
    timeout: float = 60.0,
    args: tuple[Any, ...] = (),
) -> list[object]:
    """Run ``fn(rank, world_size, *args)`` on ``world_size`` spawned gloo ranks.

    ``fn`` must be importable by name (a module-level function). The default process group is
    up (gloo, CPU) when ``fn`` starts. Returns one entry per rank: the return value, the
    exception raised (a :class:`RemoteError` when it cannot be pickled), :class:`RankDied` when
    the process exited without a result (e.g. SIGKILL) or :class:`RankTimedOut` when it was
    still running ``timeout`` seconds after the start and had to be killed.
    """
    context = multiprocessing.get_context("spawn")
    # The parent hosts the rendezvous store (port 0: the OS picks a free port), like torchrun's
    # agent does, so the store outlives any rank that dies.
    store = TCPStore(
        _HOST,
        0,
        world_size,
        is_master=True,
        wait_for_workers=False,
        timeout=timedelta(seconds=max(timeout, 1.0)),
    )
    with tempfile.TemporaryDirectory(prefix="esper_ranks_") as workdir:
        processes = [
            context.Process(
                target=_rank_main,
                args=(fn, rank, world_size, args, workdir, store.port, max(timeout, 1.0)),
                name=f"esper-rank-{rank}",
                daemon=True,
            )
            for rank in range(world_size)
        ]
        for process in processes:
            process.start()
        timed_out = _wait_all(processes, Path(workdir), time.monotonic() + timeout, store)
        return [
            _collect(rank, process, Path(workdir), rank in timed_out, timeout)
            for rank, process in enumerate(processes)
        ]


def _wait_all(processes: list[Any], workdir: Path, deadline: float, store: TCPStore) -> set[int]:
    """Wait until every rank has a result or has died, then release the finished ranks.

    Ranks still running without a result at ``deadline`` are SIGKILLed and returned.
    """

    def unfinished() -> set[int]:
        return {
            rank
            for rank, process in enumerate(processes)
            if process.is_alive() and not (workdir / f"rank{rank}.result").exists()
        }

    while unfinished() and time.monotonic() < deadline:
        time.sleep(0.02)
    stragglers = unfinished()
    store.set(_RELEASE_KEY, "1")
    for rank in stragglers:
        processes[rank].kill()
    for process in processes:
        process.join(5.0)
        if process.is_alive():  # a finished rank stuck in its own teardown
            process.kill()
            process.join(5.0)
    return stragglers


def _collect(rank: int, process: Any, workdir: Path, timed_out: bool, timeout: float) -> object:
    result_path = workdir / f"rank{rank}.result"
    if result_path.exists():
        with open(result_path, "rb") as handle:
            return pickle.load(handle)
    if timed_out:
        return RankTimedOut(rank, timeout)
    exitcode: int | None = process.exitcode
    return RankDied(rank, exitcode)

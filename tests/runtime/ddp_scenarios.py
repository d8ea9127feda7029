"""Faults inside a real DDP training loop (issue 13), run on spawned gloo ranks.

Each launch runs one fault: a fault ends with ranks raising and exiting (that is what releases a
rank blocked in gloo), so the processes cannot be reused for the next fault. The loop is the one
Esper's helpers run: DDP forward/backward over a few batches, then a per-slot tick loop
``for slot in model.blocks: slot.step_epoch()`` (coalesced by the guard into one sync, which runs
at the next backward).
"""

from __future__ import annotations

import os
import signal
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from esper_runtime import DesyncError, install_comm_hook, wrap_slots
from esper_runtime.testing import ReferenceSlot

TIMEOUT = 2.0
EPOCHS = 3
BATCHES = 3
FAULT_EPOCH = 1
FAULTS = (
    "uneven loaders",
    "an extra wrapped step_epoch",
    "a skipped advance_stage",
    "a rank that raises and exits",
    "a rank that catches an exception and stays alive",
    "SIGKILL",
    "different slot counts",
    "an extra guard.step_epoch() after the loop",
)
# Inside ``with ddp.join():`` the faulty rank has JOIN_EXTRA_BATCHES more batches every epoch,
# so the others join and wait in join()'s loop while it trains alone; the fault hits its first
# extra batch of the fault epoch. A slow tail is no fault: each extra batch takes TAIL_STEP_S,
# the tail more than the guard's timeout.
JOIN_EXTRA_BATCHES = 4
TAIL_STEP_S = 0.8
SLOW_TAIL = "a slow uneven tail (no fault)"
JOIN_FAULTS = (
    "a rank that raises and exits",
    "a rank that catches an exception and stays alive",
    "SIGKILL",
)


class EsperLikeNet(nn.Module):
    def __init__(self, slots: int) -> None:
        super().__init__()
        self.inp = nn.Linear(4, 4)
        self.blocks = nn.ModuleList([ReferenceSlot(10, "linear") for _ in range(slots)])
        self.out = nn.Linear(4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = self.inp(x)
        for block in self.blocks:
            hidden = block(hidden)
        out: torch.Tensor = self.out(hidden)
        return out


def _mark_fault(fault_file: str) -> None:
    Path(fault_file).write_text(repr(time.time()))


def ddp_fault_job(
    rank: int,
    world_size: int,
    fault: str,
    faulty: int,
    fault_file: str,
    hooked: bool = False,
    join: bool = False,
) -> Any:
    """One fault in the training loop; ``hooked``: with the slot check in DDP's comm hook;
    ``join``: each epoch's batches inside ``ddp.join()``, the faulty rank's loader longer."""
    torch.manual_seed(0)
    is_faulty = rank == faulty
    slots = 3 if fault == "different slot counts" and is_faulty else 2
    model = EsperLikeNet(slots)
    if fault == "different slot counts" and is_faulty:
        _mark_fault(fault_file)
    try:
        # Before DDP, whose constructor would itself fail on mismatched parameters.
        guard = wrap_slots(model, timeout=TIMEOUT)
        ddp = DistributedDataParallel(model)
        if hooked:
            install_comm_hook(ddp, guard)
        _train(rank, ddp, model, fault, is_faulty, fault_file, join)
        guard.flush()  # the last epoch's coalesced ticks, before the loop ends
        syncs = guard.stats["syncs"]
        if fault == "an extra guard.step_epoch() after the loop" and is_faulty:
            _mark_fault(fault_file)
            guard.step_epoch()  # noqa: ESP001 - the injected fault
    except DesyncError:
        # Re-raised, as an uncaught error in a real job: the rank exits, and its closed
        # sockets release gloo peers still blocked in a collective with it.
        Path(f"{fault_file}.t_error.{rank}").write_text(repr(time.time()))
        raise
    return {"syncs": syncs}


def _train(
    rank: int,
    ddp: DistributedDataParallel,
    model: EsperLikeNet,
    fault: str,
    is_faulty: bool,
    fault_file: str,
    join: bool,
) -> None:
    optimizer = torch.optim.SGD(ddp.parameters(), lr=0.01)
    generator = torch.Generator().manual_seed(100 + rank)
    for epoch in range(EPOCHS):
        at_fault = epoch == FAULT_EPOCH and is_faulty
        batches = BATCHES + (1 if at_fault and fault == "uneven loaders" else 0)
        batches += JOIN_EXTRA_BATCHES if join and is_faulty else 0
        with ddp.join() if join else nullcontext():
            for batch in range(batches):
                if at_fault and batch == (BATCHES if join else 1):
                    _inject_mid_epoch(fault, model, fault_file)
                if at_fault and fault == "uneven loaders" and batch == BATCHES:
                    _mark_fault(fault_file)  # the batch the other ranks do not have
                if join and is_faulty and fault == SLOW_TAIL and batch >= BATCHES:
                    time.sleep(TAIL_STEP_S)
                loss = ddp(torch.randn(8, 4, generator=generator)).pow(2).mean()
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        for slot in model.blocks:  # Esper's per-slot tick loop
            slot.step_epoch()
        if epoch == FAULT_EPOCH and fault == "a skipped advance_stage":
            if is_faulty:
                _mark_fault(fault_file)
            else:
                model.blocks[0].advance_stage()  # noqa: ESP001 - the injected fault


def _inject_mid_epoch(fault: str, model: EsperLikeNet, fault_file: str) -> None:
    if fault == "an extra wrapped step_epoch":
        _mark_fault(fault_file)
        model.blocks[0].step_epoch()  # noqa: ESP001 - the injected fault
    elif fault == "a rank that raises and exits":
        _mark_fault(fault_file)
        raise ValueError("loss is NaN")
    elif fault == "a rank that catches an exception and stays alive":
        _mark_fault(fault_file)
        try:
            raise ValueError("loss is NaN")
        except ValueError:
            # Alive, out of step, and never in a collective again: a retry loop.
            deadline = time.time() + 60
            while time.time() < deadline:
                time.sleep(0.05)
    elif fault == "SIGKILL":
        _mark_fault(fault_file)
        os.kill(os.getpid(), signal.SIGKILL)

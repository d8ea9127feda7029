"""Functions that run on spawned gloo ranks (via ``esper_runtime.testing.run_on_ranks``).

They live in their own module so that the spawned processes can import them by name. Each job
runs several scenarios to keep the number of process launches (a torch import each) low.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import pickle
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from esper_runtime import DesyncError, wrap_slots
from esper_runtime.adapters import SeedSlotAdapter
from esper_runtime.testing import ReferenceSlot

CURVES = ("linear", "cosine", "sigmoid")
FAULT_TIMEOUT = 2.0


def controller_state(slot: ReferenceSlot) -> dict[str, Any]:
    assert slot.state is not None
    fields = dataclasses.asdict(slot.state.alpha_controller)
    return {
        "state.alpha": slot.state.alpha,
        **{k: int(v) if hasattr(v, "name") else v for k, v in fields.items()},
    }


def all_states(slots: list[ReferenceSlot]) -> list[float]:
    adapter = SeedSlotAdapter()
    return [value for slot in slots for value in adapter.read_state(slot)]


def make_slots(total_steps: int = 6) -> list[ReferenceSlot]:
    return [ReferenceSlot(total_steps, curve) for curve in CURVES]


def single_process_alphas(epochs: int) -> list[list[float]]:
    """The reference: the same slots ticked without any process group."""
    slots = make_slots()
    history = []
    for _ in range(epochs):
        for slot in slots:
            slot.step_epoch()
        history.append(all_states(slots))
    return history


# --------------------------------------------------------------------------- counting collectives

_COLLECTIVES = (
    "all_gather",
    "all_gather_into_tensor",
    "all_gather_object",
    "all_reduce",
    "all_to_all",
    "barrier",
    "broadcast",
    "broadcast_object_list",
    "gather",
    "monitored_barrier",
    "recv",
    "reduce",
    "reduce_scatter",
    "scatter",
    "send",
)


@contextmanager
def count_collectives() -> Iterator[list[str]]:
    """Wrap every torch.distributed collective function and record each call's name."""
    calls: list[str] = []
    originals: dict[str, Callable[..., Any]] = {}

    def counting(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            calls.append(name)
            return original(*args, **kwargs)

        return wrapper

    for name in _COLLECTIVES:
        originals[name] = getattr(dist, name)
        setattr(dist, name, counting(name, originals[name]))
    try:
        yield calls
    finally:
        for name, original in originals.items():
            setattr(dist, name, original)


# --------------------------------------------------------------------------- healthy job


def healthy_job(rank: int, world_size: int, epochs: int, with_ddp: bool) -> dict[str, Any]:
    torch.manual_seed(0)
    result: dict[str, Any] = {
        "balanced": balanced_loop(epochs),
        "perturbed": perturbed_first_sync(rank),
        "collectives": coalescing_counts(),
        "other_src": adopt_from_last_rank(rank, world_size),
        "subgroup": subgroup_of_last_two(rank, world_size),
        "empty": empty_slots_and_no_slots(),
    }
    if with_ddp:
        result["module"] = module_round_trip_and_ddp(rank)
    result["rearm"] = rearm_after_init(rank, world_size)  # last: it re-creates the group
    return result


def rearm_after_init(rank: int, world_size: int) -> dict[str, Any]:
    """wrap_slots before init_process_group warns, then arms at the first call after init."""
    import warnings

    from torch.distributed import PrefixStore

    store = dist.distributed_c10d._get_default_store()
    dist.destroy_process_group()
    slots = make_slots(10)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        guard = wrap_slots(slots, timeout=30)
    active_before = guard.active
    slots[0].step_epoch()  # no group yet: a plain tick, nothing to arm
    dist.init_process_group(
        "gloo", store=PrefixStore("rearm/", store), rank=rank, world_size=world_size
    )
    if rank == 0:
        slots[1].set_alpha(0.75)  # diverged: the first sync after arming repairs it
    for slot in slots:  # the first guarded call arms the guard (the wrap meeting)
        slot.step_epoch()
    guard.flush()
    result = {
        "warnings": [str(w.message) for w in caught],
        "active_before": active_before,
        "active_after": guard.active,
        "syncs": guard.stats["syncs"],
        "states": all_states(slots),
    }
    guard.unwrap()
    return result


def balanced_loop(epochs: int) -> list[list[float]]:
    """Alternate the three ways of ticking: guard.step_epoch, per-slot calls, a batched block."""
    slots = make_slots()
    guard = wrap_slots(slots, timeout=30)
    history = []
    for epoch in range(epochs):
        if epoch % 3 == 0:
            guard.step_epoch()
        elif epoch % 3 == 1:
            for slot in slots:
                slot.step_epoch()
        else:
            with guard.batched():
                for slot in slots:
                    slot.step_epoch()
        history.append(all_states(slots))
    guard.unwrap()
    return history


def perturbed_first_sync(rank: int) -> dict[str, Any]:
    slot = ReferenceSlot(8, "cosine")
    probe = torch.ones(1, 4)
    if rank == 1:
        assert slot.state is not None
        for _ in range(3):
            slot.step_epoch()  # noqa: ESP001 - rank 1's perturbed start, before wrapping
        slot.state.alpha_controller.alpha_target = 0.5
        slot.state.alpha_controller.alpha_steepness = 3.0
        slot(probe)  # fills the cached alpha tensor with the perturbed alpha
    before = controller_state(slot)
    guard = wrap_slots([slot], timeout=30)
    lines = _LogLines()
    logging.getLogger("esper_runtime").addHandler(lines)
    try:
        guard.step_epoch()
    finally:
        logging.getLogger("esper_runtime").removeHandler(lines)
    after = controller_state(slot)
    cached = float(slot._alpha_tensor(probe))
    repairs = guard.stats["repairs"]
    guard.unwrap()
    return {
        "before": before,
        "after": after,
        "cached_alpha": cached,
        "repairs": repairs,
        "log": lines.messages,
    }


class _LogLines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def empty_slots_and_no_slots() -> dict[str, Any]:
    """An empty slot (state None) next to a seeded one, and a guard over no slot at all."""
    empty, seeded = ReferenceSlot(seeded=False), ReferenceSlot(4, "linear")
    guard = wrap_slots([empty, seeded], timeout=30)
    guard.step_epoch()
    guard.step_epoch()
    guard.unwrap()
    nothing = wrap_slots([], timeout=30)
    nothing.step_epoch()
    nothing.unwrap()
    return {"empty_state": empty.state, "seeded_alpha": seeded.alpha}


def adopt_from_last_rank(rank: int, world_size: int) -> dict[str, Any]:
    """src is a global rank other than 0: everyone adopts the last rank's controller."""
    slot = ReferenceSlot(6, "linear", alpha_target=0.25 * (rank + 1))
    guard = wrap_slots([slot], src=world_size - 1, timeout=30)
    guard.step_epoch()
    state = controller_state(slot)
    guard.unwrap()
    return state


def subgroup_of_last_two(rank: int, world_size: int) -> dict[str, Any] | None:
    """A guard over a user subgroup: only its members call wrap_slots (src is a global rank)."""
    members = [world_size - 2, world_size - 1]
    group = dist.new_group(members)  # every rank creates the user's group, members or not
    if rank not in members:
        return None
    slot = ReferenceSlot(6, "cosine", alpha_target=0.1 * (rank + 1))
    # noqa below: wrap_slots makes its side group with use_local_synchronization on a subgroup
    guard = wrap_slots([slot], group=group, src=members[1], timeout=30)  # noqa: ESP004
    guard.step_epoch()  # noqa: ESP003 - only the subgroup's members guard their slots
    state = controller_state(slot)
    guard.unwrap()
    return state


def coalescing_counts(slot_count: int = 16) -> dict[str, int]:
    slots = [ReferenceSlot(10, "linear") for _ in range(slot_count)]
    guard = wrap_slots(slots, timeout=30)
    counts = {}
    with count_collectives() as calls:
        guard.step_epoch()
    counts["guard.step_epoch"] = len(calls)
    with count_collectives() as calls, guard.batched():
        for slot in slots:
            slot.step_epoch()
    counts["batched"] = len(calls)
    with count_collectives() as calls:
        for slot in slots:  # Esper's per-slot tick loop: coalesced, synced at the next flush
            slot.step_epoch()
        counts["unbatched, before the flush"] = len(calls)
        guard.flush()
    counts["unbatched"] = len(calls)
    with count_collectives() as calls:
        slots[0].advance_stage()
    counts["advance_stage"] = len(calls)
    guard.unwrap()
    return counts


class SlotNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inp = nn.Linear(4, 4)
        self.blocks = nn.ModuleList([ReferenceSlot(4, "linear"), ReferenceSlot(4, "sigmoid")])
        self.out = nn.Linear(4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = self.inp(x)
        for block in self.blocks:
            hidden = block(hidden)
        out: torch.Tensor = self.out(hidden)
        return out


def module_round_trip_and_ddp(rank: int) -> dict[str, Any]:
    torch.manual_seed(0)
    model = SlotNet()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    guard = wrap_slots(model, timeout=30)
    keys_while_wrapped = list(model.state_dict().keys())
    patched = [("step_epoch" in b.__dict__) for b in model.blocks]
    guard.unwrap()
    after = model.state_dict()
    round_trip = {
        "keys_equal": list(before) == list(after) == keys_while_wrapped,
        "values_equal": all(torch.equal(before[k], after[k]) for k in before),
        "patched_while_wrapped": patched,
        "restored": [("step_epoch" not in b.__dict__) for b in model.blocks],
        "wrapped_names": list(guard.slot_names),
    }
    compiled = torch.compile(model.blocks[0], backend="eager")
    guard = wrap_slots(model, timeout=30)
    probe = torch.ones(2, 4)
    compiled_ok = torch.allclose(compiled(probe), model.blocks[0](probe))
    guard.unwrap()

    ddp = DistributedDataParallel(model)
    guard = wrap_slots(ddp, timeout=30)
    optimizer = torch.optim.SGD(ddp.parameters(), lr=0.05)
    generator = torch.Generator().manual_seed(100 + rank)
    alphas = []
    for _epoch in range(2):
        for _batch in range(3):
            x = torch.randn(8, 4, generator=generator)
            loss = ddp(x).pow(2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        guard.step_epoch()
        alphas.append([b.alpha for b in model.blocks])
    checksum = float(sum(p.detach().double().sum() for p in model.parameters()))
    guard.unwrap()
    return {
        **round_trip,
        "compiled_ok": compiled_ok,
        "ddp_names": list(guard.slot_names),
        "ddp_alphas": alphas,
        "param_checksum": checksum,
    }


# --------------------------------------------------------------------------- fault matrix


def _fault_result(name: str) -> dict[str, Any]:
    return {"case": name, "history": [], "error": None, "t_error": None, "t_fault": None}


def _record_error(result: dict[str, Any], error: BaseException) -> None:
    result["t_error"] = time.time()
    result["error"] = error


def extra_step_epoch(rank: int, faulty: int) -> dict[str, Any]:
    result = _fault_result("extra step_epoch on one rank")
    slots = make_slots(10)
    guard = wrap_slots(slots, timeout=FAULT_TIMEOUT)
    try:
        for epoch in range(6):
            guard.step_epoch()
            result["history"].append(all_states(slots))
            if epoch == 2 and rank == faulty:
                result["t_fault"] = time.time()
                slots[0].step_epoch()  # noqa: ESP001 - the injected fault
    except DesyncError as error:
        _record_error(result, error)
        try:  # a failed guard refuses further calls instead of using a broken group
            guard.step_epoch()
            result["after_failure"] = "no error: the failed guard ran another sync"
        except DesyncError as again:
            result["after_failure"] = str(again)
    return result


def missing_advance_stage(rank: int, faulty: int) -> dict[str, Any]:
    result = _fault_result("missing advance_stage on one rank")
    slots = make_slots(10)
    guard = wrap_slots(slots, timeout=FAULT_TIMEOUT)
    try:
        for epoch in range(6):
            if epoch == 2:
                if rank == faulty:
                    result["t_fault"] = time.time()
                else:
                    slots[0].advance_stage()  # noqa: ESP001 - the injected fault (every other rank advances)
            guard.step_epoch()
            result["history"].append(all_states(slots))
    except DesyncError as error:
        _record_error(result, error)
    return result


def raise_before_sync(rank: int, faulty: int) -> dict[str, Any]:
    """The faulty rank's training step raises; its handler skips the rest of the epoch loop."""
    result = _fault_result("a rank raising before the sync")
    slots = make_slots(10)
    guard = wrap_slots(slots, timeout=FAULT_TIMEOUT)
    try:
        for epoch in range(6):
            if epoch == 2 and rank == faulty:
                result["t_fault"] = time.time()
                raise ValueError("loss is NaN")
            guard.step_epoch()  # noqa: ESP002,ESP003 - the injected fault
            result["history"].append(all_states(slots))
    except DesyncError as error:
        _record_error(result, error)
    except ValueError as error:
        result["error"] = error  # the injected fault itself, not a detection
        # The handler gives the guard up: without it, this live rank would get the peers'
        # verdict at its next Python boundary (in the next scenario of this launch).
        guard.unwrap()
    return result


def different_slot_counts(rank: int, faulty: int) -> dict[str, Any]:
    result = _fault_result("different slot counts per rank")
    slots = make_slots(10) + ([ReferenceSlot(10)] if rank == faulty else [])
    result["t_fault"] = time.time()
    try:
        wrap_slots(slots, timeout=FAULT_TIMEOUT)
    except DesyncError as error:
        _record_error(result, error)
    return result


def ddp_wrapped_on_one_rank(rank: int, faulty: int) -> dict[str, Any]:
    """The faulty rank wraps the DDP wrapper, the others the bare model: a names mismatch."""
    result = _fault_result("DDP-wrapped model on one rank, bare on the others")
    model = nn.Sequential(nn.Linear(4, 4), ReferenceSlot(4), ReferenceSlot(4))
    ddp = DistributedDataParallel(model)  # every rank builds it (a collective)
    result["t_fault"] = time.time()
    try:
        wrap_slots(ddp if rank == faulty else model, timeout=FAULT_TIMEOUT)
    except DesyncError as error:
        _record_error(result, error)
    return result


def sigkill_mid_epoch(rank: int, faulty: int, fault_file: str) -> dict[str, Any]:
    result = _fault_result("a rank killed with SIGKILL mid-epoch")
    slots = make_slots(10)
    guard = wrap_slots(slots, timeout=FAULT_TIMEOUT)
    try:
        for epoch in range(6):
            for batch in range(4):
                if epoch == 2 and batch == 1 and rank == faulty:
                    with open(fault_file, "w") as handle:
                        handle.write(repr(time.time()))
                    os.kill(os.getpid(), signal.SIGKILL)
                time.sleep(0.01)  # "training"
            guard.step_epoch()
            result["history"].append(all_states(slots))
    except DesyncError as error:
        _record_error(result, error)
    return result


def fault_matrix_job(rank: int, world_size: int, faulty: int, fault_file: str) -> list[Any]:
    """Run the faults that leave the default group usable, then the SIGKILL, in one launch."""
    results = []
    for scenario in (
        extra_step_epoch,
        missing_advance_stage,
        raise_before_sync,
        different_slot_counts,
        ddp_wrapped_on_one_rank,
    ):
        results.append(scenario(rank, faulty))
        dist.barrier()  # the default group is unaffected by a broken side group
    # The faulty rank dies in the last scenario: save what it saw before that.
    with open(f"{fault_file}.rank{rank}.pickle", "wb") as handle:
        pickle.dump(results, handle)
    results.append(sigkill_mid_epoch(rank, faulty, fault_file))
    return results


def wrap_on_some_ranks_job(rank: int, world_size: int, faulty: int) -> dict[str, Any]:
    result = _fault_result("wrap_slots on only some ranks")
    slots = make_slots(10)
    result["t_fault"] = time.time()
    if rank == faulty:
        for _ in range(3):
            for slot in slots:
                slot.step_epoch()  # noqa: ESP001 - the unguarded rank of this fault
        return result
    try:
        guard = wrap_slots(slots, timeout=FAULT_TIMEOUT)  # noqa: ESP004 - the injected fault
        guard.step_epoch()  # noqa: ESP003 - the injected fault: the faulty rank never wraps
    except DesyncError as error:
        _record_error(result, error)
    return result


def foreign_attribute_on_one_rank(rank: int, world_size: int, faulty: int) -> dict[str, Any]:
    """The faulty rank's slot has an instance ``step_epoch``: wrap_slots refuses it locally."""
    result = _fault_result("a foreign instance attribute on one rank")
    slots = make_slots(10)
    if rank == faulty:
        slots[0].__dict__["step_epoch"] = slots[0].step_epoch
    result["t_fault"] = time.time()
    try:
        wrap_slots(slots, timeout=FAULT_TIMEOUT).unwrap()
    except (DesyncError, ValueError) as error:
        _record_error(result, error)
    return result


# --------------------------------------------------------------------------- harness behaviour


class _Unpicklable(Exception):
    def __init__(self) -> None:
        super().__init__("holds a lock")
        self.lock = __import__("threading").Lock()


def harness_outcomes(rank: int, world_size: int, value: int) -> object:
    assert dist.is_initialized() and dist.get_world_size() == world_size
    if rank == 0:
        return {"rank": rank, "value": value}
    if rank == 1:
        raise ValueError(f"rank {rank} failed on purpose")
    if rank == 2:
        raise _Unpicklable()
    os.kill(os.getpid(), signal.SIGKILL)
    return None


def harness_straggler(rank: int, world_size: int) -> object:
    if rank == 1:
        time.sleep(3600)
    return rank

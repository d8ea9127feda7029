"""In-process tests: the no-op mode, the adapter, the fingerprint report, the reference slot."""

from __future__ import annotations

import copy
import dataclasses
import gc
import pickle
import sys
import tempfile
import time
import warnings
import weakref
from collections.abc import Iterator
from datetime import timedelta
from enum import IntEnum
from typing import Any

import pytest
import torch
import torch.distributed as dist
from torch import nn

import esper_runtime.guard as guard_module
from esper_runtime import DesyncError, DesyncTimeout, SeedSlotAdapter, SlotAdapter, wrap_slots
from esper_runtime.adapters import CONTROLLER_FIELDS
from esper_runtime.guard import (
    EsperRuntimeWarning,
    SlotGuard,
    _guard_of,
    _refuse_foreign_attributes,
)
from esper_runtime.protocol import (
    CallKind,
    SideChannel,
    SlotSnapshot,
    WrapRequest,
    _meet_in_store,
    decode_fingerprint,
    describe_divergence,
    describe_mismatch,
    encode_fingerprint,
    explain_names,
    names_hash,
)
from esper_runtime.testing import AlphaMode, ReferenceSlot, SeedStage

# --------------------------------------------------------------------------- no process group


def test_without_process_group_the_guard_is_a_transparent_no_op(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert not dist.is_initialized()
    monkeypatch.setattr(guard_module, "_warned_no_group", False)
    slots = [ReferenceSlot(4, "linear"), ReferenceSlot(4, "cosine")]
    plain = [ReferenceSlot(4, "linear"), ReferenceSlot(4, "cosine")]
    with pytest.warns(EsperRuntimeWarning, match="before torch.distributed.init_process_group"):
        guard = wrap_slots(slots)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once per process, not once per guard
        wrap_slots([ReferenceSlot()]).unwrap()
    assert not guard.active
    assert guard.slots == tuple(slots)
    for slot in slots:
        # Patched with a pass-through that arms the guard once a process group exists.
        assert "step_epoch" in slot.__dict__
    for _ in range(3):
        guard.step_epoch()
        with guard.batched():
            slots[0].step_epoch()
            slots[1].step_epoch()
        for slot in plain:
            slot.step_epoch()
            slot.step_epoch()
    assert [s.alpha for s in slots] == [s.alpha for s in plain]
    assert slots[0].advance_stage().passed
    assert guard.stats["syncs"] == 0
    guard.unwrap()
    assert "step_epoch" not in slots[0].__dict__


def test_strict_wrap_without_process_group_raises() -> None:
    with pytest.raises(RuntimeError, match="strict=True"):
        wrap_slots([ReferenceSlot()], strict=True)


def test_fingerprint_is_local_and_sized_per_slot() -> None:
    slots = [ReferenceSlot(4, "linear"), ReferenceSlot(seeded=False)]
    guard = wrap_slots(slots)
    before = guard.fingerprint()
    assert before.dtype == torch.float64 and before.shape == (2 * (3 + 9),)
    slots[0].step_epoch()
    after = guard.fingerprint()
    assert after.shape == before.shape and not torch.equal(after, before)
    assert after[3].item() == slots[0].alpha  # state.alpha follows the three counters
    assert after[12 + 2].item() == -1.0  # the empty slot's stage
    with pytest.raises(DesyncError, match="caller says so"):
        guard.raise_desync("caller says so")
    guard.unwrap()


def test_wrapper_prefixes_are_explained_in_plain_words() -> None:
    text = explain_names({0: ["module.blocks.0", "module.blocks.1"], 1: ["blocks.0", "blocks.1"]})
    assert "differ only by wrapper prefixes" in text and "'module.blocks.0'" in text
    compiled = explain_names({0: ["_orig_mod.module.a"], 1: ["a"]})
    assert "differ only by wrapper prefixes" in compiled
    other = explain_names({0: ["encoder.slot"], 1: ["decoder.slot"]})
    assert "wrapped different objects" in other
    assert explain_names({0: ["a"], 1: ["a"]}) == ""


def test_no_op_guard_step_epoch_overhead_is_negligible() -> None:
    slots = [ReferenceSlot(10**9) for _ in range(8)]
    guard = wrap_slots(slots)

    def best_of(fn: Any) -> float:
        timings = []
        for _ in range(5):
            start = time.perf_counter()
            for _ in range(200):
                fn()
            timings.append(time.perf_counter() - start)
        return min(timings)

    def direct() -> None:
        for slot in slots:
            slot.step_epoch()

    # Generous bound: a context manager and a loop, no collectives, no copies of state.
    assert best_of(guard.step_epoch) < best_of(direct) * 3 + 0.005


@pytest.fixture
def single_rank_group() -> Iterator[None]:
    with tempfile.TemporaryDirectory() as workdir:
        dist.init_process_group(
            "gloo",
            init_method=f"file://{workdir}/rdv",
            rank=0,
            world_size=1,
            timeout=timedelta(seconds=30),
        )
        try:
            yield
        finally:
            dist.destroy_process_group()


@pytest.mark.skipif(sys.platform == "win32", reason="file:// rendezvous path")
def test_world_size_one_is_a_no_op(single_rank_group: None) -> None:
    slot = ReferenceSlot(4)
    guard = wrap_slots([slot], timeout=1)
    assert not guard.active
    assert "step_epoch" not in slot.__dict__
    guard.step_epoch()
    assert slot.alpha == pytest.approx(0.25)


# --------------------------------------------------------------------------- wrapping rules


def test_wrapping_a_wrapped_slot_raises_until_unwrapped() -> None:
    slot = ReferenceSlot()
    guard = wrap_slots([slot])
    with pytest.raises(ValueError, match="already wrapped by another SlotGuard"):
        wrap_slots([slot])
    guard.unwrap()
    guard.unwrap()  # idempotent
    wrap_slots([slot]).unwrap()


def test_module_target_finds_nested_slots_and_iterables_are_checked() -> None:
    model = nn.Sequential(nn.Linear(4, 4), ReferenceSlot(), nn.Sequential(ReferenceSlot()))
    guard = wrap_slots(model)
    assert guard.slot_names == ("1", "2.0")
    guard.unwrap()
    with pytest.raises(TypeError, match="is not a slot"):
        wrap_slots([nn.Linear(2, 2)])
    slot = ReferenceSlot()
    assert wrap_slots([slot, slot]).slots == (slot,)


@pytest.mark.parametrize("bad", [0, -1.0, timedelta(0)])
def test_timeout_must_be_positive(bad: Any) -> None:
    with pytest.raises(ValueError, match="timeout must be positive"):
        wrap_slots([ReferenceSlot()], timeout=bad)


# --------------------------------------------------------------------------- adapter


def test_adapter_round_trip_copies_every_field_through_set_alpha() -> None:
    adapter = SeedSlotAdapter()
    assert isinstance(adapter, SlotAdapter)
    source, target = ReferenceSlot(8, "sigmoid"), ReferenceSlot(3, "linear")
    for _ in range(5):
        source.step_epoch()
    target(torch.ones(1, 4))  # caches alpha
    calls: list[float] = []
    original = target.set_alpha

    def recording_set_alpha(value: float) -> None:
        calls.append(value)
        original(value)

    target.set_alpha = recording_set_alpha  # type: ignore[method-assign]
    values = adapter.read_state(source)
    assert len(values) == adapter.state_size == 1 + len(CONTROLLER_FIELDS)
    adapter.write_state(target, values)
    assert target.state is not None and source.state is not None
    assert dataclasses.asdict(target.state.alpha_controller) == dataclasses.asdict(
        source.state.alpha_controller
    )
    assert type(target.state.alpha_controller.alpha_curve) is type(
        source.state.alpha_controller.alpha_curve
    )
    assert calls == [source.alpha]
    assert float(target._alpha_tensor(torch.ones(1))) == pytest.approx(source.alpha)
    # Ticks after the copy agree too: the step counters and the curve were copied.
    source.step_epoch()
    target.step_epoch()
    assert target.alpha == source.alpha


def test_adapter_handles_frozen_controllers_and_empty_slots() -> None:
    class Mode(IntEnum):
        HOLD = 0
        UP = 1

    @dataclasses.dataclass(frozen=True)
    class FrozenController:
        alpha: float = 0.0
        alpha_start: float = 0.0
        alpha_target: float = 1.0
        alpha_mode: Mode = Mode.UP
        alpha_curve: Mode = Mode.HOLD
        alpha_steepness: float = 1.0
        alpha_steps_total: int = 4
        alpha_steps_done: int = 0

    @dataclasses.dataclass
    class State:
        stage: SeedStage
        alpha: float
        alpha_controller: FrozenController

    class FrozenSlot:
        def __init__(self) -> None:
            self.state: State | None = State(SeedStage.BLENDING, 0.0, FrozenController())

        def step_epoch(self) -> None: ...
        def advance_stage(self, target_stage: int | None = None) -> None: ...

        def set_alpha(self, value: float) -> None:
            assert self.state is not None
            self.state.alpha = value
            ctrl = dataclasses.replace(self.state.alpha_controller, alpha=value)
            self.state.alpha_controller = ctrl

    adapter = SeedSlotAdapter()
    slot = FrozenSlot()
    adapter.write_state(slot, [0.5, 0.5, 0.0, 1.0, 0.0, 1.0, 2.0, 4.0, 2.0])
    assert slot.state is not None
    assert slot.state.alpha_controller.alpha_steps_done == 2
    assert slot.state.alpha_controller.alpha_mode is Mode.HOLD
    assert slot.state.alpha == 0.5
    slot.state = None
    assert adapter.read_state(slot) == [0.0] * adapter.state_size
    assert adapter.stage(slot) is None
    adapter.write_state(slot, [1.0] * adapter.state_size)  # nothing to write into


# --------------------------------------------------------------------------- fingerprint report


def _row(kind: CallKind, number: int, slots: list[tuple[int, int, int]], trigger: int = -1) -> Any:
    snapshots = [SlotSnapshot(*s) for s in slots]
    return decode_fingerprint(encode_fingerprint(kind, number, 7, snapshots, trigger))


def _label(index: int, stage: int) -> str:
    return SeedStage(stage).name


def test_fingerprint_round_trip_and_agreement() -> None:
    row = _row(CallKind.STEP_EPOCH, 3, [(3, 1, 3), (3, 0, -1)])
    assert row.slots[1].has_seed is False and row.slots[0].stage == 3
    assert describe_divergence([row, row], [0, 1], ["a", "b"], _label) is None
    assert names_hash(["a", "b"]) == names_hash(["a", "b"]) != names_hash(["ab"])


def test_divergence_names_the_call_the_slot_and_tabulates_per_rank() -> None:
    rows = [
        _row(CallKind.ADVANCE_STAGE, 3, [(2, 1, 3), (2, 0, 3)], trigger=0),
        _row(CallKind.STEP_EPOCH, 3, [(3, 0, 3), (3, 0, 3)]),
        _row(CallKind.STEP_EPOCH, 3, [(3, 0, 3), (3, 0, 3)]),
    ]
    text = describe_divergence(rows, [0, 1, 2], ["enc.slot", "dec.slot"], _label)
    assert text is not None
    headline, *table = text.splitlines()
    assert "rank 0 is in enc.slot.advance_stage()" in headline
    assert "rank 1 is in guard.step_epoch()/batched()" in headline
    assert "at slot 'enc.slot': rank(s) [0] synced from enc.slot.advance_stage()" in headline
    assert "; step_epoch() call counts differ (rank 0: 2, rank 1: 3" in headline
    assert table[0].split() == [
        "rank",
        "sync",
        "in",
        "call",
        "slot",
        "step_epoch",
        "#",
        "advance_stage",
        "#",
        "stage",
    ]
    assert table[1].split() == [
        "0",
        "#3",
        "enc.slot.advance_stage()",
        "enc.slot",
        "2",
        "1",
        "BLENDING",
    ]
    assert len(table) == 4


def test_divergence_reports_stage_and_seed_differences() -> None:
    rows = [_row(CallKind.STEP_EPOCH, 1, [(1, 0, 3)]), _row(CallKind.STEP_EPOCH, 1, [(1, 0, 4)])]
    text = describe_divergence(rows, [0, 1], ["s"], _label)
    assert text is not None and "stages differ (rank 0: 3, rank 1: 4)" in text
    assert "HOLDING" in text
    rows = [_row(CallKind.STEP_EPOCH, 1, [(1, 0, 3)]), _row(CallKind.STEP_EPOCH, 1, [(1, 0, -1)])]
    text = describe_divergence(rows, [0, 1], ["s"], _label)
    assert text is not None and "has-seed differs" in text and "empty" in text


# --------------------------------------------------------------------------- errors, reference


def test_errors_pickle_with_their_details() -> None:
    error = pickle.loads(pickle.dumps(DesyncTimeout("late", missing_ranks=(2, 3), call="sync #4")))
    assert isinstance(error, DesyncTimeout)
    assert (str(error), error.missing_ranks, error.call) == ("late", (2, 3), "sync #4")
    assert str(pickle.loads(pickle.dumps(DesyncError("table")))) == "table"


@pytest.mark.parametrize("curve", ["linear", "cosine", "sigmoid"])
def test_reference_slot_ramps_to_target_and_holds(curve: str) -> None:
    slot = ReferenceSlot(5, curve)
    alphas = []
    for _ in range(7):
        slot.step_epoch()
        alphas.append(slot.alpha)
    assert alphas == sorted(alphas) and alphas[0] > 0.0
    assert alphas[4:] == [1.0, 1.0, 1.0]
    assert slot.state is not None and slot.state.alpha_controller.alpha_mode is AlphaMode.HOLD
    assert 0.0 < alphas[1] < 1.0


def test_reference_slot_curves_differ_and_forward_blends() -> None:
    mid = {c: ReferenceSlot(4, c) for c in ("linear", "cosine", "sigmoid")}
    for slot in mid.values():
        slot.step_epoch()
    assert len({s.alpha for s in mid.values()}) == 3
    slot = ReferenceSlot(4, features=3)
    x = torch.randn(2, 3, generator=torch.Generator().manual_seed(0))
    host = slot.host(x)
    assert torch.allclose(slot(x), host)  # alpha 0: host path only
    slot.set_alpha(1.0)
    # alpha 1: seed path only. The blend computes host + (seed - host), exact only up to the
    # rounding of host: an absolute tolerance, as seed values near 0 made rtol alone flaky.
    assert torch.allclose(slot(x), slot.seed(host), atol=1e-6)
    empty = ReferenceSlot(seeded=False)
    assert empty.state is None and not empty.advance_stage().passed
    empty.step_epoch()


def test_reference_slot_advance_stage() -> None:
    slot = ReferenceSlot()
    result = slot.advance_stage()
    assert result.passed and result.stage is SeedStage.HOLDING
    assert not slot.advance_stage(SeedStage.BLENDING).passed  # no going back
    slot.step_epoch()  # not BLENDING: no tick
    assert slot.alpha == 0.0


class _CounterAdapter:
    """A custom adapter: the "slot" is a plain dataclass with a float and a step counter."""

    state_size = 2

    def is_slot(self, obj: object) -> bool:
        return isinstance(obj, _CounterSlot)

    def stage(self, slot: Any) -> int | None:
        return 0

    def stage_label(self, slot: Any, stage: int) -> str:
        return "ON"

    def read_state(self, slot: Any) -> list[float]:
        return [slot.value, float(slot.steps)]

    def write_state(self, slot: Any, values: Any) -> None:
        slot.value, slot.steps = float(values[0]), int(values[1])


@dataclasses.dataclass
class _CounterSlot:  # eq=True makes it unhashable: the registry must not need hashing
    value: float = 0.0
    steps: int = 0

    def step_epoch(self) -> None:
        self.steps += 1

    def advance_stage(self, target_stage: int | None = None) -> None:
        return None


def test_custom_adapter_and_unhashable_slots() -> None:
    adapter = _CounterAdapter()
    assert isinstance(adapter, SlotAdapter)
    slot = _CounterSlot()
    guard = wrap_slots([slot], adapter=adapter)
    with pytest.raises(ValueError, match="already wrapped"):
        wrap_slots([slot], adapter=adapter)
    guard.step_epoch()
    assert slot.steps == 1
    guard.unwrap()
    wrap_slots([_CounterSlot()], adapter=adapter).unwrap()


# --------------------------------------------------------------------------- guard lifecycle
# An active guard needs a side channel; a real one-rank gloo group gives one in-process.


def _active_guard(slots: list[Any]) -> SlotGuard:
    group = dist.new_group(ranks=[0], backend="gloo", timeout=timedelta(seconds=10))
    channel = SideChannel(group, (0,), 0, 10.0, None, "test")
    named = [(f"slots[{index}]", slot) for index, slot in enumerate(slots)]
    guard = SlotGuard(named, SeedSlotAdapter(), channel)
    guard._install()
    return guard


@pytest.mark.skipif(sys.platform == "win32", reason="file:// rendezvous path")
def test_dropped_guards_and_slots_leave_the_registry(single_rank_group: None) -> None:
    slot = ReferenceSlot()
    wrap_slots([slot])  # a no-op guard, dropped at once: the slot is free again
    gc.collect()
    wrap_slots([slot]).unwrap()

    before = len(_guard_of)
    wrapped = ReferenceSlot()
    guard = _active_guard([wrapped])
    assert len(_guard_of) == before + 1
    slot_ref, guard_ref = weakref.ref(wrapped), weakref.ref(guard)
    del wrapped, guard
    gc.collect()
    assert slot_ref() is None and guard_ref() is None  # the registry kept neither alive
    assert len(_guard_of) == before


@pytest.mark.skipif(sys.platform == "win32", reason="file:// rendezvous path")
def test_a_saved_patched_method_runs_unguarded_after_unwrap(single_rank_group: None) -> None:
    slot = ReferenceSlot(4)
    guard = _active_guard([slot])
    step_epoch, advance_stage = slot.step_epoch, slot.advance_stage
    step_epoch()
    guard.flush()
    assert guard._syncs == 1
    guard.unwrap()
    step_epoch()  # ticks once, unguarded, instead of ticking and then failing
    assert slot.alpha == pytest.approx(0.5)
    assert advance_stage().passed
    assert guard._syncs == 1
    assert "step_epoch" not in slot.__dict__


@pytest.mark.skipif(sys.platform == "win32", reason="file:// rendezvous path")
def test_a_deepcopy_of_a_wrapped_model_runs_its_own_methods(single_rank_group: None) -> None:
    model = nn.Sequential(ReferenceSlot(4))
    guard = _active_guard([model[0]])
    clone = copy.deepcopy(model)
    clone[0].step_epoch()
    clone[0].advance_stage()
    assert clone[0].alpha == pytest.approx(0.25)
    assert model[0].alpha == 0.0  # the original slot was not ticked through the copy
    assert guard._syncs == 0 and guard._wrapped[0].step_calls == 0
    model[0].step_epoch()
    guard.flush()
    assert guard._syncs == 1

    _refuse_foreign_attributes([("clone", clone[0])])  # a copied patch may be replaced
    own_guard = _active_guard([clone[0]])
    clone[0].step_epoch()
    own_guard.flush()
    assert own_guard._syncs == 1 and guard._syncs == 1
    own_guard.unwrap()
    guard.unwrap()
    assert "step_epoch" not in model[0].__dict__ and "step_epoch" not in clone[0].__dict__


def test_foreign_instance_attributes_are_refused() -> None:
    slot = ReferenceSlot()
    slot.__dict__["step_epoch"] = lambda: None
    with pytest.raises(ValueError, match="already has an instance attribute 'step_epoch'"):
        _refuse_foreign_attributes([("slot", slot)])


def test_raw_fingerprints_differing_outside_the_decoded_fields_are_a_mismatch() -> None:
    mine = encode_fingerprint(CallKind.STEP_EPOCH, 1, 7, [SlotSnapshot(1, 0, 2)])
    foreign = mine.clone()
    foreign[0] = 0  # the magic: decode_fingerprint drops it
    assert decode_fingerprint(foreign) == decode_fingerprint(mine)
    assert describe_mismatch([mine, mine.clone()], (0, 1), ["slots[0]"], _label) is None
    text = describe_mismatch([mine, foreign], (0, 1), ["slots[0]"], _label)
    assert text is not None and "raw fingerprints differ" in text
    assert f"rank 1: {foreign.tolist()}" in text


@pytest.mark.skipif(sys.platform == "win32", reason="file:// rendezvous path")
def test_a_dead_store_in_the_wrap_meeting_is_a_desync_timeout(single_rank_group: None) -> None:
    server = dist.TCPStore("127.0.0.1", 0, 1, is_master=True, wait_for_workers=False)
    client = dist.TCPStore("127.0.0.1", server.port, is_master=False, timeout=timedelta(seconds=2))
    del server  # the store host is gone: set/wait/check/get raise RuntimeError
    with pytest.raises(DesyncTimeout) as caught:
        _meet_in_store(client, "test", (0, 1), WrapRequest(1, 2, 0, 1.0))
    assert caught.value.call == "wrap_slots"


@pytest.mark.skipif(sys.platform == "win32", reason="file:// rendezvous path")
def test_consecutive_slot_ticks_coalesce_into_one_sync(single_rank_group: None) -> None:
    slots = [ReferenceSlot(10) for _ in range(4)]
    guard = _active_guard(slots)
    for slot in slots:  # Esper's per-slot tick loop
        slot.step_epoch()
    assert guard._syncs == 0 and guard.stats["coalesced_ticks"] == 4
    slots[0].step_epoch()  # a repeated tick closes the round: one sync for the four ticks
    assert guard._syncs == 1
    guard.flush()
    assert guard._syncs == 2 and guard.stats["coalesced_syncs"] == 2
    guard.flush()  # nothing pending: no collective
    assert guard._syncs == 2
    slots[1].step_epoch()
    slots[2].advance_stage()  # any other guarded call syncs the pending ticks first
    assert guard._syncs == 4
    slots[3].step_epoch()
    guard.step_epoch()  # the pending tick, then guard.step_epoch()'s own sync
    assert guard._syncs == 6
    guard.unwrap()


@pytest.mark.skipif(sys.platform == "win32", reason="file:// rendezvous path")
def test_join_is_watched_while_a_guard_is_active_and_given_back_after(
    single_rank_group: None,
) -> None:
    from torch.distributed.algorithms.join import Join

    original = (Join.__exit__, Join._get_num_nonjoined_procs)
    guard = _active_guard([ReferenceSlot(10)])
    # join()'s loop is where a rank that ran out of inputs waits: the watchdog must see it.
    assert Join.__exit__ is not original[0]
    assert Join._get_num_nonjoined_procs is not original[1]
    guard.unwrap()
    assert (Join.__exit__, Join._get_num_nonjoined_procs) == original


@pytest.mark.skipif(sys.platform == "win32", reason="file:// rendezvous path")
def test_a_rank_waiting_in_join_is_described_by_what_it_joined(single_rank_group: None) -> None:
    from torch.distributed.algorithms.join import Join, Joinable, JoinHook
    from torch.nn.parallel import DistributedDataParallel

    from esper_runtime.watchdog import join_detail

    class StreamingMetric(Joinable):  # a joinable of one's own, like ZeRO's optimizer
        def __init__(self) -> None:
            super().__init__()

        def join_hook(self, **kwargs: Any) -> JoinHook:
            return JoinHook()

        @property
        def join_device(self) -> torch.device:
            return torch.device("cpu")

        @property
        def join_process_group(self) -> Any:
            return dist.group.WORLD

    ddp = DistributedDataParallel(nn.Linear(2, 2))
    waiting = ", waiting for the ranks still training"
    assert join_detail(Join([ddp])) == "ddp.join()" + waiting
    assert join_detail(Join([ddp, StreamingMetric()])) == (
        "join() of DistributedDataParallel, StreamingMetric" + waiting
    )


@pytest.mark.skipif(sys.platform == "win32", reason="file:// rendezvous path")
def test_pending_ticks_are_synced_at_the_next_backward(single_rank_group: None) -> None:
    model = nn.Sequential(ReferenceSlot(10), ReferenceSlot(10))
    guard = _active_guard(list(model))
    assert torch.autograd.backward is not getattr(torch.autograd.backward, "__wrapped__", None)
    for slot in model:
        slot.step_epoch()
    out = model(torch.ones(2, 4))
    assert guard._syncs == 0  # a forward costs nothing
    out.sum().backward()
    assert guard._syncs == 1 and guard.stats["flushes_at_backward"] == 1
    model(torch.ones(2, 4)).sum().backward()
    assert guard._syncs == 1  # nothing pending: a backward costs no collective
    guard.unwrap()
    assert not hasattr(torch.autograd.backward, "__wrapped__")  # restored with the last guard


@pytest.mark.parametrize("peer_heartbeats", [False, True], ids=["silent-peer", "beating-peer"])
def test_a_timeout_verdict_names_a_peer_that_fell_silent_before_it_looks_dead(
    peer_heartbeats: bool,
) -> None:
    import json

    from esper_runtime.watchdog import Watchdog, activity

    store = dist.HashStore()
    watchdog = Watchdog(
        store, "t", rank=0, ranks=(0, 1), timeout=1.0, describe=lambda: {"sync": 1}, heartbeat=0.25
    )

    def peer_beats(beat: int) -> None:
        status = {"sync": 1, "hb": beat, "state": "running", "where": "train.py:9", "age": 0.0}
        store.set("t/status/1", json.dumps(status))
        watchdog._read_peers()

    peer_beats(0)
    previous = activity.enter("backward", "", "train.py:12")
    try:
        # Blocked past the timeout, and (for the silent peer) past 4 missed heartbeats, but
        # well inside the 5 s after which a silent peer counts as dead on its own.
        for beat in range(1, 7):
            time.sleep(0.25)
            if peer_heartbeats:
                peer_beats(beat)
        found = watchdog._reason_for_verdict()
    finally:
        activity.restore(previous)
    assert found is not None
    reason, blamed = found
    assert blamed == (1,)
    assert "rank 0 has waited" in reason and "while rank(s) [1] are elsewhere" in reason
    # The table agrees with the headline.
    assert ("rank 1 stopped heartbeating" in reason) is not peer_heartbeats
    peer_row = reason.splitlines()[-1]
    assert ("stopped heartbeating 1." in peer_row) is not peer_heartbeats
    # Silent or not, the row still says what the peer was doing (it may only be starved of CPU).
    assert "running, not in a collective the guard knows" in peer_row


def test_a_timeout_verdict_waits_briefly_to_name_a_peer_that_just_fell_silent() -> None:
    import json

    from esper_runtime.watchdog import Watchdog, activity

    store = dist.HashStore()
    watchdog = Watchdog(
        store, "t", rank=0, ranks=(0, 1), timeout=1.0, describe=lambda: {"sync": 1}, heartbeat=0.25
    )
    previous = activity.enter("backward", "", "train.py:12")
    try:
        for beat in range(6):  # the peer beats for 0.75 s, then is killed
            if beat <= 3:
                status = {"sync": 1, "hb": beat, "state": "running", "age": 0.0}
                store.set("t/status/1", json.dumps(status))
            watchdog._read_peers()
            time.sleep(0.25)
        # Past the timeout, but the peer has missed only 2-3 beats: no verdict yet.
        assert watchdog._reason_for_verdict() is None
        time.sleep(0.6)
        found = watchdog._reason_for_verdict()
    finally:
        activity.restore(previous)
    assert found is not None
    assert "; rank 1 stopped heartbeating" in found[0]

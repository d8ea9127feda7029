"""``wrap_slots`` and ``SlotGuard``: check every slot call across ranks and share rank src's state.

The slots are patched in place: ``step_epoch`` and ``advance_stage`` become instance
attributes that shadow the class's methods. There is no proxy, so parameters, ``state_dict``
keys, DDP wrapping and ``torch.compile`` of ``forward`` see the same module as before, and
``unwrap()`` deletes the instance attributes again.
"""

from __future__ import annotations

import functools
import logging
import warnings
import weakref
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from types import MethodType
from typing import Any, NoReturn

import torch
import torch.distributed as dist
from torch import nn

from . import watchdog as _watchdog
from .adapters import SeedSlotAdapter, SlotAdapter
from .errors import DesyncError, DesyncTimeout
from .protocol import (
    GUARD_TRIGGER,
    CallKind,
    SideChannel,
    SlotSnapshot,
    WrapRequest,
    describe_mismatch,
    encode_fingerprint,
    names_hash,
    open_side_channel,
)

__all__ = ["EsperRuntimeWarning", "GuardStats", "SlotGuard", "wrap_slots"]

logger = logging.getLogger("esper_runtime")


class EsperRuntimeWarning(RuntimeWarning):
    """A guard that does less than it seems to (e.g. wrapped before the process group exists)."""


class GuardStats(Counter[str]):
    """Counters of one guard: ``syncs``, ``collectives``, ``coalesced_ticks``, ``repairs``...

    A ``collections.Counter``: missing keys read as 0.
    """


_warned_no_group = False

_PATCHED_METHODS = ("step_epoch", "advance_stage")
_PATCH_MARK = "_esper_runtime_patch"  # set on the functions of our patched methods


class _Registry:
    """Slot -> the guard that wraps it, by identity (slots may be unhashable dataclasses).

    Entries hold only weak references to the guard, and to the slot when it allows one; a
    weakref callback drops the entry when either is collected. So a dropped model or guard
    does not stay "wrapped", and a recycled id() is not mistaken for the old slot.
    """

    def __init__(self) -> None:
        self._entries: dict[int, tuple[Callable[[], Any], weakref.ref[SlotGuard]]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, slot: Any) -> SlotGuard | None:
        entry = self._entries.get(id(slot))
        if entry is None or entry[0]() is not slot:
            return None
        return entry[1]()

    def set(self, slot: Any, guard: SlotGuard) -> None:
        key = id(slot)

        def forget(_: object) -> None:
            if self._entries.get(key) is entry:
                del self._entries[key]

        slot_ref: Callable[[], Any]
        try:
            slot_ref = weakref.ref(slot, forget)
        except TypeError:  # no __weakref__ slot: kept alive until its guard is collected
            slot_ref = functools.partial(lambda kept: kept, slot)
        entry = (slot_ref, weakref.ref(guard, forget))
        self._entries[key] = entry

    def discard(self, slot: Any, guard: SlotGuard) -> None:
        if self.get(slot) is guard:
            del self._entries[id(slot)]


_guard_of = _Registry()


@dataclass
class _Wrapped:
    name: str
    slot: Any
    step_calls: int = 0
    advance_calls: int = 0


def wrap_slots(
    target: nn.Module | Iterable[Any],
    *,
    group: dist.ProcessGroup | None = None,
    src: int = 0,
    timeout: float | timedelta = 60.0,
    adapter: SlotAdapter | None = None,
    strict: bool = False,
    heartbeat: float | None = None,
) -> SlotGuard:
    """Guard the slots in ``target`` so that every rank stays in step and uses rank ``src``'s state.

    ``target`` is an ``nn.Module`` (every submodule the adapter recognises as a slot is wrapped,
    the module itself included) or an iterable of slots. ``group`` is the process group whose
    ranks must agree (default: the world); ``src`` is a global rank of that group.
    ``timeout`` (seconds or a ``timedelta``) bounds every guarded wait.

    With several ranks this is itself a collective: every rank of ``group`` must call it, in the
    same order relative to other ``wrap_slots``/``new_group`` calls. With one rank the guard is
    a no-op and the slots are not patched. Without an initialised process group it warns once
    (``strict=True`` raises instead) and arms itself at the first guarded call after
    ``init_process_group`` (that call is then the collective meeting). ``heartbeat`` is the
    watchdog's period in seconds (default: ``min(0.5, timeout / 8)``).
    """
    slot_adapter: SlotAdapter = adapter if adapter is not None else SeedSlotAdapter()
    named = _collect_slots(target, slot_adapter)
    seconds = _seconds(timeout)
    for name, slot in named:
        owner = _guard_of.get(slot)
        if owner is not None:
            raise ValueError(
                f"slot {name!r} ({type(slot).__name__}) is already wrapped by another SlotGuard; "
                "call unwrap() on that guard before wrapping it again"
            )
    _refuse_foreign_attributes(named)
    settings = _Settings(group, src, seconds, heartbeat)
    if not _group_initialised():
        if strict:
            raise RuntimeError(
                "esper_runtime: wrap_slots() before torch.distributed.init_process_group(): "
                "the guard would not check anything yet (strict=True)"
            )
        _warn_no_group()
        guard = SlotGuard(named, slot_adapter, None, settings)
        guard._install(arming=True)
        return guard
    channel = _open_channel(named, settings)
    guard = SlotGuard(named, slot_adapter, channel, settings)
    guard._install()
    return guard


@dataclass(frozen=True)
class _Settings:
    group: dist.ProcessGroup | None
    src: int
    timeout: float
    heartbeat: float | None


def _group_initialised() -> bool:
    return dist.is_available() and dist.is_initialized()


def _warn_no_group() -> None:
    global _warned_no_group
    if _warned_no_group:
        return
    _warned_no_group = True
    warnings.warn(
        "esper_runtime: wrap_slots() before torch.distributed.init_process_group(): the guard "
        "checks nothing until the process group exists; it arms itself at the first guarded "
        "call after that (pass strict=True to make this an error)",
        EsperRuntimeWarning,
        stacklevel=3,
    )


def _open_channel(named: Sequence[tuple[str, Any]], settings: _Settings) -> SideChannel | None:
    ranks = _participating_ranks(settings.group)
    if ranks is None:
        return None
    if settings.src not in ranks:
        raise ValueError(f"src={settings.src} is not a rank of the group (ranks {list(ranks)})")
    names = [n for n, _ in named]
    request = WrapRequest(len(named), names_hash(names), settings.src, settings.timeout)
    subgroup = settings.group is not None and len(ranks) != dist.get_world_size()
    return open_side_channel(ranks, request, subgroup=subgroup, names=names)


class SlotGuard:
    """The handle returned by :func:`wrap_slots`."""

    def __init__(
        self,
        named_slots: Sequence[tuple[str, Any]],
        adapter: SlotAdapter,
        channel: SideChannel | None,
        settings: _Settings | None = None,
    ) -> None:
        self._wrapped = [_Wrapped(name, slot) for name, slot in named_slots]
        self._adapter = adapter
        self._channel = channel
        self._settings = settings or _Settings(None, 0, 60.0, None)
        self._name_hash = names_hash([name for name, _ in named_slots])
        self._batch_depth = 0
        self._pending_sync = False
        self._batch_where = ""
        self._round: dict[int, str] = {}  # coalesced ticks: slot index -> file:line of the call
        self._syncs = 0
        self._last_call = "wrap_slots()"
        self._last_where = ""
        self._failure: DesyncError | None = None
        self._installed = False
        self._arming = False
        self._watchdog: _watchdog.Watchdog | None = None
        self.stats = GuardStats()
        """Counters: syncs, collectives, coalesced_ticks, coalesced_syncs, repairs, ..."""
        if channel is not None:
            self._start_watchdog(channel)
            _watchdog.watch_backward(self)

    # ------------------------------------------------------------------ public API

    @property
    def slots(self) -> tuple[Any, ...]:
        """The wrapped slots, in wrap order."""
        return tuple(w.slot for w in self._wrapped)

    @property
    def slot_names(self) -> tuple[str, ...]:
        return tuple(w.name for w in self._wrapped)

    @property
    def active(self) -> bool:
        """False when the guard is a no-op (no process group, or a world of one rank)."""
        return self._channel is not None

    @property
    def verdict(self) -> DesyncError | None:
        """The error this guard raised or will raise on this rank, or None while in step."""
        if self._failure is not None:
            return self._failure
        return None if self._watchdog is None else self._watchdog.error

    def step_epoch(self) -> None:
        """Tick every wrapped slot once, then sync once (two collectives in all)."""
        self._arm_if_ready()
        self.flush_pending("at guard.step_epoch()")
        with self.batched():
            for wrapped in self._wrapped:
                wrapped.slot.step_epoch()

    def flush(self) -> None:
        """Sync now the ``step_epoch`` ticks coalesced since the last sync (a collective).

        Consecutive wrapped ``slot.step_epoch()`` calls are synced lazily, as one sync, at the
        next guarded call, the next backward, a repeated tick of a slot, or here.
        """
        self._arm_if_ready()
        self.flush_pending("at guard.flush()")

    def flush_pending(self, reason: str) -> None:
        if not self._round or self._batch_depth or self._channel is None:
            return
        ticked = sorted(self._round)
        first = ticked[0]
        where = self._round[first]
        self._round = {}
        label = f"{self._wrapped[first].name}.step_epoch()"
        if len(ticked) > 1:
            label += f" and {len(ticked) - 1} more, coalesced"
        self.stats["coalesced_syncs"] += 1
        if reason == "at backward":
            self.stats["flushes_at_backward"] += 1
        self._sync_epoch(first, f"{label} (synced {reason})", where)

    def fingerprint(self) -> torch.Tensor:
        """This rank's slot state as a small float64 CPU tensor (local; no collective).

        Per wrapped slot, in wrap order: ``step_epoch`` calls, ``advance_stage`` calls, stage
        (-1 when empty), then the adapter's state vector (``state.alpha`` and the controller
        fields for a ``SeedSlot``). Same length on every rank that wrapped the same slots.
        """
        return torch.tensor(self.fingerprint_values(), dtype=torch.float64)

    def fingerprint_values(self) -> list[float]:
        """:meth:`fingerprint` as a list of numbers (counters and stages stay ``int``).

        The DDP comm hook reads this at every backward: building the list costs a few
        microseconds, a tensor several times that.
        """
        adapter = self._adapter
        values: list[float] = []
        for w in self._wrapped:
            stage = adapter.stage(w.slot)
            values += (w.step_calls, w.advance_calls, -1 if stage is None else stage)
            values += adapter.read_state(w.slot)
        return values

    def raise_desync(self, reason: str, *, timeout: bool = False) -> NoReturn:
        """Make every rank raise this guard's error: write the verdict, then raise it here.

        Other ranks' watchdogs pick the verdict up within a heartbeat and raise it at their
        next Python boundary, or when the collective they are blocked in fails. The first
        verdict written wins: a rank that raced another one raises the other's verdict.
        """
        if self._failure is not None:
            raise self._failure
        if self._watchdog is None:
            raise DesyncTimeout(reason) if timeout else DesyncError(reason)
        kind = _watchdog.TIMEOUT if timeout else _watchdog.MISMATCH
        rank = self._watchdog.rank
        self._fail_with_verdict(kind, f"esper_runtime: desync reported on rank {rank}: {reason}")

    @contextmanager
    def batched(self) -> Iterator[SlotGuard]:
        """Defer the syncs of the ``step_epoch`` calls inside the block to one sync at exit.

        ``advance_stage`` calls are still pre-checked one by one (they are collectives). If the
        block raises, the deferred sync is skipped: the next sync reports the mismatch.
        """
        if self._batch_depth == 0:
            self.flush_pending("at batched()")
            self._batch_where = _watchdog.user_location()
        self._batch_depth += 1
        completed = False
        try:
            yield self
            completed = True
        finally:
            self._batch_depth -= 1
            if self._batch_depth == 0 and self._pending_sync:
                self._pending_sync = False
                if completed:
                    call = "guard.step_epoch()/batched()"
                    self._sync_epoch(GUARD_TRIGGER, call, self._batch_where)

    def unwrap(self) -> None:
        """Restore the slots' own methods. Local (not a collective); safe to call twice.

        Ticks coalesced or deferred since the last sync are dropped (call ``flush()`` first to
        sync them), the watchdog stops and the side process group is destroyed (a local
        operation): a rank still syncing with this one gets a ``DesyncTimeout``. The guard is
        inactive afterwards.
        """
        self._pending_sync = False
        self._round = {}
        self._arming = False
        _watchdog.unwatch_backward(self)
        if self._watchdog is not None:
            self._watchdog.stop(leaving=True)
            self._watchdog = None
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        for wrapped in self._wrapped:
            if self._installed:
                for method in _PATCHED_METHODS:
                    wrapped.slot.__dict__.pop(method, None)
            _guard_of.discard(wrapped.slot, self)
        self._installed = False

    def __repr__(self) -> str:
        mode = "active" if self.active else "no-op"
        return f"<SlotGuard {mode}, {len(self._wrapped)} slot(s), {self._syncs} sync(s)>"

    # ------------------------------------------------------------------ arming and watchdog

    def _start_watchdog(self, channel: SideChannel) -> None:
        store = channel.watchdog_store()
        if store is None:
            return
        self._watchdog = _watchdog.Watchdog(
            store,
            channel.key_prefix,
            channel.rank,
            channel.global_ranks,
            channel.timeout,
            self._describe,
            heartbeat=self._settings.heartbeat,
        )
        channel.describe_rank = self._watchdog.describe_rank
        self._watchdog.start()

    def _describe(self) -> dict[str, Any]:
        return {"sync": self._syncs, "call": self._last_call, "call_where": self._last_where}

    def _arm_if_ready(self) -> None:
        """A guard wrapped before init_process_group arms itself once the group exists."""
        if not self._arming or not _group_initialised():
            return
        self._arming = False
        channel = _open_channel([(w.name, w.slot) for w in self._wrapped], self._settings)
        if channel is None:  # a world of one rank: stay a no-op
            for wrapped in self._wrapped:
                for method in _PATCHED_METHODS:
                    wrapped.slot.__dict__.pop(method, None)
            self._installed = False
            return
        self._channel = channel
        self._start_watchdog(channel)
        _watchdog.watch_backward(self)

    # ------------------------------------------------------------------ patching

    def _install(self, *, arming: bool = False) -> None:
        for wrapped in self._wrapped:
            _guard_of.set(wrapped.slot, self)
        if self._channel is None and not arming:
            return
        self._arming = arming
        for index, wrapped in enumerate(self._wrapped):
            slot = wrapped.slot
            # Bound to the slot, so a deepcopy of the model binds the copy (see _guarding).
            slot.__dict__["step_epoch"] = MethodType(self._guarded_step_epoch(index, wrapped), slot)
            slot.__dict__["advance_stage"] = MethodType(
                self._guarded_advance_stage(index, wrapped), slot
            )
        self._installed = True

    def _guarding(self, slot: Any, wrapped: _Wrapped) -> bool:
        """Whether a call of a patched method on ``slot`` is to be guarded by this guard.

        It is not after ``unwrap()`` (a reference saved before it) or when ``slot`` is a copy of
        the wrapped slot (``copy.deepcopy`` copies the patched methods, bound to the copy). Such
        calls run the method ``slot`` has now, unguarded unless another guard wraps it. Nor is
        it while a guard wrapped before ``init_process_group`` waits for the group.
        """
        if self._arming:
            self._arm_if_ready()
        return self._installed and self._channel is not None and slot is wrapped.slot

    def _guarded_step_epoch(self, index: int, wrapped: _Wrapped) -> Callable[..., Any]:
        @functools.wraps(_class_attribute(wrapped.slot, "step_epoch"))
        def step_epoch(slot: Any, *args: Any, **kwargs: Any) -> Any:
            if not self._guarding(slot, wrapped):
                return _current_method(slot, "step_epoch", step_epoch)(*args, **kwargs)
            self._raise_if_failed()
            if not self._batch_depth and index in self._round:
                self.flush_pending("at a repeated tick of this slot")
            result = _class_method(slot, "step_epoch")(*args, **kwargs)
            wrapped.step_calls += 1
            if self._batch_depth:
                self._pending_sync = True
            else:
                self._round[index] = _watchdog.user_location()
                self.stats["coalesced_ticks"] += 1
            return result

        setattr(step_epoch, _PATCH_MARK, True)
        return step_epoch

    def _guarded_advance_stage(self, index: int, wrapped: _Wrapped) -> Callable[..., Any]:
        @functools.wraps(_class_attribute(wrapped.slot, "advance_stage"))
        def advance_stage(slot: Any, *args: Any, **kwargs: Any) -> Any:
            if not self._guarding(slot, wrapped):
                return _current_method(slot, "advance_stage", advance_stage)(*args, **kwargs)
            self._raise_if_failed()
            where = _watchdog.user_location()
            self.flush_pending("at advance_stage()")
            wrapped.advance_calls += 1
            call = f"{wrapped.name}.advance_stage() pre-check"
            self._check(CallKind.ADVANCE_STAGE, call, index, where)
            # The slot's own gate broadcast runs on the default group: blocked there, this rank
            # learns the verdict when the broadcast fails.
            with _watchdog.translating("advance", f"{wrapped.name}.advance_stage()", where):
                return _class_method(slot, "advance_stage")(*args, **kwargs)

        setattr(advance_stage, _PATCH_MARK, True)
        return advance_stage

    # ------------------------------------------------------------------ syncing

    def _sync_epoch(self, trigger: int, call: str, where: str) -> None:
        self._check(CallKind.STEP_EPOCH, call, trigger, where)
        self._adopt_source_state()

    def _check(self, kind: CallKind, call: str, trigger: int, where: str) -> None:
        channel = self._require_channel()
        self._syncs += 1
        self.stats["syncs"] += 1
        self.stats["collectives"] += 1
        label = f"{call} #{self._syncs}"
        self._last_call, self._last_where = call, where
        mine = encode_fingerprint(kind, self._syncs, self._name_hash, self._snapshots(), trigger)
        try:
            with _watchdog.translating("sync", label, where):
                rows = channel.all_gather(mine, self._syncs, f"{label} at {where}")
        except DesyncTimeout as error:
            if self._watchdog is not None and "closed its connection" in str(error):
                self._watchdog.settle()  # name the rank that died, not just "a peer"
                error = channel.rebuild_timeout(error)
            self._fail_with_verdict(_watchdog.TIMEOUT, str(error), error, f"detected it at {label}")
        except DesyncError as error:  # a verdict another rank wrote while this one waited
            self._failure = error
            if self._watchdog is not None:
                self._watchdog.mark_raised()
            raise
        if all(torch.equal(row, rows[0]) for row in rows):
            return  # the common case: no store reads for the report
        divergence = describe_mismatch(
            rows,
            channel.global_ranks,
            self.slot_names,
            self._stage_label,
            channel.call_sites(),
        )
        if divergence is not None:
            self._fail_with_verdict(
                _watchdog.MISMATCH,
                f"esper_runtime: ranks are out of step at {label} (seen from rank "
                f"{channel.rank}); {divergence}",
                self_note=f"detected it at {label}",
            )

    def _fail_with_verdict(
        self,
        kind: str,
        message: str,
        cause: BaseException | None = None,
        self_note: str | None = None,
    ) -> NoReturn:
        if self._watchdog is None:
            error: DesyncError = (
                DesyncError(message) if kind == _watchdog.MISMATCH else DesyncTimeout(message)
            )
        else:
            table = self._watchdog.status_table(self_note)
            missing = cause.missing_ranks if isinstance(cause, DesyncTimeout) else ()
            call = cause.call if isinstance(cause, DesyncTimeout) else ""
            error = self._watchdog.post(
                kind, f"{message}\nWhere each rank is:\n{table}", missing, call
            )
            self._watchdog.mark_raised()
        self._failure = error
        if cause is not None:
            raise error from cause
        raise error

    def _adopt_source_state(self) -> None:
        channel = self._require_channel()
        if not self._wrapped:
            return
        local = self._read_states()
        state = local.clone()  # src sends its own; the others receive into it
        self.stats["collectives"] += 1
        label = f"step_epoch state broadcast #{self._syncs}"
        try:
            with _watchdog.translating("sync", label, self._last_where):
                channel.broadcast(state, self._syncs, label)
        except DesyncTimeout as error:
            self._fail_with_verdict(_watchdog.TIMEOUT, str(error), error)
        except DesyncError as error:
            self._failure = error
            if self._watchdog is not None:
                self._watchdog.mark_raised()
            raise
        if channel.rank == channel.src:
            return
        # Write only the slots that differ: in a healthy run the ranks ticked to the same state.
        changed = (state != local).any(dim=1).tolist()
        for wrapped, values, before, differs in zip(
            self._wrapped, state.tolist(), local.tolist(), changed, strict=True
        ):
            if differs and self._adapter.stage(wrapped.slot) is not None:
                self._adapter.write_state(wrapped.slot, values)
                self.stats["repairs"] += 1
                logger.warning(
                    "esper_runtime: rank %d repaired slot %r at sync #%d: state %s -> %s "
                    "(rank %d's values; alpha %r -> %r)",
                    channel.rank,
                    wrapped.name,
                    self._syncs,
                    _short(before),
                    _short(values),
                    channel.src,
                    before[0],
                    values[0],
                )

    def _read_states(self) -> torch.Tensor:
        """Every slot's state vector, one row per slot (float64)."""
        size = self._adapter.state_size
        values = [v for w in self._wrapped for v in self._adapter.read_state(w.slot)]
        return torch.tensor(values, dtype=torch.float64).view(len(self._wrapped), size)

    def _snapshots(self) -> list[SlotSnapshot]:
        snapshots = []
        for wrapped in self._wrapped:
            stage = self._adapter.stage(wrapped.slot)
            snapshots.append(
                SlotSnapshot(
                    wrapped.step_calls, wrapped.advance_calls, -1 if stage is None else stage
                )
            )
        return snapshots

    def _stage_label(self, slot_index: int, stage: int) -> str:
        return self._adapter.stage_label(self._wrapped[slot_index].slot, stage)

    def _require_channel(self) -> SideChannel:
        if self._channel is None:  # pragma: no cover - patched methods exist only when active
            raise RuntimeError("esper_runtime: no side channel on a no-op guard")
        return self._channel

    def _raise_if_failed(self) -> None:
        if self._failure is None and self._watchdog is not None:
            self._failure = self._watchdog.error
            if self._failure is not None:
                self._watchdog.mark_raised()
                raise self._failure
        if self._failure is not None:
            first_line = str(self._failure).splitlines()[0]
            raise DesyncError(
                "esper_runtime: this guard already failed and its side process group is "
                f"unusable; unwrap() it and restart the job. First failure: {first_line}"
            )


def _short(values: Sequence[float]) -> str:
    return "[" + ", ".join(f"{v:.6g}" for v in values) + "]"


# ---------------------------------------------------------------------- helpers


def _class_attribute(slot: Any, name: str) -> Any:
    """``name`` as the slot's class defines it, ignoring the instance's own attributes."""
    for klass in type(slot).__mro__:
        if name in klass.__dict__:
            return klass.__dict__[name]
    raise AttributeError(f"{type(slot).__name__} has no method {name!r}")


def _class_method(slot: Any, name: str) -> Callable[..., Any]:
    method: Callable[..., Any] = _class_attribute(slot, name).__get__(slot, type(slot))
    return method


def _is_patch(attribute: object) -> bool:
    return isinstance(attribute, MethodType) and bool(
        getattr(attribute.__func__, _PATCH_MARK, False)
    )


def _current_method(slot: Any, name: str, patch: Callable[..., Any]) -> Callable[..., Any]:
    """What ``slot.<name>`` means now, skipping ``patch`` itself (a stale or copied patch)."""
    attribute = slot.__dict__.get(name)
    if attribute is None or (isinstance(attribute, MethodType) and attribute.__func__ is patch):
        return _class_method(slot, name)
    current: Callable[..., Any] = attribute
    return current


def _refuse_foreign_attributes(named: Sequence[tuple[str, Any]]) -> None:
    """Refuse to shadow instance attributes that something else put on a slot.

    A patch of an earlier guard is not foreign: it is left on a ``deepcopy`` of a wrapped slot
    (or on a slot whose guard was collected) and only forwards calls, so it may be replaced.
    """
    for name, slot in named:
        own: dict[str, Any] = getattr(slot, "__dict__", {})
        for method in _PATCHED_METHODS:
            if method in own and not _is_patch(own[method]):
                raise ValueError(
                    f"slot {name!r} already has an instance attribute {method!r} "
                    "(patched by something else); esper_runtime will not shadow it"
                )


def _collect_slots(
    target: nn.Module | Iterable[Any], adapter: SlotAdapter
) -> list[tuple[str, Any]]:
    if isinstance(target, nn.Module):
        return [
            (name or "<root>", module)
            for name, module in target.named_modules()
            if adapter.is_slot(module)
        ]
    named: list[tuple[str, Any]] = []
    seen: set[int] = set()
    for index, slot in enumerate(target):
        if not adapter.is_slot(slot):
            raise TypeError(
                f"item {index} ({type(slot).__name__}) is not a slot for {type(adapter).__name__}"
            )
        if id(slot) in seen:
            continue
        seen.add(id(slot))
        named.append((f"slots[{index}]", slot))
    return named


def _seconds(timeout: float | timedelta) -> float:
    seconds = timeout.total_seconds() if isinstance(timeout, timedelta) else float(timeout)
    if not seconds > 0:
        raise ValueError(f"timeout must be positive, got {timeout!r}")
    return seconds


def _participating_ranks(group: dist.ProcessGroup | None) -> tuple[int, ...] | None:
    """Global ranks that must agree, or None when the guard is a no-op on this rank."""
    if not (dist.is_available() and dist.is_initialized()):
        return None
    if group is None:
        world = dist.get_world_size()
        return tuple(range(world)) if world > 1 else None
    if dist.get_rank(group) < 0:  # this rank is not a member of ``group``
        return None
    ranks = tuple(dist.get_process_group_ranks(group))
    return ranks if len(ranks) > 1 else None

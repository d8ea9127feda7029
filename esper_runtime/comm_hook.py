"""A DDP communication hook that checks the slots' state at every backward, at no extra collective.

``install_comm_hook(ddp_model, guard)`` registers a hook that appends a few check values to one
gradient bucket per backward (bucket 0, the first DDP all-reduces and, with DDP's default
bucket sizes, capped at 1 MiB) and lets the all-reduce DDP makes anyway carry them; DDP reads
the averaged gradients at their offsets and never sees them. From the reduced check values
every rank sees, at the same backward, whether all ranks agree on the
wrapped slots' fingerprint (alphas, controller fields, stages, call counters). When they do not,
every rank raises :class:`~esper_runtime.errors.DesyncError` at the end of that backward.

The check values (``CHECK_VALUES`` in all, for any number of slots):

- a pilot ``1`` on every rank, and a pilot ``1`` on rank 0 only (``0`` elsewhere). After the
  all-reduce their ratio is the number of ranks that contributed, whatever the hook's scaling
  (the stock hook divides by the world size before summing): it tells "this bucket was really
  reduced over every rank" apart from a hook that skipped communication;
- the 64 bits of a hash of this rank's fingerprint, one per element. Summed over ``n`` ranks,
  each bit comes back as ``0`` or ``n`` times the scale when all ranks agree, and as ``k`` times
  it (``0 < k < n``) when they do not: a mismatch is a bit whose ratio to the first pilot is at
  least ``1/n`` away from both 0 and 1. Small integers are exact in every float format DDP
  uses, so the test is exact for the stock hook and tolerant of rounding for scaling hooks.

This module deliberately does not use ``from __future__ import annotations``: DDP checks the
hook's annotations against the real ``GradBucket`` and ``Future[Tensor]`` objects.
"""

import hashlib
import logging
import math
import struct
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, cast

import torch
import torch.distributed as dist
from torch._C._distributed_c10d import GradBucket
from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook
from torch.futures import Future
from torch.nn.parallel import DistributedDataParallel

from .adapters import CONTROLLER_FIELDS, SeedSlotAdapter, SlotAdapter
from .errors import DesyncError
from .guard import SlotGuard

__all__ = ["CHECK_VALUES", "CommHook", "SlotCheckHook", "comm_check", "install_comm_hook"]

_LOG = logging.getLogger(__name__)

_HASH_BITS = 64
CHECK_VALUES = 2 + _HASH_BITS
"""How many values the hook appends to one bucket per backward."""

CommHook = Callable[[Any, GradBucket], Future[torch.Tensor]]
"""The type of a DDP communication hook: ``hook(state, bucket) -> Future[Tensor]``."""

# Hooks whose communication does not carry a bucket's buffer elementwise: PowerSGD all-reduces
# low-rank factors of per-parameter matrices (``bucket.gradients()``), so the check values
# appended to the buffer never reach the other ranks.
_INCOMPATIBLE_HOOKS = {
    "powerSGD_hook": "PowerSGD compresses per-parameter gradients into low-rank factors",
    "batched_powerSGD_hook": "batched PowerSGD compresses the bucket into low-rank factors",
}


@dataclass
class _Reduction:
    """One checked backward: its number, this rank's fingerprint, where the check values are."""

    number: int
    fingerprint: list[float]
    size: int  # of the real buffer: the check values follow it in the hook's result
    # What the stock arithmetic returns when every rank has this fingerprint, if known.
    agreed: torch.Tensor | None = None


@dataclass(frozen=True)
class _Tail:
    """One fingerprint's check values: as appended, divided, and summed over agreeing ranks."""

    values: torch.Tensor
    divided: torch.Tensor  # by the world size, as the stock hook divides before summing
    agreed: torch.Tensor  # the sum of every rank's ``divided`` when all ranks agree


@dataclass
class _Extended:
    """A buffer reused across backwards: bucket 0's gradients, then the check values (views)."""

    whole: torch.Tensor
    gradients: torch.Tensor
    checks: torch.Tensor
    reduction: dist.Work | None = None  # the last all-reduce of ``whole``

    @classmethod
    def like(cls, buffer: torch.Tensor) -> "_Extended":
        size = buffer.numel()
        whole = buffer.new_empty(size + CHECK_VALUES)
        return cls(whole, whole[:size], whole[size:])


@dataclass
class _Launched:
    """One bucket's all-reduce, launched; DDP holds ``future``, set when the last bucket is."""

    work: dist.Work
    future: Future[torch.Tensor]
    result: torch.Tensor


@dataclass
class SlotCheckHook:
    """The state of the hook registered by :func:`install_comm_hook` (returned to the caller).

    ``checks`` counts the backwards whose check values came back reduced over every rank;
    ``skipped`` counts those where the wrapped hook did not reduce the bucket over every rank
    (e.g. a local-SGD hook after its warm-up), so nothing could be compared.
    """

    guard: SlotGuard
    process_group: dist.ProcessGroup
    world_size: int
    rank: int
    inner_hook: CommHook
    inner_state: Any
    # No user hook: bucket 0 gets allreduce_hook's arithmetic from run() itself (other buckets,
    # and every bucket while the guard is inactive, go to inner_hook, the stock allreduce_hook).
    default_allreduce: bool = False
    checks: int = 0
    skipped: int = 0
    _backwards: int = 0
    _tail_cache: dict[tuple[bytes, torch.dtype, Any], _Tail] = field(default_factory=dict)
    _extended: dict[tuple[int, torch.dtype, Any], _Extended] = field(default_factory=dict)
    # The default path's buckets of the backward in progress, and bucket 0's check, if any.
    _launched: list[_Launched] = field(default_factory=list)
    _check: tuple[_Reduction, torch.Tensor] | None = None  # (the check, its values' view)
    # With a user hook, bucket 0's check in join()'s shadow, decided at the shadow's last bucket.
    _shadowed: tuple[Future[torch.Tensor], _Reduction] | None = None

    def __repr__(self) -> str:
        hook = getattr(self.inner_hook, "__qualname__", repr(self.inner_hook))
        return f"<SlotCheckHook around {hook}, {self.checks} check(s), {self.skipped} skipped>"

    # ------------------------------------------------------------------ per bucket

    def run(self, bucket: GradBucket) -> Future[torch.Tensor]:
        if self.default_allreduce:
            return self._run_allreduce(bucket)
        if bucket.index() == 0:
            self._shadowed = None  # a shadow abandoned midway
        # Bucket 0: one per backward, and the small one (DDP caps the first bucket at 1 MiB by
        # default; the last bucket may hold 25 MiB, and the check values go into a copy of it).
        if bucket.index() != 0 or not self.guard.active:
            result = self.inner_hook(self.inner_state, bucket)
            if bucket.is_last() and self._shadowed is not None:
                self._decide_shadowed()
            return result
        self._backwards += 1
        buffer = bucket.buffer()
        values = _fingerprint_values(self.guard)
        tail = self._tails(values, buffer.dtype, buffer.device).values
        # DDP takes the result as is: it reads each gradient as a view at its offset, so the
        # check values after the last gradient need no stripping.
        extended = _ExtendedBucket(bucket, torch.cat([buffer, tail]))
        future = self.inner_hook(self.inner_state, cast(GradBucket, extended))
        reduction = _Reduction(self._backwards, values, buffer.numel())
        try:
            torch.autograd.Variable._execution_engine.queue_callback(
                partial(self._verdict, future, reduction)
            )
        except RuntimeError:
            # Not inside a backward: DDP's join() shadows a backward's all-reduces through the
            # hook, launching every bucket's before waiting for any. Decide at the last one, so
            # that a mismatch is raised from the hook and reaches join()'s caller as our error,
            # and the table's gather follows every all-reduce, as on the ranks still training.
            self._shadowed = (future, reduction)
            if bucket.is_last():
                self._decide_shadowed()
        return future

    def _decide_shadowed(self) -> None:
        """Check bucket 0's values in join()'s shadow; a mismatch is raised with the table."""
        assert self._shadowed is not None
        (future, reduction), self._shadowed = self._shadowed, None
        if self._agreement(reduction, future.wait()[reduction.size :]) is False:
            raise self._desync(reduction, self._gather_rows(reduction)) from None

    # ------------------------------------------------------------------ no user hook

    def _run_allreduce(self, bucket: GradBucket) -> Future[torch.Tensor]:
        """``allreduce_hook``'s work, bucket 0 carrying the check values, settled at the end.

        The same arithmetic as the stock hook (divide by the world size, then sum), so the
        gradients are bitwise its own, but without what makes any Python hook slower than DDP's
        C++ all-reduce: a Python callback per bucket on the backend's thread (``Future.then``)
        and one queued at the end of the backward. Each bucket's all-reduce is launched on the
        process group at once, as DDP would, and DDP gets a plain future; the last bucket's call
        waits for all of them (DDP would wait for them right after it, in the same thread),
        checks bucket 0's values and sets the futures. So the all-reduces still overlap the rest
        of the backward, and the check costs no callback unless it finds a mismatch.
        """
        first = bucket.index() == 0
        if first:
            # DDP launches buckets in order; a backward abandoned midway left these unsettled.
            self._launched.clear()
            self._check = None
        buffer = bucket.buffer()
        extended = self._checked(buffer) if first and self.guard.active else None
        tensor = buffer.div_(self.world_size) if extended is None else extended.whole
        work = self.process_group.allreduce([tensor])
        if extended is not None:
            extended.reduction = work
        future: Future[torch.Tensor] = Future()
        self._launched.append(_Launched(work, future, tensor))
        if bucket.is_last():
            self._settle()
        return future

    def _checked(self, buffer: torch.Tensor) -> _Extended:
        """Bucket 0's gradients divided into a reused buffer, followed by the check values.

        The check values come divided once, when their cache entry is made; DDP copies the
        gradients out of the result before the next backward, so the buffer can be reused.
        """
        self._backwards += 1
        values = _fingerprint_values(self.guard)
        tail = self._tails(values, buffer.dtype, buffer.device)
        extended = self._extended_like(buffer)
        torch.div(buffer, self.world_size, out=extended.gradients)
        extended.checks.copy_(tail.divided)
        reduction = _Reduction(self._backwards, values, buffer.numel(), tail.agreed)
        self._check = (reduction, extended.checks)
        return extended

    def _settle(self) -> None:
        """Wait for this backward's all-reduces, check bucket 0's values, complete DDP's futures.

        A failure is raised from this call, the last bucket's hook, not set on a future: a
        ``Future.set_exception`` is seen only from Python, and DDP's reducer (C++) would read the
        exception object as the bucket's gradients. An exception raised by the hook reaches
        DDP's caller as it is: ``backward()``, or ``join()``, whose shadow of a backward waits on
        these futures and would otherwise carry on past a mismatch.
        """
        launched, self._launched = self._launched, []
        check, self._check = self._check, None
        failure: DesyncError | None = None
        try:
            for each in launched:
                each.work.wait()
            if check is not None and self._agreement(*check) is False:
                failure = self._report_mismatch(check[0])
        finally:
            # Set even on an error, so that no future is left pending; nobody reads them then.
            for each in launched:
                each.future.set_result(each.result)
        if failure is not None:
            raise failure

    def _report_mismatch(self, reduction: _Reduction) -> DesyncError | None:
        """Queue the report behind DDP's end of backward; outside a backward, the error itself."""
        try:
            torch.autograd.Variable._execution_engine.queue_callback(
                partial(self._report, reduction)
            )
        except RuntimeError:
            # Not inside a backward (DDP's join() shadows a backward's all-reduces through the
            # hook): the last bucket's hook raises our error. Every all-reduce of the shadow is
            # done, so the table's gather meets the training ranks' own, after their backward.
            return self._desync(reduction, self._gather_rows(reduction))
        return None

    def _extended_like(self, buffer: torch.Tensor) -> _Extended:
        key = (buffer.numel(), buffer.dtype, buffer.device)
        extended = self._extended.get(key)
        # DDP finishes a backward's all-reduces before the next one starts; should the last one
        # still be in flight anyway (a backward abandoned midway), write somewhere else.
        if extended is None or not (
            extended.reduction is None or extended.reduction.is_completed()
        ):
            if len(self._extended) > 4:  # DDP rebuilds its buckets once, after the first backward
                self._extended.clear()
            extended = self._extended[key] = _Extended.like(buffer)
        return extended

    def check_values(self, dtype: torch.dtype, device: Any) -> tuple[torch.Tensor, list[float]]:
        """The ``CHECK_VALUES`` this rank appends now, and the fingerprint they hash."""
        values = _fingerprint_values(self.guard)
        return self._tails(values, dtype, device).values, values

    def _tails(self, values: list[float], dtype: torch.dtype, device: Any) -> _Tail:
        """The check values for this fingerprint (see :class:`_Tail`)."""
        # Keyed by the fingerprint itself: a backward whose slots did not change since the last
        # one (nearly all of them) packs the floats and finds its tensor, with no hash to run.
        key = (struct.pack(f"<{len(values)}d", *values), dtype, device)
        cached = self._tail_cache.get(key)
        if cached is None:
            if len(self._tail_cache) > 16:  # alphas move every epoch: keep the cache small
                self._tail_cache.clear()
            cached = self._tail_cache[key] = self._new_tail(key[0], dtype, device)
        return cached

    def _new_tail(self, fingerprint: bytes, dtype: torch.dtype, device: Any) -> _Tail:
        digest = hashlib.blake2b(fingerprint, digest_size=8).digest()
        value = int.from_bytes(digest, "little")
        bits = [float((value >> bit) & 1) for bit in range(_HASH_BITS)]
        values = torch.tensor([1.0, float(self.rank == 0), *bits], dtype=dtype, device=device)
        divided = values / self.world_size
        # Every rank's share, as in the all-reduce's sum; the rank-0 pilot is rank 0's alone.
        share = divided.clone()
        share[1] = 0.0
        agreed = share.clone()
        for _ in range(self.world_size - 1):
            agreed += share
        agreed[1] = (torch.ones((), dtype=dtype, device=device) / self.world_size).item()
        return _Tail(values, divided, agreed)

    # ------------------------------------------------------------------ the verdict

    def _verdict(self, future: Future[torch.Tensor], reduction: _Reduction) -> None:
        if self._agreement(reduction, future.wait()[reduction.size :]) is False:
            self._report(reduction)

    def _report(self, reduction: _Reduction) -> None:
        """Gather every rank's table, then raise once DDP has finished its backward."""
        error = self._desync(reduction, self._gather_rows(reduction))

        def fail() -> None:
            raise error

        # This runs in a callback queued before DDP's own end-of-backward callback (which DDP
        # queues once every bucket is launched); raising here would leave DDP's reducer
        # half-finalised.
        # Raise from a callback queued behind it: final callbacks may queue final callbacks.
        torch.autograd.Variable._execution_engine.queue_callback(fail)

    def _agreement(self, reduction: _Reduction, checks: torch.Tensor) -> bool | None:
        """True/False: all ranks agree or not; None: the values were not reduced over every rank.

        ``checks``: the reduced check values. When they equal ``reduction.agreed`` exactly (the
        stock arithmetic, a world size whose sums round the same in any order), one comparison
        decides; otherwise plain Python on 66 floats, cheaper than a dozen tiny tensor operations.
        """
        if reduction.agreed is not None and torch.equal(checks, reduction.agreed):
            # Each bit sums to k / n for the k ranks that set it: equal to the agreed sum only
            # if k is 0 or n, so every rank hashed the same fingerprint.
            self.checks += 1
            return True
        values: list[float] = checks.tolist()
        everyone, rank0 = values[0], values[1]
        reduced = len(values) == CHECK_VALUES and rank0 != 0 and all(map(math.isfinite, values))
        if not (reduced and abs(everyone / rank0 - self.world_size) < 0.5):
            self.skipped += 1
            if self.skipped == 1:
                _LOG.warning(
                    "esper_runtime: the DDP comm hook %s did not all-reduce the checked bucket "
                    "over all %d ranks at backward #%d, so the slot check was skipped; it is "
                    "skipped (without another warning) whenever that happens",
                    getattr(self.inner_hook, "__qualname__", self.inner_hook),
                    self.world_size,
                    reduction.number,
                )
            return None
        self.checks += 1
        bits = values[2:]
        if set(bits) <= {0.0, everyone}:  # exact sums: the stock hook at 2 ranks, say
            return True
        tolerance = 0.5 / self.world_size
        return all(abs(r - round(r)) < tolerance for r in (v / everyone for v in bits))

    def _gather_rows(self, reduction: _Reduction) -> list[dict[str, Any]] | None:
        """Every rank's readable slot state. Every rank calls it: they all saw the mismatch."""
        rows: list[object] = [None] * self.world_size
        mine = {
            "rank": self.rank,
            **slot_report(self.guard),
            "raw": reduction.fingerprint,
        }
        try:
            dist.all_gather_object(rows, mine, group=self.process_group)
        except Exception as error:  # noqa: BLE001 - the message is still worth raising
            _LOG.warning("esper_runtime: could not gather the per-rank slot table: %s", error)
            return None
        return [row for row in rows if isinstance(row, dict)]

    def _desync(self, reduction: _Reduction, rows: list[dict[str, Any]] | None) -> DesyncError:
        header = (
            f"the wrapped slots' state differs between ranks at backward "
            f"#{reduction.number} (found by the DDP comm hook, seen from rank {self.rank})"
        )
        body = describe_rows(rows) if rows is not None else _describe_local(self.guard)
        advice = (
            "Something changed slot state on some ranks only since the previous backward "
            "(set_alpha, step_epoch or advance_stage called under a rank condition, or state "
            "loaded on one rank). Make every rank make the same slot calls."
        )
        if reduction.number > 1:
            advice += f" The check at backward #{reduction.number - 1} passed."

        reason = f"{header}; {body}\n{advice}"
        raise_desync = getattr(self.guard, "raise_desync", None)
        if callable(raise_desync):  # the guard records the verdict: later guarded calls refuse
            try:
                raise_desync(reason)  # it adds its own "esper_runtime: ..." prefix
            except DesyncError as error:
                return error
        return DesyncError(f"esper_runtime: {reason}")


class _ExtendedBucket:
    """A ``GradBucket`` whose ``buffer()`` is the real buffer followed by the check values.

    The wrapped hook sees this object; everything but the buffer comes from the real bucket.
    """

    def __init__(self, bucket: GradBucket, buffer: torch.Tensor) -> None:
        self._bucket = bucket
        self._buffer = buffer

    def buffer(self) -> torch.Tensor:
        return self._buffer

    def set_buffer(self, buffer: torch.Tensor) -> None:
        self._buffer = buffer

    def index(self) -> int:
        index: int = self._bucket.index()
        return index

    def is_last(self) -> bool:
        last: bool = self._bucket.is_last()
        return last

    def gradients(self) -> list[torch.Tensor]:
        gradients: list[torch.Tensor] = self._bucket.gradients()
        return gradients

    def parameters(self) -> list[torch.Tensor]:
        parameters: list[torch.Tensor] = self._bucket.parameters()
        return parameters


def esper_slot_check_hook(
    state: SlotCheckHook, bucket: GradBucket
) -> torch.futures.Future[torch.Tensor]:
    """The function registered with DDP; ``state`` is the :class:`SlotCheckHook`."""
    return state.run(bucket)


def install_comm_hook(
    ddp_model: DistributedDataParallel,
    guard: SlotGuard,
    *,
    hook: CommHook | None = None,
    state: Any = None,
) -> SlotCheckHook:
    """Check ``guard``'s slots across ranks at every backward of ``ddp_model``, in its all-reduce.

    Registers a DDP communication hook (DDP allows one per model, registered before the first
    backward). ``hook``/``state`` are your own comm hook and its state, if you have one: do not
    register it yourself, pass it here and it is wrapped (default: the stock
    ``allreduce_hook`` on the model's process group, whose arithmetic the hook then does itself
    for the checked bucket, at less cost). The wrapped hook must all-reduce
    ``bucket.buffer()`` elementwise (allreduce, fp16/bf16 compression, scaling hooks do);
    PowerSGD is refused. Call it on every rank. While the guard is inactive (one rank, or after
    ``unwrap()``) the hook only runs the wrapped hook.
    """
    if not isinstance(ddp_model, DistributedDataParallel):
        raise TypeError(
            f"install_comm_hook() needs a DistributedDataParallel model, got "
            f"{type(ddp_model).__name__}"
        )
    inner: CommHook = hook if hook is not None else allreduce_hook
    name = getattr(inner, "__name__", "")
    if name in _INCOMPATIBLE_HOOKS:
        raise ValueError(
            f"esper_runtime cannot check slots inside {name}: {_INCOMPATIBLE_HOOKS[name]}, so "
            "the check values appended to the bucket never reach the other ranks. Use "
            "guard.step_epoch() syncs alone with this hook, or an elementwise hook "
            "(allreduce_hook, fp16_compress_hook)."
        )
    if getattr(ddp_model, "_comm_hooks", None):
        registered = [getattr(h, "__qualname__", repr(h)) for h, _ in ddp_model._comm_hooks]
        raise ValueError(
            f"this DDP model already has a comm hook ({', '.join(registered)}) and DDP allows "
            "only one. Build a fresh DDP model and pass your hook to install_comm_hook(ddp, "
            "guard, hook=your_hook, state=your_state): esper_runtime wraps it."
        )
    process_group = ddp_model.process_group
    check = SlotCheckHook(
        guard=guard,
        process_group=process_group,
        world_size=dist.get_world_size(process_group),
        rank=dist.get_rank(process_group),
        inner_hook=inner,
        inner_state=state if hook is not None else process_group,
        default_allreduce=hook is None,
    )
    # Registered even for an inactive guard, so a wrapped user hook still runs: run() passes
    # every bucket straight to it while the guard is inactive (or after unwrap()).
    ddp_model.register_comm_hook(check, esper_slot_check_hook)
    _checks[guard] = check
    return check


_checks: weakref.WeakKeyDictionary[SlotGuard, SlotCheckHook] = weakref.WeakKeyDictionary()


def comm_check(guard: SlotGuard) -> SlotCheckHook | None:
    """The hook state that the last ``install_comm_hook`` for ``guard`` registered, if any."""
    return _checks.get(guard)


# ---------------------------------------------------------------------- fingerprints and tables


def _adapter_of(guard: SlotGuard) -> SlotAdapter:
    # Not isinstance(..., SlotAdapter): a runtime-checkable Protocol check costs about 0.1 ms,
    # and this runs at every backward.
    adapter: SlotAdapter | None = getattr(guard, "_adapter", None)
    return adapter if adapter is not None else SeedSlotAdapter()


def slot_fingerprint(guard: SlotGuard) -> torch.Tensor:
    """The guard's fingerprint (``guard.fingerprint()``), or one built here from its slots.

    The fallback holds, per slot, its stage (-1 when empty) and the adapter's state vector.
    """
    own = getattr(guard, "fingerprint", None)
    if callable(own):
        fingerprint = own()
        if isinstance(fingerprint, torch.Tensor):
            return fingerprint.detach().to("cpu", torch.float64).contiguous()
    return torch.tensor(_fallback_values(guard), dtype=torch.float64)


def _fingerprint_values(guard: SlotGuard) -> list[float]:
    """:func:`slot_fingerprint` as plain floats: this runs once per backward, on the critical path.

    ``SlotGuard.fingerprint_values()`` builds no tensor; other guards go through the tensor.
    """
    own = getattr(guard, "fingerprint_values", None)
    if callable(own):
        values: list[float] = own()
        return values
    as_list: list[float] = slot_fingerprint(guard).tolist()
    return as_list


def _fallback_values(guard: SlotGuard) -> list[float]:
    adapter = _adapter_of(guard)
    values: list[float] = []
    for slot in guard.slots:
        stage = adapter.stage(slot)
        values.append(-1.0 if stage is None else float(stage))
        values.extend(adapter.read_state(slot))
    return values


def _field_names(adapter: SlotAdapter) -> list[str]:
    if isinstance(adapter, SeedSlotAdapter):
        return ["state.alpha", *CONTROLLER_FIELDS]
    return [f"value[{index}]" for index in range(adapter.state_size)]


def slot_report(guard: SlotGuard) -> dict[str, Any]:
    """This rank's slots as readable ``{name: {field: value}}`` (stage label included)."""
    adapter = _adapter_of(guard)
    names = _field_names(adapter)
    slots: dict[str, dict[str, object]] = {}
    for name, slot in zip(guard.slot_names, guard.slots, strict=True):
        stage = adapter.stage(slot)
        fields: dict[str, object] = {
            "stage": "empty" if stage is None else adapter.stage_label(slot, stage)
        }
        fields.update(zip(names, (float(v) for v in adapter.read_state(slot)), strict=True))
        slots[name] = fields
    return {"slots": slots}


def describe_rows(rows: Sequence[dict[str, Any]]) -> str:
    """The slot fields that differ between ranks, as a table, first divergence first."""
    ranks = [int(row["rank"]) for row in rows]
    differing: list[tuple[str, str, list[object]]] = []
    names: list[str] = []
    for row in rows:
        names.extend(n for n in row["slots"] if n not in names)
    for name in names:
        fields: list[str] = []
        for row in rows:
            fields.extend(f for f in row["slots"].get(name, {}) if f not in fields)
        for field_name in fields:
            values = [row["slots"].get(name, {}).get(field_name, "-") for row in rows]
            if any(value != values[0] for value in values):
                differing.append((name, field_name, values))
    if not differing:
        raws = [row["raw"] for row in rows]
        per_rank = ", ".join(f"rank {r}: {raw}" for r, raw in zip(ranks, raws, strict=True))
        return (
            "the slots' readable fields agree, so the difference is in the guard's own "
            f"fingerprint (call counters): {per_rank}"
        )
    first_name, first_field, first_values = differing[0]
    summary = ", ".join(f"rank {r} has {v!r}" for r, v in zip(ranks, first_values, strict=True))
    header = ["slot", "field", *(f"rank {r}" for r in ranks)]
    table = [header] + [[n, f, *(repr(v) for v in vs)] for n, f, vs in differing]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    lines = [
        "  " + "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in table
    ]
    return f"first divergence: slot {first_name!r}, {first_field}: {summary}\n" + "\n".join(lines)


def _describe_local(guard: SlotGuard) -> str:
    report = slot_report(guard)["slots"]
    alphas = ", ".join(
        f"{name}={fields.get('state.alpha', '?')}" for name, fields in report.items()
    )
    return f"this rank's slots: {alphas}"

"""The wire protocol of the guard: a fingerprint all_gather and a state broadcast.

Everything runs on a dedicated gloo process group (the "side group") with CPU tensors, so it
works whatever the default backend is, and its timeout is the guard's timeout, not the
30-minute gloo default. Nothing here pickles.

Before every collective a rank writes a progress marker (``<seq>:<call>``) to the default
store. When a collective fails, the marker of every rank says which ranks never arrived, so
every waiting rank (not only rank 0, as with ``monitored_barrier``) can name them, and it keeps
working when the side group is already broken.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from enum import IntEnum

import torch
import torch.distributed as dist
from torch._C._distributed_c10d import Store

from .errors import DesyncError, DesyncTimeout

MAGIC = 0x45535052  # "ESPR"
# magic, call kind, sync number, slot count, hash of slot names, triggering slot (-1: the guard)
HEADER_SIZE = 6
SLOT_FIELDS = 4  # step_epoch calls, advance_stage calls, stage (-1 when empty), has seed
GUARD_TRIGGER = -1  # the sync was started by guard.step_epoch() or a batched() block


class CallKind(IntEnum):
    HANDSHAKE = 1
    STEP_EPOCH = 2
    ADVANCE_STAGE = 3


@dataclass(frozen=True)
class SlotSnapshot:
    step_calls: int
    advance_calls: int
    stage: int  # -1 when the slot holds no seed

    @property
    def has_seed(self) -> bool:
        return self.stage >= 0


def names_hash(names: Sequence[str]) -> int:
    """A process-independent 63-bit hash (Python's ``hash`` is salted per process)."""
    digest = hashlib.blake2b("\n".join(names).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)


def encode_fingerprint(
    kind: CallKind,
    sync_number: int,
    name_hash: int,
    slots: Sequence[SlotSnapshot],
    trigger: int = GUARD_TRIGGER,
) -> torch.Tensor:
    values = [MAGIC, int(kind), sync_number, len(slots), name_hash, trigger]
    for slot in slots:
        values += [slot.step_calls, slot.advance_calls, slot.stage, int(slot.has_seed)]
    return torch.tensor(values, dtype=torch.int64)


@dataclass(frozen=True)
class DecodedFingerprint:
    kind: int
    sync_number: int
    slot_count: int
    name_hash: int
    trigger: int
    slots: tuple[SlotSnapshot, ...]


def decode_fingerprint(row: torch.Tensor) -> DecodedFingerprint:
    values = [int(v) for v in row.tolist()]
    body = values[HEADER_SIZE:]
    slots = tuple(
        SlotSnapshot(body[i], body[i + 1], body[i + 2]) for i in range(0, len(body), SLOT_FIELDS)
    )
    return DecodedFingerprint(values[1], values[2], values[3], values[4], values[5], slots)


def call_label(kind: int, trigger: int, slot_names: Sequence[str]) -> str:
    """What a rank was doing when it sent a fingerprint, e.g. ``slots[0].advance_stage()``."""
    slot = slot_names[trigger] if 0 <= trigger < len(slot_names) else None
    if kind == CallKind.ADVANCE_STAGE:
        return f"{slot or '?'}.advance_stage()"
    if kind == CallKind.STEP_EPOCH:
        return f"{slot}.step_epoch()" if slot else "guard.step_epoch()/batched()"
    if kind == CallKind.HANDSHAKE:
        return "wrap_slots()"
    return f"call kind {kind}"


# --------------------------------------------------------------------------- divergence report


def describe_divergence(
    rows: Sequence[DecodedFingerprint],
    ranks: Sequence[int],
    slot_names: Sequence[str],
    stage_label: Callable[[int, int], str],
    call_sites: dict[int, str] | None = None,
) -> str | None:
    """Explain the first difference between the ranks' fingerprints, or None if they agree.

    ``stage_label(slot_index, stage)`` names a stage. The report says which call each rank is
    in when those differ, then the first slot (in wrap order) whose counts, seed or stage
    differ, then a per-rank table for that slot.
    """
    if all(row == rows[0] for row in rows):
        return None
    pairs = list(zip(ranks, rows, strict=True))
    parts = []
    calls = {(row.kind, row.trigger) for row in rows}
    sites = call_sites or {}
    slot_index: int | None = None
    if len(calls) > 1:
        doing = ", ".join(
            f"rank {r} is in {sites.get(r) or call_label(row.kind, row.trigger, slot_names)}"
            for r, row in pairs
        )
        parts.append(f"the ranks are in different guarded calls ({doing})")
        # Name the slot whose own call started a sync on some rank (an extra or missing call
        # of that slot), not the first slot whose counts differ: ranks that ticked every slot
        # differ from it on the other slots too.
        slot_index = _culprit_slot(rows)
        if slot_index is not None:
            reason = _slot_difference([row.slots[slot_index] for row in rows], ranks)
            name = _slot_name(slot_names, slot_index)
            starters = [row for row in rows if row.trigger == slot_index]
            starter_ranks = [r for r, row in pairs if row.trigger == slot_index]
            started = call_label(starters[0].kind, slot_index, slot_names)
            parts.append(
                f"at slot {name!r}: rank(s) {starter_ranks} synced from {started} "
                "(an extra, early or missing call of that slot)" + (f"; {reason}" if reason else "")
            )
    culprit = slot_index
    for index in range(min(len(row.slots) for row in rows)):
        if index == culprit:
            continue
        reason = _slot_difference([row.slots[index] for row in rows], ranks)
        if reason is not None:
            slot_index = index if culprit is None else culprit
            parts.append(f"at slot {_slot_name(slot_names, index)!r}: {reason}")
            break
    if not parts:
        numbers = ", ".join(f"rank {r}: #{row.sync_number}" for r, row in pairs)
        parts.append(
            f"the ranks made different numbers of guarded syncs ({numbers}); one rank "
            "batched step_epoch calls that another synced one by one"
        )
    if slot_index is None and slot_names:
        slot_index = 0
    table = _table(rows, ranks, slot_index, slot_names, stage_label)
    return "first divergence: " + "; ".join(parts) + "\n" + table


def describe_mismatch(
    rows: Sequence[torch.Tensor],
    ranks: Sequence[int],
    slot_names: Sequence[str],
    stage_label: Callable[[int, int], str],
    call_sites: dict[int, str] | None = None,
) -> str | None:
    """Like :func:`describe_divergence` on raw fingerprints: None only when they are identical.

    Rows can differ in fields the decoded form drops (the magic, the has-seed flag): that is
    still a desync (a foreign or corrupt fingerprint), reported with the raw rows.
    """
    if all(torch.equal(row, rows[0]) for row in rows):
        return None
    divergence = describe_divergence(
        [decode_fingerprint(row) for row in rows], ranks, slot_names, stage_label, call_sites
    )
    if divergence is not None:
        return divergence
    raw = "\n".join(f"rank {r}: {row.tolist()}" for r, row in zip(ranks, rows, strict=True))
    return (
        "first divergence: the raw fingerprints differ in a field that is not a call count, "
        "stage or slot (a foreign or corrupt fingerprint; is every rank running the same "
        f"esper_runtime version?)\n{raw}"
    )


def _culprit_slot(rows: Sequence[DecodedFingerprint]) -> int | None:
    triggers = {row.trigger for row in rows if row.trigger >= 0}
    shortest = min(len(row.slots) for row in rows)
    for trigger in sorted(triggers):
        if trigger < shortest:
            return trigger
    return None


def _slot_name(slot_names: Sequence[str], index: int) -> str:
    return slot_names[index] if index < len(slot_names) else f"#{index}"


def _slot_difference(snapshots: Sequence[SlotSnapshot], ranks: Sequence[int]) -> str | None:
    checks: tuple[tuple[str, Callable[[SlotSnapshot], object]], ...] = (
        ("step_epoch() call counts differ", lambda s: s.step_calls),
        ("advance_stage() call counts differ", lambda s: s.advance_calls),
        ("has-seed differs", lambda s: s.has_seed),
        ("stages differ", lambda s: s.stage),
    )
    for reason, key in checks:
        values = [key(s) for s in snapshots]
        if len(set(values)) > 1:
            shown = ", ".join(f"rank {r}: {v}" for r, v in zip(ranks, values, strict=True))
            return f"{reason} ({shown})"
    return None


def _table(
    rows: Sequence[DecodedFingerprint],
    ranks: Sequence[int],
    slot_index: int | None,
    slot_names: Sequence[str],
    stage_label: Callable[[int, int], str],
) -> str:
    header = ("rank", "sync", "in call", "slot", "step_epoch #", "advance_stage #", "stage")
    lines = [header]
    for rank, row in zip(ranks, rows, strict=True):
        prefix = (str(rank), f"#{row.sync_number}", call_label(row.kind, row.trigger, slot_names))
        if slot_index is None or slot_index >= len(row.slots):
            lines.append((*prefix, "-", "-", "-", "-"))
            continue
        slot = row.slots[slot_index]
        stage = stage_label(slot_index, slot.stage) if slot.has_seed else "empty"
        name = _slot_name(slot_names, slot_index)
        lines.append((*prefix, name, str(slot.step_calls), str(slot.advance_calls), stage))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


# --------------------------------------------------------------------------- the side channel


class SideChannel:
    """Collectives on the side group, turning failures into ``DesyncTimeout``."""

    def __init__(
        self,
        group: dist.ProcessGroup,
        global_ranks: Sequence[int],
        src: int,
        timeout: float,
        store: Store | None,
        key_prefix: str,
    ) -> None:
        self.group = group
        self.global_ranks = tuple(global_ranks)
        self.rank = dist.get_rank()
        self.src = src
        self.timeout = timeout
        self._store = store
        self._key_prefix = key_prefix
        self._last_failure: tuple[int, str, RuntimeError, float] | None = None
        # Set by the guard: what the watchdog knows of a rank ("finished after sync #3", ...).
        self.describe_rank: Callable[[int], str | None] | None = None

    def all_gather(self, tensor: torch.Tensor, sync: int, call: str) -> list[torch.Tensor]:
        """Gather ``tensor`` from every rank for guarded sync number ``sync``."""
        gathered = [torch.empty_like(tensor) for _ in self.global_ranks]
        self._mark(sync, call)
        self._run(lambda: dist.all_gather(gathered, tensor, group=self.group), sync, call)
        return gathered

    def broadcast(self, tensor: torch.Tensor, sync: int, call: str) -> None:
        """Broadcast from src; it follows the all_gather of the same sync (already marked)."""
        self._run(lambda: dist.broadcast(tensor, src=self.src, group=self.group), sync, call)

    def _run(self, collective: Callable[[], object], sync: int, call: str) -> None:
        started = time.monotonic()
        try:
            collective()
        except RuntimeError as error:  # DistBackendError and gloo errors are RuntimeErrors
            self._last_failure = (sync, call, error, time.monotonic() - started)
            raise self._timeout_error(*self._last_failure) from error

    def rebuild_timeout(self, fallback: DesyncTimeout) -> DesyncTimeout:
        """The last failure's message again, with what is known of the ranks now."""
        if self._last_failure is None:
            return fallback
        return self._timeout_error(*self._last_failure)

    def _mark(self, sync: int, call: str) -> None:
        # One store write per sync: the progress marker that names absent ranks on failure.
        if self._store is None:
            return
        try:
            self._store.set(self._marker_key(self.rank), f"{sync}:{call}")
        except RuntimeError:  # a dead store host; the collective itself will report the failure
            self._store = None

    def _marker_key(self, rank: int) -> str:
        return f"{self._key_prefix}/at/{rank}"

    @property
    def key_prefix(self) -> str:
        return self._key_prefix

    def watchdog_store(self) -> Store | None:
        """A second connection to the store for the watchdog thread (no lock contention)."""
        if self._store is None:
            return None
        try:
            clone: Store = self._store.clone()  # type: ignore[attr-defined]
        except (RuntimeError, AttributeError):  # a store without clone(): share this one
            return self._store
        return clone

    def call_sites(self) -> dict[int, str]:
        """Each rank's last guarded call with the user's file:line, from the store markers."""
        seen = self._last_seen() or {}
        return {rank: call for rank, (_, call) in seen.items()}

    def close(self) -> None:
        """Destroy the side group; local and quick, even when the group is broken."""
        try:
            dist.destroy_process_group(self.group)
        except (RuntimeError, ValueError):  # already gone with the default group
            pass

    def _last_seen(self) -> dict[int, tuple[int, str]] | None:
        if self._store is None:
            return None
        seen: dict[int, tuple[int, str]] = {}
        try:
            for rank in self.global_ranks:
                key = self._marker_key(rank)
                if not self._store.check([key]):  # get() would block for the store timeout
                    seen[rank] = (-1, "nothing yet")
                    continue
                number, _, call = self._store.get(key).decode().partition(":")
                seen[rank] = (int(number), call)
        except (RuntimeError, ValueError):  # store gone with its host rank, or a stray value
            return None
        return seen

    def _known_state(self, rank: int) -> str | None:
        if self.describe_rank is None:
            return None
        try:
            return self.describe_rank(rank)
        except Exception:  # noqa: BLE001 - a description must never mask the timeout itself
            return None

    def _timeout_error(
        self, sync: int, call: str, error: RuntimeError, waited: float
    ) -> DesyncTimeout:
        text = str(error)
        if "Connection closed" in text or "Connection reset" in text or "closure" in text:
            what = "a peer closed its connection (a rank crashed, exited or hit an earlier error)"
        else:
            what = f"it did not complete within the {self.timeout:g} s timeout"
        seen = self._last_seen()
        missing: tuple[int, ...] = ()
        if seen is None:
            where = "the ranks that did not arrive could not be determined (store unreachable)"
        else:
            missing = tuple(r for r, (n, _) in sorted(seen.items()) if n < sync)
            known = {r: self._known_state(r) for r in missing}
            left = [r for r in missing if (known[r] or "").startswith(_LEFT_PHRASES)]
            absent = [r for r in missing if r not in left]
            parts = []
            if absent:
                last = "; ".join(
                    f"rank {r} last reached {seen[r][1]}"
                    + (f", and is now {known[r]}" if known[r] else "")
                    for r in absent
                )
                parts.append(f"rank(s) {absent} did not arrive: {last}")
            if left:
                notes = "; ".join(f"rank {r} {known[r]} (last call: {seen[r][1]})" for r in left)
                parts.append(f"rank(s) {left} will not come: {notes}")
            where = "; ".join(parts) or "every rank reached this sync, so a peer failed inside it"
        message = (
            f"esper_runtime: rank {self.rank} waited {waited:.1f} s on {call} "
            f"and gave up: {what}; {where}. "
            "The side process group is unusable from now on; stop this rank and restart "
            f"the job.\nUnderlying error: {_first_line(text)}"
        )
        return DesyncTimeout(message, missing_ranks=missing, call=call)


# How watchdog.describe_rank starts for a rank that is gone for good (see GONE_STATES there).
_LEFT_PHRASES = ("finished", "exited", "unwrapped")


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "(no message)"


# --------------------------------------------------------------------------- opening it


_wrap_counts: dict[tuple[int, ...], int] = {}


@dataclass(frozen=True)
class WrapRequest:
    slot_count: int
    name_hash: int
    src: int
    timeout: float


def open_side_channel(
    ranks: Sequence[int],
    request: WrapRequest,
    subgroup: bool,
    names: Sequence[str] = (),
) -> SideChannel:
    """Agree with every rank that it is wrapping the same slots, then create the side group.

    ``new_group`` is a collective that every rank must call in the same order; a rank that never
    calls ``wrap_slots`` would leave the others blocked inside it. So the ranks first meet in
    the store (bounded by the timeout, naming the absent ranks), compare what they wrap, and
    only then create the group and check it with a first all_gather.
    """
    ranks = tuple(ranks)
    count = _wrap_counts.get(ranks, 0) + 1
    _wrap_counts[ranks] = count
    ranks_tag = names_hash([str(r) for r in ranks])
    # torchrun keeps its store across elastic restarts: keys of an earlier attempt must not
    # satisfy this one's meeting.
    attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    prefix = f"esper_runtime/attempt{attempt}/{ranks_tag:x}/wrap{count}"
    store = _default_store()
    if store is not None:
        _meet_in_store(store, prefix, ranks, request, names)
    try:
        group = dist.new_group(
            ranks=None if not subgroup else list(ranks),
            timeout=timedelta(seconds=request.timeout),
            backend="gloo",
            use_local_synchronization=subgroup,
        )
    except RuntimeError as error:
        raise DesyncTimeout(
            f"esper_runtime: creating the side process group in wrap_slots() failed on rank "
            f"{dist.get_rank()}: {_first_line(str(error))}. Every rank must call wrap_slots() "
            "in the same order.",
            call="wrap_slots",
        ) from error
    channel = SideChannel(group, ranks, request.src, request.timeout, store, prefix)
    try:
        _handshake(channel, request)
    except DesyncError:
        channel.close()
        raise
    return channel


def _default_store() -> Store | None:
    getter = getattr(dist.distributed_c10d, "_get_default_store", None)
    if getter is None:
        return None
    try:
        store: Store = getter()
    except (RuntimeError, ValueError):
        return None
    return store


def _meet_in_store(
    store: Store,
    prefix: str,
    ranks: tuple[int, ...],
    request: WrapRequest,
    names: Sequence[str] = (),
) -> None:
    rank = dist.get_rank()
    payload = f"{request.slot_count}:{request.name_hash}:{request.src}"
    keys = [f"{prefix}/arrive/{r}" for r in ranks]
    started = time.monotonic()
    try:
        store.set(f"{prefix}/names/{rank}", json.dumps(list(names)))
        store.set(f"{prefix}/arrive/{rank}", payload)
        store.wait(keys, timedelta(seconds=request.timeout))
    except RuntimeError as error:
        missing = _absent_ranks(store, ranks, keys)
        who = "the other ranks (store unreachable)" if missing is None else f"rank(s) {missing}"
        raise DesyncTimeout(
            f"esper_runtime: wrap_slots() on rank {rank} waited "
            f"{time.monotonic() - started:.1f} s for {who} to call wrap_slots() "
            "too, and gave up. wrap_slots() must be called on every rank of the group, in the "
            f"same order.\nUnderlying error: {_first_line(str(error))}",
            missing_ranks=tuple(missing or ()),
            call="wrap_slots",
        ) from error
    try:
        payloads = {r: store.get(key).decode() for r, key in zip(ranks, keys, strict=True)}
    except RuntimeError as error:
        raise DesyncTimeout(
            f"esper_runtime: wrap_slots() on rank {rank}: every rank arrived, but reading "
            f"their requests from the store failed.\nUnderlying error: {_first_line(str(error))}",
            call="wrap_slots",
        ) from error
    if len(set(payloads.values())) > 1:
        explanation = explain_names(_read_names(store, prefix, ranks))
        raise DesyncError(_wrap_mismatch_message(rank, payloads) + explanation)


def _read_names(store: Store, prefix: str, ranks: tuple[int, ...]) -> dict[int, list[str]]:
    names: dict[int, list[str]] = {}
    try:
        for r in ranks:
            key = f"{prefix}/names/{r}"
            if store.check([key]):
                names[r] = [str(n) for n in json.loads(store.get(key).decode())]
    except (RuntimeError, ValueError):
        pass
    return names


WRAPPER_PREFIXES = ("module.", "_orig_mod.")


def _strip_wrappers(name: str) -> str:
    stripped = True
    while stripped:
        stripped = False
        for prefix in WRAPPER_PREFIXES:
            if name.startswith(prefix):
                name, stripped = name[len(prefix) :], True
    return name


def explain_names(names: dict[int, list[str]]) -> str:
    """Plain words for why the ranks' slot names differ (wrapper prefixes, other objects)."""
    if len(names) < 2 or len({tuple(v) for v in names.values()}) == 1:
        return ""
    bare = {r: [_strip_wrappers(n) for n in v] for r, v in names.items()}
    shown = "; ".join(f"rank {r}: {_preview(v)}" for r, v in sorted(names.items()))
    if len({tuple(v) for v in bare.values()}) == 1:
        return (
            "\nThe slot names differ only by wrapper prefixes ('module.' from "
            "DistributedDataParallel, '_orig_mod.' from torch.compile): some ranks wrapped the "
            "DDP-wrapped or compiled model and others the bare one. Pass the same object to "
            f"wrap_slots() on every rank (e.g. always the bare model). Names: {shown}"
        )
    return (
        "\nThe ranks wrapped different objects (different slots or module paths); every rank "
        f"must wrap the same model. Names: {shown}"
    )


def _preview(names: list[str], limit: int = 4) -> str:
    head = ", ".join(repr(n) for n in names[:limit])
    more = f", ... ({len(names)} in all)" if len(names) > limit else ""
    return f"[{head}{more}]"


def _absent_ranks(store: Store, ranks: tuple[int, ...], keys: list[str]) -> list[int] | None:
    try:
        return [r for r, key in zip(ranks, keys, strict=True) if not store.check([key])]
    except RuntimeError:  # the store host is gone too
        return None


def _wrap_mismatch_message(rank: int, payloads: dict[int, str]) -> str:
    lines = [
        f"esper_runtime: wrap_slots() on rank {rank}: the ranks wrapped different slots; "
        "every rank must wrap the same slots (same count and names) with the same src.",
        "rank  slots  names hash        src",
    ]
    for r, payload in sorted(payloads.items()):
        count, name_hash, src = payload.split(":")
        lines.append(f"{r:<4}  {count:<5}  {int(name_hash):016x}  {src}")
    return "\n".join(lines)


def _handshake(channel: SideChannel, request: WrapRequest) -> None:
    mine = torch.tensor(
        [MAGIC, int(CallKind.HANDSHAKE), request.slot_count, request.name_hash, request.src],
        dtype=torch.int64,
    )  # fixed size: it must work even when the ranks wrapped different numbers of slots
    rows = channel.all_gather(mine, 0, "wrap_slots handshake")
    if any(not torch.equal(row, mine) for row in rows):
        payloads = {
            r: f"{int(row[2])}:{int(row[3])}:{int(row[4])}"
            for r, row in zip(channel.global_ranks, rows, strict=True)
        }
        names = (
            {}
            if channel._store is None
            else _read_names(channel._store, channel.key_prefix, channel.global_ranks)
        )
        raise DesyncError(_wrap_mismatch_message(channel.rank, payloads) + explain_names(names))

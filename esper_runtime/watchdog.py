"""The verdict and the watchdog: one desync error on every rank, wherever its main thread is.

Between two guarded syncs the ranks meet in collectives the guard does not run (DDP's gradient
all-reduce, Esper's gate broadcast). A fault there leaves a rank blocked in C++ code, and gloo
cannot abort a pending operation: ``abort()``, ``shutdown()`` and ``destroy_process_group`` on
the blocked rank or on its peer leave it blocked (tried with torch 2.13). It is released only
when a peer's process exits and its sockets close, or by the default group's own timeout.

So the guard does three things:

- **Status and heartbeat.** A daemon thread per guard writes this rank's status (what the main
  thread is doing, the last guarded call, its sync number and the user's file:line) to the
  store every ``heartbeat`` seconds, and reads everyone else's. Nothing is written per step.
- **The verdict.** The first rank that knows of a desync (a mismatch or timeout at a guarded
  sync, a peer that stopped heartbeating, exited or finished while others wait for it, or its
  own main thread blocked in a backward, or in ``ddp.join()`` for one step of the others, for
  longer than the timeout while a peer is elsewhere)
  writes one verdict to the store with ``compare_set``: the first writer wins, and every rank
  raises that same text.
- **Delivery.** A rank whose main thread runs Python gets the verdict as an exception at its next
  Python boundary (``PyThreadState_SetAsyncExc``). A rank blocked in a collective gets it when
  the collective fails: ``torch.autograd.backward``, ``ddp.join()``'s loop, the guarded calls
  and the guard's own syncs turn a distributed ``RuntimeError`` into the verdict. The raising
  rank's exit closes its sockets, which releases gloo peers; under NCCL the watchdog aborts the
  process groups.
"""

from __future__ import annotations

import ctypes
import json
import sys
import threading
import time
import traceback
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist
from torch._C._distributed_c10d import Store

from .errors import DesyncError, DesyncTimeout

__all__ = ["Watchdog", "activity", "note_exit", "translating"]

MISMATCH = "mismatch"
TIMEOUT = "timeout"
_DISTRIBUTED_MARKERS = (
    "connection closed",
    "connection reset",
    "closure",
    "gloo",
    "nccl",
    "timed out",
    "processgroup",
    "process group",
    "broken pipe",
    "esper_runtime",
)


# --------------------------------------------------------------------------- main-thread activity


@dataclass
class _Activity:
    """What this process's main thread is doing; written by it, read by the watchdog threads."""

    state: str = "running"  # running | backward | join | sync | advance | finished | exited
    detail: str = ""
    where: str = ""
    since: float = field(default_factory=time.monotonic)
    backward_steps: int = 0
    exit_note: str = ""

    def enter(self, state: str, detail: str, where: str) -> tuple[str, str, str, float]:
        previous = (self.state, self.detail, self.where, self.since)
        self.state, self.detail, self.where, self.since = state, detail, where, time.monotonic()
        return previous

    def restore(self, previous: tuple[str, str, str, float]) -> None:
        if self.state in ("finished", "exited"):
            return
        self.state, self.detail, self.where, self.since = previous


activity = _Activity()
# The states in which a peer is gone for good: it ran to the end, raised and exited, or gave its
# guard up with unwrap() ("left"). Such a peer no longer heartbeats and is no longer awaited.
GONE_STATES = ("finished", "exited", "left")
# The states in which the main thread waits in a collective the guard does not run, so that a
# wait longer than the timeout while a peer is elsewhere is a fault.
_BLOCKING_STATES = ("backward", "advance", "join")
_watchdogs: list[Watchdog] = []  # started and not stopped, oldest first


def user_location(skip_prefixes: Sequence[str] = ()) -> str:
    """file:line of the nearest caller outside esper_runtime and torch."""
    frame = sys._getframe(1)
    package = __file__.rsplit("/", 1)[0]
    torch_dir = torch.__file__.rsplit("/", 1)[0]
    while frame is not None:
        filename = frame.f_code.co_filename
        if not filename.startswith((package, torch_dir, *skip_prefixes)) and not filename.endswith(
            "contextlib.py"
        ):
            return f"{filename.rsplit('/', 1)[-1]}:{frame.f_lineno}"
        frame = frame.f_back  # type: ignore[assignment]
    return "?"


def note_exit(error: BaseException | None) -> None:
    """Record that this process is leaving: finished cleanly, or raised ``error`` and exits.

    Called by the atexit/excepthook handlers the guard installs and by ``run_on_ranks`` (which
    leaves with ``os._exit``). Peers then report this rank as "finished after sync #N" or "exited
    after raising ...", not as a rank that did not arrive.
    """
    if activity.state in ("finished", "exited"):
        return
    if error is None:
        activity.state = "finished"
    else:
        activity.state = "exited"
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        activity.exit_note = f"{type(error).__name__}: {first[:160]}"
    activity.since = time.monotonic()
    for watchdog in list(_watchdogs):
        watchdog.publish()


# --------------------------------------------------------------------------- delivered errors

_pending_messages: dict[int, str] = {}


class _DeliveredDesyncError(DesyncError):
    """Raised asynchronously in the main thread (its constructor can take no argument)."""

    def __init__(self, *args: object) -> None:
        super().__init__(*(args or (_pending_messages.get(threading.get_ident(), ""),)))


class _DeliveredDesyncTimeout(DesyncTimeout):
    def __init__(self, message: str | None = None, **kwargs: Any) -> None:
        text = message if message is not None else _pending_messages.get(threading.get_ident(), "")
        super().__init__(text, **kwargs)


def _set_async_exc(thread_id: int, exc_type: type[BaseException] | None) -> None:
    setter = ctypes.pythonapi.PyThreadState_SetAsyncExc
    if exc_type is None:
        setter.argtypes = [ctypes.c_ulong, ctypes.c_void_p]
        setter(ctypes.c_ulong(thread_id), None)
    else:
        setter.argtypes = [ctypes.c_ulong, ctypes.py_object]
        setter(ctypes.c_ulong(thread_id), ctypes.py_object(exc_type))


def _main_thread_id() -> int:
    ident = threading.main_thread().ident
    return 0 if ident is None else ident


# --------------------------------------------------------------------------- the watchdog


@dataclass
class _Peer:
    status: dict[str, Any]
    beats: int = -1
    changed_at: float = field(default_factory=time.monotonic)


class Watchdog:
    """Heartbeat, peer status and verdict for one guard's ranks."""

    def __init__(
        self,
        store: Store,
        prefix: str,
        rank: int,
        ranks: Sequence[int],
        timeout: float,
        describe: Callable[[], dict[str, Any]],
        heartbeat: float | None = None,
    ) -> None:
        self._store = store
        self._prefix = prefix
        self.rank = rank
        self.ranks = tuple(ranks)
        self.timeout = timeout
        self.heartbeat = heartbeat if heartbeat is not None else min(0.5, max(timeout / 8, 0.1))
        # A rank is presumed dead after this long without a heartbeat. Generous, so that a
        # healthy rank starved of CPU on a shared machine is never declared dead.
        self.stale_after = max(5.0, min(timeout, 30.0))
        # Heartbeats missed for this long are worth naming in a verdict given for another reason.
        self.silent_after = max(1.0, 4 * self.heartbeat)
        self._describe = describe
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._beats = 0
        self._peers: dict[int, _Peer] = {}
        self.error: DesyncError | None = None
        self.failure_seen = False
        self._delivered = False
        self._async_scheduled = False
        self._delivery_lock = threading.Lock()
        self._thread = threading.Thread(
            target=self._run, name=f"esper-runtime-watchdog-{rank}", daemon=True
        )

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        _watchdogs.append(self)
        self.publish()
        self._thread.start()

    def stop(self, leaving: bool = False) -> None:
        """Stop heartbeating; with ``leaving``, first tell the peers this rank gave its guard up.

        A rank that unwraps on purpose is then reported as "unwrapped its guard after sync #N",
        at once, not as a rank that stopped heartbeating a few seconds later.
        """
        self._stop.set()
        if self in _watchdogs:
            _watchdogs.remove(self)
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=2 * self.heartbeat + 1.0)
        if leaving and activity.state not in ("finished", "exited"):
            self.publish(state="left")

    # ------------------------------------------------------------------ store traffic

    def _key(self, name: str) -> str:
        return f"{self._prefix}/{name}"

    def publish(self, state: str | None = None) -> None:
        status = dict(self._describe())
        status.update(
            hb=self._beats,
            state=state or activity.state,
            detail=activity.detail,
            where=activity.where,
            age=round(time.monotonic() - activity.since, 2),
            steps=activity.backward_steps,
            exit=activity.exit_note,
        )
        self._beats += 1
        try:
            with self._lock:
                self._store.set(self._key(f"status/{self.rank}"), json.dumps(status))
        except RuntimeError:
            pass  # the store host is gone; peers see this rank stop heartbeating

    def _read_peers(self) -> None:
        now = time.monotonic()
        for rank in self.ranks:
            if rank == self.rank:
                continue
            key = self._key(f"status/{rank}")
            try:
                with self._lock:
                    if not self._store.check([key]):
                        continue
                    status = json.loads(self._store.get(key).decode())
            except (RuntimeError, ValueError):
                continue
            peer = self._peers.get(rank)
            if peer is None:
                self._peers[rank] = _Peer(status, int(status.get("hb", 0)), now)
            else:
                if int(status.get("hb", 0)) != peer.beats:
                    peer.beats, peer.changed_at = int(status.get("hb", 0)), now
                peer.status = status

    def describe_rank(self, rank: int) -> str | None:
        """What this watchdog knows of ``rank`` now ("finished after sync #3", ...)."""
        self._read_peers()
        peer = self._peers.get(rank)
        if peer is None:
            return None
        status = self._marked_if_silent(peer, time.monotonic())
        return _describe_state(status, float(status.get("age", 0.0)))

    def _marked_if_silent(self, peer: _Peer, now: float) -> dict[str, Any]:
        """The peer's status, with ``silent`` (seconds) once it has missed beats that long."""
        silent = now - peer.changed_at
        if peer.status.get("state") not in GONE_STATES and silent > self.silent_after:
            return {**peer.status, "silent": silent}
        return peer.status

    def read_verdict(self) -> str | None:
        try:
            with self._lock:
                key = self._key("verdict")
                if not self._store.check([key]):
                    return None
                return self._store.get(key).decode()
        except RuntimeError:
            return None

    def post(
        self, kind: str, message: str, missing_ranks: Sequence[int] = (), call: str = ""
    ) -> DesyncError:
        """Write a verdict unless one exists; return the error for the winning verdict."""
        missing = ",".join(str(r) for r in missing_ranks)
        payload = f"{kind}|{missing}|{call.replace('|', '/')}\n{message}"
        try:
            with self._lock:
                winner = self._store.compare_set(self._key("verdict"), "", payload).decode()
        except RuntimeError:
            winner = payload  # no store: at least this rank raises it
        return self._accept(winner, written_here=winner == payload)

    def _accept(self, payload: str, written_here: bool = False) -> DesyncError:
        if self.error is None:
            header, _, message = payload.partition("\n")
            kind, _, rest = header.partition("|")
            missing, _, call = rest.partition("|")
            here = (
                f"(rank {self.rank} detected this and wrote the verdict)"
                if written_here
                else self._where_this_rank_is()
            )
            text = f"{message}\n{here}"
            ranks = tuple(int(r) for r in missing.split(",") if r.strip().isdigit())
            self.error = (
                DesyncError(text)
                if kind == MISMATCH
                else DesyncTimeout(text, missing_ranks=ranks, call=call)
            )
        return self.error

    def _where_this_rank_is(self) -> str:
        state = _describe_state(self._my_status(), time.monotonic() - activity.since)
        return f"(rank {self.rank} got this verdict while {state})"

    def _my_status(self) -> dict[str, Any]:
        status = dict(self._describe())
        status.update(
            state=activity.state,
            detail=activity.detail,
            where=activity.where,
            steps=activity.backward_steps,
            exit=activity.exit_note,
        )
        return status

    # ------------------------------------------------------------------ the loop

    def _run(self) -> None:
        while not self._stop.wait(self.heartbeat):
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - the watchdog must never die on a transient error
                traceback.print_exc()

    def tick(self) -> None:
        self.publish()
        if self.error is None:
            verdict = self.read_verdict()
            if verdict is not None:
                self._accept(verdict)
        self._read_peers()
        if self.error is None:
            found = self._reason_for_verdict()
            if found is not None:
                reason, blamed = found
                self.post(TIMEOUT, reason, missing_ranks=blamed)
        if self.error is not None and not self._delivered:
            self._deliver()

    def _reason_for_verdict(self) -> tuple[str, tuple[int, ...]] | None:
        """Why this rank should give up now, and the ranks to blame; None while all is well."""
        now = time.monotonic()
        state = activity.state
        if state in ("finished", "exited"):
            return None
        stale_after = min(self.stale_after, 2.0) if self.failure_seen else self.stale_after
        my_sync = int(self._describe().get("sync", 0))
        blocked_for = now - activity.since
        for rank, peer in sorted(self._peers.items()):
            peer_state = peer.status.get("state")
            if peer_state in GONE_STATES:
                # A rank that left is a fault only for a rank that still needs it: one in a
                # sync the leaver never reached, or blocked in a collective for a while.
                behind = state == "sync" and int(peer.status.get("sync", 0)) < my_sync
                stuck = state in _BLOCKING_STATES and blocked_for > 1.0 + self.heartbeat
                if behind or stuck or self.failure_seen:
                    headline = (
                        f"rank {rank} {_describe_state(peer.status, 0.0)}, and rank {self.rank} "
                        f"is still in {_state_phrase(self._my_status())}"
                    )
                    return self._verdict_text(headline), (rank,)
            if peer_state not in GONE_STATES and now - peer.changed_at > stale_after:
                headline = (
                    f"rank {rank} stopped heartbeating {now - peer.changed_at:.1f} s ago "
                    "(killed, crashed or frozen)"
                )
                return self._verdict_text(headline), (rank,)
        if state in _BLOCKING_STATES and now - activity.since > self.timeout:
            # Not compared: step counts (a rank-local backward makes them differ legitimately).
            others = [
                rank
                for rank, peer in sorted(self._peers.items())
                if peer.status.get("state") != state
            ]
            if others and self._falling_silent(others, now, blocked_for):
                return None  # a peer is missing beats: wait (at most silent_after) to name it
            if others:
                headline = (
                    f"rank {self.rank} has waited {now - activity.since:.1f} s in "
                    f"{_state_phrase(self._my_status())} while rank(s) {others} are elsewhere"
                    + self._silence_note(others, now)
                )
                return self._verdict_text(headline), tuple(others)
        return None

    def _falling_silent(self, ranks: Sequence[int], now: float, blocked_for: float) -> bool:
        """Whether one of ``ranks`` has missed beats but not yet for ``silent_after``.

        Deferring the timeout verdict until then costs at most ``silent_after`` and lets it name
        a rank that was killed just as this one started waiting.
        """
        if blocked_for > self.timeout + self.silent_after:
            return False
        return any(
            2 * self.heartbeat < now - self._peers[rank].changed_at <= self.silent_after
            for rank in ranks
        )

    def _silence_note(self, ranks: Sequence[int], now: float) -> str:
        """Which of ``ranks`` have missed heartbeats, for a verdict given before they look dead.

        The timeout can end before the staleness window does (a rank killed just as its peers
        entered the backward); the verdict then still says which rank fell silent.
        """
        marked = [(rank, self._marked_if_silent(self._peers[rank], now)) for rank in ranks]
        return "".join(
            f"; rank {rank} stopped heartbeating {status['silent']:.1f} s ago "
            "(killed, crashed or frozen?)"
            for rank, status in marked
            if "silent" in status
        )

    def _verdict_text(self, headline: str) -> str:
        return (
            f"esper_runtime: desync verdict from rank {self.rank}: {headline}.\n"
            + "Where each rank is:\n"
            + self.status_table()
        )

    def status_table(self, self_note: str | None = None) -> str:
        """Where every rank is, from the latest statuses (this rank's is fresh)."""
        self._read_peers()
        now = time.monotonic()
        rows = [("rank", "state", "last guarded call")]
        for rank in self.ranks:
            if rank == self.rank and self_note is not None:
                rows.append((str(rank), self_note, _describe_last_call(self._my_status())))
                continue
            if rank == self.rank:
                status, age = self._my_status(), now - activity.since
            elif rank in self._peers:
                peer = self._peers[rank]
                status = self._marked_if_silent(peer, now)
                age = float(peer.status.get("age", 0.0))
            else:
                rows.append((str(rank), "no status yet", "-"))
                continue
            rows.append((str(rank), _describe_state(status, age), _describe_last_call(status)))
        widths = [max(len(row[i]) for row in rows) for i in range(3)]
        return "\n".join(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
            for row in rows
        )

    # ------------------------------------------------------------------ delivery

    def take_pending(self) -> DesyncError | None:
        """The verdict, once: the main thread is about to raise it (no async copy follows)."""
        with self._delivery_lock:
            if self.error is None or self._delivered:
                return None
            self._delivered = True
            return self.error

    def mark_raised(self) -> None:
        """The main thread raised this verdict itself: cancel a copy scheduled asynchronously."""
        with self._delivery_lock:
            if self._delivered and self._async_scheduled:
                _set_async_exc(_main_thread_id(), None)
            self._delivered = True

    def _deliver(self) -> None:
        with self._delivery_lock:
            if self._delivered:
                return
            self._delivered = True
            self._schedule_async()

    def _schedule_async(self) -> None:
        error = self.error
        if error is None:
            return
        if _uses_nccl():  # NCCL can abort pending work; gloo cannot (see the module docstring)
            try:
                dist.distributed_c10d._abort_process_group()
            except (RuntimeError, ValueError, AttributeError):
                pass
        if activity.state == "running":
            self._async_scheduled = True
            thread_id = _main_thread_id()
            _pending_messages[thread_id] = str(error)
            _set_async_exc(
                thread_id,
                _DeliveredDesyncTimeout
                if isinstance(error, DesyncTimeout)
                else _DeliveredDesyncError,
            )

    def settle(self) -> None:
        """After a peer closed its connection: wait briefly until its heartbeat looks stopped."""
        self.failure_seen = True
        deadline = time.monotonic() + 2.0 + 4 * self.heartbeat
        while time.monotonic() < deadline and self.error is None:
            self._read_peers()
            now = time.monotonic()
            if any(
                p.status.get("state") in GONE_STATES or now - p.changed_at > 2.0
                for p in self._peers.values()
            ):
                return
            time.sleep(self.heartbeat / 2)

    def wait_for_verdict(self, failure: BaseException) -> DesyncError:
        """After a collective failed in the main thread: the verdict, waiting for one if need be.

        The failed collective means a peer is gone or broken; this rank's watchdog shortens its
        heartbeat staleness window to name it quickly. Without any explanation within the
        window, this rank's failure becomes the verdict.
        """
        self.failure_seen = True
        deadline = time.monotonic() + min(self.stale_after, 2.0) + 4 * self.heartbeat + 1.0
        while self.error is None and time.monotonic() < deadline:
            if not self._thread.is_alive():
                self.tick()
            time.sleep(self.heartbeat / 2)
        if self.error is None:
            first = str(failure).strip().splitlines()[0] if str(failure).strip() else ""
            self.post(
                TIMEOUT,
                self._verdict_text(
                    f"a collective failed on rank {self.rank} and no other rank explains it "
                    f"({type(failure).__name__}: {first[:200]})"
                ),
            )
        assert self.error is not None
        return self.error


def _uses_nccl() -> bool:
    try:
        return bool(dist.is_initialized() and dist.get_backend() == "nccl")
    except (RuntimeError, ValueError):
        return False


def _state_phrase(status: dict[str, Any]) -> str:
    state = status.get("state", "?")
    where = f" at {status['where']}" if status.get("where") else ""
    if state == "backward":
        return f"backward (step #{status.get('steps', '?')}){where}"
    if state in ("sync", "advance", "join"):
        return f"{status.get('detail', state)}{where}"
    return f"{state}{where}"


def _describe_state(status: dict[str, Any], age: float) -> str:
    state = status.get("state", "?")
    sync = status.get("sync", 0)
    if state == "finished":
        return f"finished after sync #{sync}"
    if state == "exited":
        return f"exited after raising {status.get('exit', '?')} (after sync #{sync})"
    if state == "left":
        return f"unwrapped its guard after sync #{sync} and runs on unguarded"
    if "silent" in status:
        # What it was doing stays in the row: a rank starved of CPU may only look silent.
        alive = {key: value for key, value in status.items() if key != "silent"}
        return (
            f"stopped heartbeating {status['silent']:.1f} s ago (killed, crashed or frozen); "
            f"it was {_describe_state(alive, age)}"
        )
    if state == "running":
        return f"running, not in a collective the guard knows (for {age:.1f} s)"
    return f"in {_state_phrase(status)} for {age:.1f} s"


def _describe_last_call(status: dict[str, Any]) -> str:
    call = status.get("call") or "none"
    where = f" at {status['call_where']}" if status.get("call_where") else ""
    return f"sync #{status.get('sync', 0)}: {call}{where}"


# --------------------------------------------------------------------------- translation


def looks_distributed(error: BaseException) -> bool:
    if isinstance(error, DesyncError) or not isinstance(error, RuntimeError):
        return False
    text = f"{type(error).__name__} {error}".lower()
    return any(marker in text for marker in _DISTRIBUTED_MARKERS) or "DistBackendError" in str(
        type(error).__mro__
    )


def active_watchdog() -> Watchdog | None:
    """The newest watchdog that has not raised its verdict yet (else the newest one)."""
    candidates = [w for w in _watchdogs if not w._delivered] or _watchdogs
    return candidates[-1] if candidates else None


def raise_pending() -> None:
    """Raise a verdict this rank holds and has not raised yet (guarded calls, backward)."""
    for watchdog in list(_watchdogs):
        error = watchdog.take_pending()
        if error is not None:
            raise error


@contextmanager
def translating(state: str, detail: str, where: str) -> Iterator[None]:
    """Mark the main thread as in ``state``; turn a distributed failure into the verdict."""
    previous = activity.enter(state, detail, where)
    try:
        yield
        raise_pending()  # a verdict that arrived while this call was blocked
    except RuntimeError as error:
        watchdog = active_watchdog()
        if isinstance(error, DesyncError) or watchdog is None or not looks_distributed(error):
            raise
        verdict = watchdog.wait_for_verdict(error)
        watchdog.mark_raised()
        raise verdict from error
    finally:
        activity.restore(previous)


# --------------------------------------------------------------------------- backward and exit


_before_backward: weakref.WeakSet[Any] = weakref.WeakSet()  # guards with a flush_pending()
_original_backward: Callable[..., Any] | None = None


def watch_backward(guard: Any) -> None:
    """Route ``torch.autograd.backward`` and ``join()``'s wait through the guard while any guard
    is active.

    One Python call per backward (never per forward): it flushes coalesced ticks, marks the main
    thread as "in backward" for the watchdog, and turns a failed all-reduce into the verdict.
    ``loss.backward()`` goes through ``torch.autograd.backward``, as do Lightning and accelerate.
    """
    global _original_backward
    _before_backward.add(guard)
    _install_exit_hooks()
    _watch_join()
    if _original_backward is not None:
        return
    original = torch.autograd.backward
    _original_backward = original

    def backward(*args: Any, **kwargs: Any) -> Any:
        activity.backward_steps += 1
        raise_pending()
        for pending in list(_before_backward):
            pending.flush_pending("at backward")
        with translating("backward", "", user_location()):
            return original(*args, **kwargs)

    backward.__wrapped__ = original  # type: ignore[attr-defined]
    backward.__doc__ = original.__doc__
    torch.autograd.backward = backward


def unwatch_backward(guard: Any) -> None:
    global _original_backward
    _before_backward.discard(guard)
    if not _before_backward and _original_backward is not None:
        torch.autograd.backward = _original_backward
        _original_backward = None
        _unwatch_join()


_original_join: tuple[Callable[..., Any], Callable[..., Any]] | None = None


def _watch_join() -> None:
    """Mark the main thread as "in ddp.join()" while a rank that ran out of inputs waits there.

    A joined rank loops in ``Join.__exit__``: one all-reduce per step of the ranks still
    training, then the shadow of that step's collectives. The watchdog took it for a rank running
    Python, so a peer alive out of step left it blocked with no timeout, and a peer's exit
    reached it as gloo's raw error. Each round of the loop restarts the clock, so the timeout
    bounds the wait for one step of the others, as in a backward. Both patched attributes are
    torch's own; should a torch release rename them, ``join()`` goes unwatched.
    """
    global _original_join
    from torch.distributed.algorithms.join import Join

    original_exit = Join.__exit__
    original_count = getattr(Join, "_get_num_nonjoined_procs", None)
    if _original_join is not None or original_count is None:
        return
    _original_join = (original_exit, original_count)

    def __exit__(self: Join, kind: Any, value: Any, traceback: Any) -> Any:
        if kind is not None:  # the block raised: torch's __exit__ only lets it through
            return original_exit(self, kind, value, traceback)
        with translating("join", join_detail(self), user_location()):
            return original_exit(self, kind, value, traceback)

    def _get_num_nonjoined_procs(self: Join) -> Any:
        if activity.state == "join":
            activity.since = time.monotonic()  # a new round: a new step of the others
        return original_count(self)

    Join.__exit__ = __exit__  # type: ignore[method-assign]
    Join._get_num_nonjoined_procs = _get_num_nonjoined_procs  # type: ignore[method-assign]


def join_detail(join: Any) -> str:
    """What a rank waiting in this ``Join`` is doing, as the status table says it."""
    kinds = sorted({type(joinable).__name__ for joinable in getattr(join, "_joinables", ())})
    if kinds == ["DistributedDataParallel"]:
        context = "ddp.join()"
    else:  # ZeroRedundancyOptimizer, accelerate's join_uneven_inputs with several, your own
        context = f"join() of {', '.join(kinds) or 'its joinables'}"
    return f"{context}, waiting for the ranks still training"


def _unwatch_join() -> None:
    global _original_join
    if _original_join is None:
        return
    from torch.distributed.algorithms.join import Join

    Join.__exit__, Join._get_num_nonjoined_procs = _original_join  # type: ignore[method-assign]
    _original_join = None


_exit_hooks_installed = False


def _install_exit_hooks() -> None:
    """Tell peers how this process leaves: normally (atexit) or by an uncaught exception."""
    global _exit_hooks_installed
    if _exit_hooks_installed:
        return
    _exit_hooks_installed = True
    import atexit

    atexit.register(note_exit, None)
    previous_hook = sys.excepthook

    def excepthook(kind: type[BaseException], value: BaseException, tb: Any) -> None:
        note_exit(value)
        previous_hook(kind, value, tb)

    sys.excepthook = excepthook

"""Exits that only some ranks take, and the symmetric call the other ranks then wait in (ESP005).

The traversal (``flow``) notes every exit statement (``return``, ``break``, ``continue``,
``raise``, ``assert``, ``sys.exit()``...) decided by a rank-local condition -- one that reads a
value that can differ across ranks and that no sanitiser made uniform (``values``) -- and every
process exit under rank control (in a rank-dependent branch, after a rank-dependent early exit,
or under a rank-zero decorator). After the walk, ``waited_in`` finds the symmetric call the other
ranks reach while the exiting rank is gone:

- later in the same function, on a path the exit does not exclude (a call on another branch of a
  condition enclosing both, the deciding one included, is skipped by that condition, not by the
  exit: ``if ok: ... else: raise`` skips nothing in the ``if`` branch);
- for ``break``, ``return``, ``raise`` and process exits, anywhere in the body of the loops the
  exit leaves: the next iteration reaches it;
- for ``continue``, later in the body of the loop it restarts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import libcst as cst

from esper_lint.analysis.calls import CallRecord, SymmetricCall
from esper_lint.analysis.control import Condition, Context, Exit, ExitKind
from esper_lint.analysis.loops import Loop
from esper_lint.analysis.symbols import CallKind


@dataclass(eq=False)
class LocalExit:
    """An exit that only some ranks may take (see the module docstring)."""

    kind: ExitKind
    node: cst.CSTNode  # the exit statement
    owner: str | None  # the key of the enclosing function, None at module level
    order: int  # how many calls were recorded before it (the records are in source order)
    context: Context
    # The condition that decides it and what makes it rank-local; None when a process exit is
    # under rank control only through ``controller`` (a decorator or an earlier exit).
    guard: Condition | None = None
    guard_test: cst.CSTNode | None = None
    branch: int = 0  # the branch of ``guard`` the exit is on
    holds: bool = True  # the exit runs where ``guard_test`` holds (False: where it fails)
    bits: int = 0  # the bits of ``guard_test`` (RANK, DATA: see ``rank``)
    why: str = ""  # ``loss_value is this rank's own loss, not reduced across ranks``
    rank_exit: Exit | None = None  # v1's early exit for this statement (a rank-dependent guard)
    controller: Condition | Exit | None = None  # what puts a process exit under rank control
    target: Loop | None = None  # the loop a break/continue leaves or restarts

    @property
    def process_exit(self) -> bool:
        return self.kind is ExitKind.EXIT

    @property
    def loops(self) -> tuple[Loop, ...]:
        """The loops of the function around the exit, outermost first."""
        return tuple(frame for frame, _ in self.context if isinstance(frame, Loop))


@dataclass(frozen=True)
class WaitedIn:
    """The verdict on one LocalExit: the symmetric call the other ranks wait in, if any."""

    exit: LocalExit
    call: SymmetricCall | None


def waited_in(
    exits: Sequence[LocalExit],
    calls: Sequence[SymmetricCall],
    order: dict[CallRecord, int],
    owners: dict[CallRecord, str | None],
) -> list[WaitedIn]:
    """For each exit ESP005 reports, the symmetric call that follows it (None: a process exit
    under rank control with none in view). Exits v1 already reports on the calls they skip
    (ESP003/ESP004/ESP006: a rank-dependent return/break/continue/raise) are left out."""
    verdicts: list[WaitedIn] = []
    for exit_ in exits:
        if exit_.rank_exit is not None and not exit_.process_exit:
            if any(exit_.rank_exit in call.record.exits for call in calls):
                continue
        found = _first_following(exit_, calls, order, owners)
        if found is not None or _under_rank_control(exit_):
            verdicts.append(WaitedIn(exit_, found))
    return verdicts


def _under_rank_control(exit_: LocalExit) -> bool:
    """A process exit that only some ranks take, whatever follows it."""
    if not exit_.process_exit:
        return False
    return exit_.controller is not None or exit_.rank_exit is not None


def _first_following(
    exit_: LocalExit,
    calls: Sequence[SymmetricCall],
    order: dict[CallRecord, int],
    owners: dict[CallRecord, str | None],
) -> SymmetricCall | None:
    """The call the other ranks wait in: in the body of a loop the exit leaves (later in this
    iteration, else the next one), else later in the function."""
    ranked: list[tuple[int, int, SymmetricCall]] = []
    for call in calls:
        record = call.record
        if owners.get(record) != exit_.owner or _excluded(exit_, record.context):
            continue
        if _reported_by_esp002(exit_, call):
            continue
        position = order[record]
        in_loop = _in_left_loop(exit_, record.context)
        if exit_.kind is ExitKind.CONTINUE:
            if position >= exit_.order and in_loop:
                ranked.append((0, position, call))
        elif in_loop:
            ranked.append((0 if position >= exit_.order else 1, position, call))
        elif position >= exit_.order:
            ranked.append((2, position, call))
    return min(ranked, key=lambda item: item[:2])[2] if ranked else None


def _reported_by_esp002(exit_: LocalExit, call: SymmetricCall) -> bool:
    """A lifecycle call in a loop the exit leaves: ESP002 reports it, citing the loop's exits."""
    loop = call.data_loop
    return call.kind is CallKind.LIFECYCLE and loop is not None and loop in exit_.loops


def _excluded(exit_: LocalExit, context: Context) -> bool:
    """Whether a call with ``context`` is on another branch of a condition around the exit."""
    branches = {id(frame): branch for frame, branch in context if isinstance(frame, Condition)}
    for frame, branch in exit_.context:
        if not isinstance(frame, Condition):
            continue
        other = branches.get(id(frame))
        if other is not None and other != branch:
            return True
    return False


def _in_loop(loop: Loop | None, context: Context) -> bool:
    return loop is not None and any(frame is loop for frame, _ in context)


def _in_left_loop(exit_: LocalExit, context: Context) -> bool:
    """Whether the call is in the body of a loop the exit leaves or restarts (a break or a
    continue: only its own)."""
    if exit_.kind in (ExitKind.BREAK, ExitKind.CONTINUE):
        return _in_loop(exit_.target, context)
    return any(_in_loop(loop, context) for loop in exit_.loops)


def local_exit_nodes(verdict: WaitedIn) -> set[cst.CSTNode]:
    """The nodes a message about ``verdict`` cites (their positions are resolved lazily)."""
    exit_ = verdict.exit
    nodes: set[cst.CSTNode] = {exit_.node}
    if exit_.guard_test is not None:
        nodes.add(exit_.guard_test)
    controller = exit_.controller
    if isinstance(controller, Condition):
        nodes.add(controller.node)
    elif isinstance(controller, Exit):
        nodes.update((controller.node, controller.guard.test))
    if exit_.rank_exit is not None:
        nodes.add(exit_.rank_exit.guard.test)
    if verdict.call is not None:
        nodes.add(verdict.call.node)
    return nodes

"""What controls a call: enclosing conditions, loops and earlier early exits, and the exemptions.

The traversal (``facts``) records, for each call, an immutable context: the chain of enclosing
``(frame, branch)`` pairs since the last def/lambda/class boundary, and the rank-dependent early
exits that precede it. The exemptions need every call of the file, so they are decided after the
traversal: a rank condition whose branches all make the same symmetric calls of a kind (lifecycle
calls, collectives) in the same order does not control the calls of that kind, nor do complementary
"rank 0 first" conditions making the same calls.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from functools import partial

import libcst as cst

from esper_lint.analysis.loops import Loop
from esper_lint.analysis.rank import RANK, Polarity


class ConditionKind(Enum):
    IF = "condition"
    IFEXP = "conditional expression"
    BOOL = "boolean operand"
    MATCH = "match"
    COMPREHENSION_IF = "comprehension condition"
    WHILE = "while condition"
    DECORATOR = "rank-only decorator"
    EXCEPT = "exception handler"


CallKey = tuple[str, str]  # (call text, kind): what "the same call on every branch" compares


@dataclass(eq=False)
class Condition:
    """A condition some code runs under. ``branches[i]`` are the symmetric calls of branch i."""

    kind: ConditionKind
    node: cst.CSTNode  # where the condition is (its line is reported)
    test: cst.CSTNode  # what is shown in the message
    bits: int
    # an if-chain: the ``elif`` that follows, and whether the chain ends with ``else``
    elif_: Condition | None = None
    complete: bool = False  # every branch is listed (if/else, IfExp, match with `case _`)
    branch_count: int = 1
    # call kinds (CallKey[1]) this condition does not control: see decide_exemptions
    exempt_kinds: set[str] = field(default_factory=set)
    branches: dict[int, list[CallKey]] = field(default_factory=dict)

    def controls(self, kind: str) -> bool:
        return bool(self.bits & RANK) and kind not in self.exempt_kinds

    def record(self, branch: int, key: CallKey) -> None:
        self.branches.setdefault(branch, []).append(key)

    def calls_of(self, branch: int, kind: str | None = None) -> list[CallKey]:
        """The calls of ``kind`` (every kind if None) made on ``branch``, in order."""
        return [key for key in self.branches.get(branch, []) if kind in (None, key[1])]

    def kinds(self) -> set[str]:
        return {key[1] for calls in self.branches.values() for key in calls}


Frame = Condition | Loop
Context = tuple[tuple[Frame, int], ...]


class ExitKind(Enum):
    RETURN = "return"
    CONTINUE = "continue"
    BREAK = "break"
    RAISE = "raise"
    EXIT = "exit"  # sys.exit(), exit(), os._exit()


@dataclass(eq=False)
class Exit:
    """A rank-dependent early exit; ``target`` is the loop it leaves, None for the function."""

    kind: ExitKind
    node: cst.CSTNode
    guard: Condition
    target: Loop | None
    branch: int = 0  # the branch of ``guard`` the exit is on (1: the ``else`` of an ``if``)


Exits = tuple[Exit, ...]


@dataclass(frozen=True)
class ComplementCandidate:
    """An ``if`` without ``else`` whose test selects rank 0 (or the other ranks) of a subject."""

    condition: Condition
    subject: str
    polarity: Polarity


def decide_exemptions(
    conditions: Sequence[Condition], complements: Sequence[Sequence[ComplementCandidate]]
) -> None:
    """Mark, per call kind, the conditions that do not control the symmetric calls made under them.

    Kinds are compared apart: ``if rank == 0: tick(); dist.barrier() else: dist.barrier()`` makes
    the barrier on every rank, while the lifecycle call still runs on rank 0 only.
    """
    for condition in conditions:
        if condition.bits & RANK:
            sequences = partial(_branch_sequences, condition)
            condition.exempt_kinds |= _kinds_alike(condition.kinds(), sequences)
    for block in complements:
        _exempt_complementary_pairs(block)


def _kinds_alike(
    kinds: set[str], sequences: Callable[[str | None], list[list[CallKey]] | None]
) -> set[str]:
    """The kinds whose calls are the same, in the same order, in every one of ``sequences``."""
    alike = {kind for kind in kinds if _all_equal(sequences(kind))}
    if alike == kinds and not _all_equal(sequences(None)):
        return set()  # each kind agrees, but interleaved differently: the order differs by rank
    return alike


def _all_equal(sequences: list[list[CallKey]] | None) -> bool:
    if not sequences or not sequences[0]:
        return False
    return all(sequence == sequences[0] for sequence in sequences)


def _branch_sequences(condition: Condition, kind: str | None) -> list[list[CallKey]] | None:
    """The calls of every branch of ``condition``; None if some branch isn't written out."""
    if condition.kind is ConditionKind.IF:
        chain = [condition]
        while chain[-1].elif_ is not None:
            chain.append(chain[-1].elif_)
        if not chain[-1].complete:
            return None
        return [c.calls_of(0, kind) for c in chain] + [chain[-1].calls_of(1, kind)]
    if condition.complete:
        return [condition.calls_of(i, kind) for i in range(condition.branch_count)]
    return None


def _bodies(conditions: Sequence[Condition], kind: str | None) -> list[list[CallKey]]:
    return [condition.calls_of(0, kind) for condition in conditions]


def _exempt_complementary_pairs(block: Sequence[ComplementCandidate]) -> None:
    paired: set[int] = set()
    for i, first in enumerate(block):
        if i in paired:
            continue
        for j in range(i + 1, len(block)):
            second = block[j]
            if j in paired or second.subject != first.subject:
                continue
            if second.polarity is first.polarity:
                continue
            pair = (first.condition, second.condition)
            same = _kinds_alike(pair[0].kinds() | pair[1].kinds(), partial(_bodies, pair))
            if same:
                first.condition.exempt_kinds |= same
                second.condition.exempt_kinds |= same
                paired.update((i, j))
                break


def controlling_condition(context: Context, kind: str) -> Condition | None:
    """The innermost rank-dependent condition controlling a call of ``kind``, if any."""
    for frame, _branch in reversed(context):
        if isinstance(frame, Condition) and frame.controls(kind):
            return frame
    return None


def enclosing_data_loop(context: Context) -> Loop | None:
    """The innermost enclosing loop whose trip count can differ across ranks, if any."""
    for frame, _branch in reversed(context):
        if isinstance(frame, Loop) and frame.data_dependent:
            return frame
    return None

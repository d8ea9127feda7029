"""What controls a call: enclosing conditions, loops and earlier early exits, and the exemptions.

The traversal (``facts``) records, for each call, an immutable context: the chain of enclosing
``(frame, branch)`` pairs since the last def/lambda/class boundary, and the rank-dependent early
exits that precede it. The exemptions need every call of the file, so they are decided after the
traversal: a rank condition whose branches all make the same symmetric calls in the same order does
not control them, nor do complementary "rank 0 first" conditions making the same calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum

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
    exempt: bool = False
    branches: dict[int, list[CallKey]] = field(default_factory=dict)

    @property
    def rank_dependent(self) -> bool:
        return bool(self.bits & RANK) and not self.exempt

    def record(self, branch: int, key: CallKey) -> None:
        self.branches.setdefault(branch, []).append(key)

    def calls_of(self, branch: int) -> list[CallKey]:
        return self.branches.get(branch, [])


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
    """Mark the conditions that do not control the symmetric calls made under them."""
    for condition in conditions:
        if condition.bits & RANK and _same_calls_on_every_branch(condition):
            condition.exempt = True
    for block in complements:
        _exempt_complementary_pairs(block)


def _same_calls_on_every_branch(condition: Condition) -> bool:
    if condition.kind is ConditionKind.IF:
        chain = [condition]
        while chain[-1].elif_ is not None:
            chain.append(chain[-1].elif_)
        if not chain[-1].complete:
            return False
        sequences = [c.calls_of(0) for c in chain] + [chain[-1].calls_of(1)]
    elif condition.complete:
        sequences = [condition.calls_of(i) for i in range(condition.branch_count)]
    else:
        return False
    return bool(sequences[0]) and all(s == sequences[0] for s in sequences[1:])


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
            calls = first.condition.calls_of(0)
            if calls and calls == second.condition.calls_of(0):
                first.condition.exempt = second.condition.exempt = True
                paired.update((i, j))
                break


def controlling_condition(context: Context) -> Condition | None:
    """The innermost non-exempt rank-dependent condition of a call, if any."""
    for frame, _branch in reversed(context):
        if isinstance(frame, Condition) and frame.rank_dependent:
            return frame
    return None


def enclosing_data_loop(context: Context) -> Loop | None:
    """The innermost enclosing loop whose trip count can differ across ranks, if any."""
    for frame, _branch in reversed(context):
        if isinstance(frame, Loop) and frame.data_dependent:
            return frame
    return None

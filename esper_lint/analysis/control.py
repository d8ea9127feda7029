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

from esper_lint.analysis.groups import Group
from esper_lint.analysis.loops import Loop
from esper_lint.analysis.paths import (
    TRUE,
    Atom,
    AtomKind,
    Formula,
    Not,
    conjunction,
    depends_on_rank,
    free_rank_atoms,
    memberships,
)
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
COLLECTIVE = "collective"  # CallKind.COLLECTIVE.value (symbols is not imported here)


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
    # the test as a formula over atoms (for a `BOOL` operand: the formula under which the right
    # operand runs); None where the traversal did not split it
    formula: Formula | None = None
    # the groups of the collectives made under the condition, by branch (filled in like branches)
    groups: dict[int, list[Group]] = field(default_factory=dict)
    previous: Condition | None = None  # the ``if`` of which this condition is the ``elif``

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
    # the frames the exit sits in, from its target loop (or the function) inwards
    path: Context = ()
    exempt_kinds: set[str] = field(default_factory=set)
    # the symmetric calls the exit can skip, in order (filled in after the traversal)
    after: list[CallKey] = field(default_factory=list)


Exits = tuple[Exit, ...]


@dataclass(frozen=True)
class ComplementCandidate:
    """An ``if`` without ``else`` whose test selects rank 0 (or the other ranks) of a subject."""

    condition: Condition
    subject: str
    polarity: Polarity


def decide_exemptions(
    conditions: Sequence[Condition],
    complements: Sequence[Sequence[ComplementCandidate]],
    exits: Sequence[Exit] = (),
) -> None:
    """Mark, per call kind, the conditions that do not control the symmetric calls made under them.

    Kinds are compared apart: ``if rank == 0: tick(); dist.barrier() else: dist.barrier()`` makes
    the barrier on every rank, while the lifecycle call still runs on rank 0 only.
    """
    heads: dict[int, Condition] = {}
    for condition in conditions:
        if condition.bits & RANK:
            sequences = partial(_branch_sequences, condition)
            condition.exempt_kinds |= _kinds_alike(condition.kinds(), sequences)
            if condition.kind is ConditionKind.IF:
                head = condition
                while head.previous is not None:
                    head = head.previous
                heads[id(head)] = head
    for head in heads.values():
        _exempt_role_split(head)
    for block in complements:
        _exempt_complementary_pairs(block)
    for exit_ in exits:
        _exempt_balanced_exit(exit_)


def _exempt_role_split(head: Condition) -> None:
    """``if role == LEADER: bcast(g) … elif role == MEMBER and rank in ranks_of_g: bcast(g) …``.

    An ``if``/``elif`` chain whose branches that make collectives make the same ones, all on
    groups that a membership test of the chain names: the roles are taken to split the group's
    members between those branches, so the chain does not control the collectives.
    """
    chain = _chain(head)
    branches = [(c, 0) for c in chain] + ([(chain[-1], 1)] if chain[-1].complete else [])
    making = [(c, b) for c, b in branches if c.calls_of(b, COLLECTIVE)]
    if len(making) < 2:
        return
    first = making[0][0].calls_of(making[0][1], COLLECTIVE)
    if any(c.calls_of(b, COLLECTIVE) != first for c, b in making[1:]):
        return
    groups = [g for c, b in making for g in c.groups.get(b, [])]
    tests = [atom for c in chain if c.formula is not None for atom in memberships(c.formula)]
    if any(atom.is_member_of_all(groups) for atom in tests):
        for condition in chain:
            condition.exempt_kinds.add(COLLECTIVE)


def _exit_paths(exit_: Exit, kind: str | None) -> list[list[CallKey]] | None:
    """The calls of the ranks that take ``exit_`` and of those that go on past it.

    Only for an exit directly in a branch of a plain ``if`` (no ``elif``): the exiting ranks make
    the branch's calls, the others the other branch's calls and then the calls after the exit.
    """
    guard = exit_.guard
    if guard.kind is not ConditionKind.IF or guard.elif_ is not None:
        return None
    if not exit_.path or exit_.path[-1][0] is not guard:
        return None
    stay = guard.calls_of(1 - exit_.branch, kind)
    after = [key for key in exit_.after if kind in (None, key[1])]
    return [guard.calls_of(exit_.branch, kind), stay + after]


def _exempt_balanced_exit(exit_: Exit) -> None:
    kinds = {key[1] for key in exit_.after} | exit_.guard.kinds()
    alike = _kinds_alike(kinds, partial(_exit_paths, exit_))
    exit_.exempt_kinds |= alike
    exit_.guard.exempt_kinds |= alike


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
        chain = _chain(condition)
        if not chain[-1].complete:
            return None
        return [c.calls_of(0, kind) for c in chain] + [chain[-1].calls_of(1, kind)]
    if condition.complete:
        return [condition.calls_of(i, kind) for i in range(condition.branch_count)]
    return None


def _chain(condition: Condition) -> list[Condition]:
    chain = [condition]
    while chain[-1].elif_ is not None:
        chain.append(chain[-1].elif_)
    return chain


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


# ---------------------------------------------------------------- path conditions


def _literal(condition: Condition, branch: int) -> Formula:
    """The formula under which ``branch`` of ``condition`` runs."""
    test = condition.formula
    if test is None or condition.kind in (ConditionKind.MATCH, ConditionKind.DECORATOR):
        # a match case, a decorator: one opaque atom per branch
        kind = AtomKind.RANK if condition.bits & RANK else AtomKind.UNIFORM
        return Atom(kind, f"{condition.kind.value} {id(condition)}:{branch}")
    if condition.kind is ConditionKind.BOOL:
        return test  # the right operand runs only under this
    return test if branch == 0 else Not(test)


def _relevant(context: Context, kind: str) -> list[tuple[Condition, Formula]]:
    """The conditions of ``context`` that may control a call of ``kind``, with their literals."""
    return [
        (frame, _literal(frame, branch))
        for frame, branch in context
        if isinstance(frame, Condition) and kind not in frame.exempt_kinds
    ]


def _path(relevant: Sequence[tuple[Condition, Formula]]) -> Formula:
    return conjunction([literal for _, literal in relevant]) if relevant else TRUE


def controlling_condition(
    context: Context, kind: str, groups: Sequence[Group] = ()
) -> Condition | None:
    """The innermost rank-dependent condition controlling a call of ``kind``, if any.

    None when the call's path condition does not depend on the rank (within ``groups``, the
    groups the call's collectives run on): an ``elif`` whose own test cancels the rank part of
    the ``if``, a membership test of the call's group.
    """
    relevant = _relevant(context, kind)
    if not depends_on_rank(_path(relevant), groups):
        return None
    for frame, literal in reversed(relevant):
        if frame.bits & RANK and free_rank_atoms(literal, groups):
            return frame
    for frame, _ in reversed(relevant):
        if frame.controls(kind):
            return frame
    return None


def exit_applies(exit_: Exit, kind: str, groups: Sequence[Group] = ()) -> bool:
    """Whether ``exit_`` can skip a call of ``kind`` on ``groups`` on some of its ranks only."""
    if kind in exit_.exempt_kinds or kind in exit_.guard.exempt_kinds:
        return False
    return depends_on_rank(_path(_relevant(exit_.path, kind)), groups)


def skipping_exit(exits: Sequence[Exit], kind: str, groups: Sequence[Group] = ()) -> Exit | None:
    """The nearest earlier rank-dependent early exit that can skip a call of ``kind``."""
    for exit_ in reversed(exits):
        if exit_applies(exit_, kind, groups):
            return exit_
    return None


def membership_near_miss(
    context: Context, kind: str, groups: Sequence[Group], op: str
) -> str | None:
    """Why a membership test among ``context``'s conditions does not make the call symmetric."""
    relevant = _relevant(context, kind)
    tests = [atom for _, literal in relevant for atom in memberships(literal)]
    if not tests:
        return None
    return _membership_reason(tests, _path(relevant), groups, op)


def exit_near_miss(exit_: Exit, kind: str, groups: Sequence[Group], op: str) -> str | None:
    """Why a membership exit, or the calls on both sides of an exit, do not excuse the call."""
    relevant = _relevant(exit_.path, kind)
    tests = [atom for _, literal in relevant for atom in memberships(literal)]
    if tests:
        return _membership_reason(tests, _path(relevant), groups, op)
    sequences = _exit_paths(exit_, kind)
    if sequences is not None and any(sequences):
        return (
            f"the ranks that exit make {_sequence(sequences[0])} and the others make "
            f"{_sequence(sequences[1])}"
        )
    return None


def branches_near_miss(condition: Condition, kind: str) -> str | None:
    """Why the branches of ``condition`` do not make the same calls, when two of them make some."""
    sequences = _branch_sequences(condition, kind)
    if sequences is None and condition.kind is ConditionKind.IF:
        sequences = [c.calls_of(0, kind) for c in _chain(condition)] + [[]]
    if sequences is None or sum(1 for s in sequences if s) < 2:
        return None
    shown = " vs ".join(_sequence(s) for s in sequences)
    return f"its branches make different sequences of collectives ({shown})"


def _sequence(keys: Sequence[CallKey]) -> str:
    shown = (key[0].removeprefix("torch.distributed.") for key in keys)
    return f"[{', '.join(shown)}]"


def _membership_reason(
    tests: Sequence[Atom], path: Formula, groups: Sequence[Group], op: str
) -> str:
    matched = [atom for atom in tests if atom.is_member_of_all(groups)]
    if op in ("new_group", "new_subgroups", "new_subgroups_by_enumeration") and not matched:
        return (
            f"{op}() without use_local_synchronization=True must be called by every rank of "
            "the world, members or not"
        )
    if matched:
        rest = [atom.display for atom in free_rank_atoms(path, groups)]
        return (
            "the membership test matches the call's group, but "
            f"{' and '.join(rest)} {'differs' if len(rest) == 1 else 'differ'} within it"
        )
    shown = tests[0].display
    if not groups or all(group.is_world for group in groups):
        return (
            f"the membership test ({shown}) is of a subgroup, but the call runs on the whole world"
        )
    texts = ", ".join(sorted({group.text or "the world" for group in groups}))
    return f"the membership test ({shown}) is not of the call's group ({texts})"


def enclosing_data_loop(context: Context) -> Loop | None:
    """The innermost enclosing loop whose trip count can differ across ranks, if any."""
    for frame, _branch in reversed(context):
        if isinstance(frame, Loop) and frame.data_dependent:
            return frame
    return None

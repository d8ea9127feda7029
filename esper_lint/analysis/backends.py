"""Backend guards: conditions that also decide on the training backend, not only on the rank.

``if accelerator.is_main_process or accelerator.distributed_type == DistributedType.DEEPSPEED:``
runs its body on rank 0 under DDP, and on every rank under DeepSpeed, where ``save_state`` is a
collective. This module reads a condition, under each backend, as one of four states: true on
every rank, false on every rank, the same on every rank (unknown which), or varying by rank.

A *backend test* is a part of a condition that names a backend: ``DistributedType.DEEPSPEED``,
``is_deepspeed_zero3_enabled()``, ``args.deepspeed``, ``self.is_fsdp_enabled``,
``isinstance(model, FSDP)``, ``distributed_type in (DEEPSPEED, FSDP)``. It is true on every rank
under the backends it names and false under the others; ``!=``, ``is not``, ``not in`` and a
comparison with ``None`` invert it (``deepspeed_plugin is not None``). Any other part varies if
``is_rank_dependent`` says it depends on the rank, and is the same on every rank otherwise. (The
backend words are specific enough that no rank name contains one: ``ddp_rank`` is no backend.)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from enum import Enum

import libcst as cst

from esper_lint.analysis.backend_names import BACKENDS, DDP, DEEPSPEED, FSDP
from esper_lint.analysis.control import Condition, ConditionKind, Context, Exits
from esper_lint.analysis.rank import RANK, Sources, reads_rank
from esper_lint.analysis.tree import descendants

# Lower-cased parts of names that name a backend (``DistributedType.MULTI_GPU`` is plain DDP).
BACKEND_WORDS: dict[str, tuple[str, ...]] = {
    DEEPSPEED: ("deepspeed", "zero3", "zero_stage", "zero_optimization"),
    FSDP: ("fsdp", "fully_shard", "fullyshard"),
    DDP: ("multi_gpu", "distributeddataparallel"),
}


class State(Enum):
    TRUE = "true on every rank"
    FALSE = "false on every rank"
    UNIFORM = "the same on every rank"
    VARIES = "varies by rank"

    def negated(self) -> State:
        if self is State.TRUE:
            return State.FALSE
        if self is State.FALSE:
            return State.TRUE
        return self


RankTest = Callable[[cst.BaseExpression], bool]


class Reach(Enum):
    """Which ranks make a call, under one backend."""

    EVERY = "every rank"
    NONE = "no rank"
    SOME = "some ranks"


def backend_guarded(
    context: Context, exits: Exits, backends: Iterable[str], is_rank_dependent: RankTest
) -> bool:
    """Whether the conditions and exits before a call decide on the backend as well as the rank.

    True when, under one of ``backends``, every rank makes the call (``is_main_process or
    distributed_type == DEEPSPEED``), or when under each of them every rank or none makes it
    (``is_main_process and distributed_type == MULTI_GPU`` keeps a sharded-only collective off
    every rank of a sharded job).
    """
    reaches = [reach_under(context, exits, backend, is_rank_dependent) for backend in backends]
    return Reach.EVERY in reaches or (bool(reaches) and Reach.SOME not in reaches)


def reach_under(context: Context, exits: Exits, backend: str, is_rank_dependent: RankTest) -> Reach:
    """Which ranks of a job that trains with ``backend`` get past ``context`` and ``exits``."""
    varies = False
    for frame, branch in context:
        if not isinstance(frame, Condition):
            continue
        state = _frame_state(frame, branch, backend, is_rank_dependent)
        if state is State.FALSE:
            return Reach.NONE
        varies = varies or state is State.VARIES
    for exit_ in exits:
        taken = _frame_state(exit_.guard, exit_.branch, backend, is_rank_dependent)
        varies = varies or taken is State.VARIES
    return Reach.SOME if varies else Reach.EVERY


def _frame_state(
    condition: Condition, branch: int, backend: str, is_rank_dependent: RankTest
) -> State:
    """Whether the ranks are on ``branch`` of ``condition``: TRUE if all are, FALSE if none."""
    if condition.kind is ConditionKind.DECORATOR:
        return State.VARIES
    if condition.kind in (ConditionKind.MATCH, ConditionKind.EXCEPT):
        return State.VARIES if condition.bits & RANK else State.UNIFORM
    test = condition.test
    assert isinstance(test, cst.BaseExpression)
    rank_test: RankTest = _never
    if condition.bits & RANK:
        # The traversal found the rank in the test; if no part shows it by name, it came through
        # a binding (`main = accelerator.is_main_process`): read every non-backend part as rank.
        rank_test = is_rank_dependent if is_rank_dependent(test) else _always
    state = state_under(test, backend, rank_test)
    if branch == 1:
        return state.negated()  # the else of an if or of a conditional expression
    node = condition.node
    if isinstance(node, cst.BooleanOperation) and isinstance(node.operator, cst.Or):
        return state.negated()  # `a or f()` calls f where a is false
    return state


def _never(_node: cst.BaseExpression) -> bool:
    return False


def _always(_node: cst.BaseExpression) -> bool:
    return True


def rank_test_by_name(sources: Sources) -> RankTest:
    """A rank test that reads names only: the parts of a rank condition are read again after
    the traversal, without its bindings (``main = is_main_process()`` is not followed)."""

    def is_rank_dependent(node: cst.BaseExpression) -> bool:
        return reads_rank(node, sources)

    return is_rank_dependent


def state_under(test: cst.BaseExpression, backend: str, is_rank_dependent: RankTest) -> State:
    """How ``test`` reads on the ranks of a job that trains with ``backend``."""
    if isinstance(test, cst.UnaryOperation) and isinstance(test.operator, cst.Not):
        return state_under(test.expression, backend, is_rank_dependent).negated()
    if isinstance(test, cst.BooleanOperation):
        left = state_under(test.left, backend, is_rank_dependent)
        right = state_under(test.right, backend, is_rank_dependent)
        if isinstance(test.operator, cst.Or):
            return _or(left, right)
        return _or(left.negated(), right.negated()).negated()
    named = named_backends(test)
    if named:
        truth = (backend in named) is _positive(test)
        return State.TRUE if truth else State.FALSE
    return State.VARIES if is_rank_dependent(test) else State.UNIFORM


def mentions_backend(test: cst.BaseExpression) -> bool:
    """Whether any part of ``test`` names a backend (a cheap first question)."""
    return bool(_words_in(test))


def named_backends(node: cst.BaseExpression) -> frozenset[str]:
    """The backends a leaf of a condition names (empty if none)."""
    words = _words_in(node)
    return frozenset(
        backend
        for backend in BACKENDS
        if any(part in word for word in words for part in BACKEND_WORDS[backend])
    )


def _or(left: State, right: State) -> State:
    if State.TRUE in (left, right):
        return State.TRUE
    if left is State.FALSE and right is State.FALSE:
        return State.FALSE
    if State.VARIES in (left, right):
        return State.VARIES
    return State.UNIFORM


def _positive(test: cst.BaseExpression) -> bool:
    """False for the negated forms: ``!=``, ``is not``, ``not in``; flipped by ``None``."""
    if not isinstance(test, cst.Comparison) or len(test.comparisons) != 1:
        return True
    target = test.comparisons[0]
    positive = not isinstance(target.operator, (cst.NotEqual, cst.IsNot, cst.NotIn))
    against_none = any(
        isinstance(side, cst.Name) and side.value == "None"
        for side in (test.left, target.comparator)
    )
    return positive is not against_none


def _words_in(node: cst.CSTNode) -> list[str]:
    """The lower-cased names, attributes and string values inside ``node``."""
    return [
        current.value.lower()
        for current in descendants(node)
        if isinstance(current, (cst.Name, cst.SimpleString))
    ]

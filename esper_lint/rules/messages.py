"""How the rules phrase what the analysis found (PARCOACH's shape: call, verdict, cause)."""

from __future__ import annotations

import libcst as cst

from esper_lint.analysis.control import Condition, ConditionKind, Exit
from esper_lint.analysis.facts import FileFacts
from esper_lint.analysis.loops import Loop, LoopReason, loop_line_node

_EXIT_WORDS: dict[type[cst.CSTNode], str] = {
    cst.Return: "return",
    cst.Break: "break",
    cst.Continue: "continue",
    cst.Raise: "raise",
    cst.Expr: "exit",
}
_GUARD_PREFIX = {
    ConditionKind.IF: "if ",
    ConditionKind.WHILE: "while ",
    ConditionKind.MATCH: "match ",
    ConditionKind.COMPREHENSION_IF: "if ",
    ConditionKind.EXCEPT: "except ",
}


def controlled_by(facts: FileFacts, condition: Condition) -> str:
    """``it is controlled by the rank-dependent condition at line 24 (rank == 0)``."""
    if condition.kind is ConditionKind.DECORATOR:
        decorator = condition.node
        assert isinstance(decorator, cst.Decorator)
        text = facts.text(decorator.decorator)
        line = facts.line(decorator)
        return f"it is controlled by the rank-only decorator at line {line} (@{text})"
    what = "match" if condition.kind is ConditionKind.MATCH else "condition"
    line = facts.line(condition.test)
    text = facts.text(condition.test)
    return f"it is controlled by the rank-dependent {what} at line {line} ({text})"


def skipped_by(facts: FileFacts, exit_: Exit) -> str:
    """``the rank-dependent early return at line 8 (if rank != 0) can skip it``."""
    word = _EXIT_WORDS.get(type(exit_.node), exit_.kind.value)
    guard = _GUARD_PREFIX.get(exit_.guard.kind, "") + facts.text(exit_.guard.test)
    if exit_.guard.kind is ConditionKind.IF and exit_.branch == 1:
        guard = f"else of {guard}"
    line = facts.line(exit_.node)
    return f"the rank-dependent early {word} at line {line} ({guard}) can skip it"


def loop_depends_on(facts: FileFacts, loop: Loop) -> str:
    """``it is inside the loop at line 12, whose trip count depends on data (train_loader)``."""
    line = facts.line(loop_line_node(loop))
    head = f"it is inside the loop at line {line}, whose trip count depends on"
    assert loop.evidence is not None
    evidence = facts.text(loop.evidence)
    if loop.reason is LoopReason.GUARDED_EXIT and loop.exit_node is not None:
        word = _EXIT_WORDS.get(type(loop.exit_node), "exit")
        line = facts.line(loop.exit_node)
        return f"{head} the {word} at line {line} ({loop.guard_word}{evidence})"
    return f"{head} data ({evidence})"

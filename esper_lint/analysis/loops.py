"""Loops, and which of them have a trip count that can differ across ranks.

A loop is data-dependent when it iterates over a DataLoader-like value (ITER), when its ``while``
test reads data or time, when it is driven by ``next()`` over such data, or when it holds a
``break``/``return`` guarded by a data-, time- or rank-dependent condition. ``range()``, model
structure and counters are not data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import libcst as cst

from esper_lint.analysis.rank import ITER_WRAPPERS
from esper_lint.analysis.symbols import final_name


class LoopReason(Enum):
    ITERABLE = "iterable"  # for over a loader, while test on data, next() over data
    GUARDED_EXIT = "guarded exit"  # a break/return under a data- or rank-dependent condition


@dataclass(eq=False)
class Loop:
    """One ``for``/``while`` loop or comprehension ``for`` clause."""

    node: cst.CSTNode
    reason: LoopReason | None = None
    # What the trip count depends on: the iterable, the while test, or the guarding condition.
    evidence: cst.CSTNode | None = None
    exit_node: cst.CSTNode | None = field(default=None)
    guard_word: str = ""  # "if ", "except ": how the guard reads before its text

    @property
    def data_dependent(self) -> bool:
        return self.reason is not None

    def mark_iterable(self, evidence: cst.CSTNode) -> None:
        if self.reason is None:
            self.reason, self.evidence = LoopReason.ITERABLE, evidence

    def mark_guarded_exit(self, exit_node: cst.CSTNode, guard: cst.CSTNode, word: str) -> None:
        if self.reason is None:
            self.reason, self.evidence, self.exit_node = LoopReason.GUARDED_EXIT, guard, exit_node
            self.guard_word = word


def unwrap_iterable(node: cst.BaseExpression) -> cst.BaseExpression:
    """``enumerate(tqdm(train_loader))`` -> ``train_loader``: wrappers keep the trip count."""
    while (
        isinstance(node, cst.Call) and final_name(node.func) in ITER_WRAPPERS and len(node.args) > 0
    ):
        node = node.args[0].value
    return node


def loop_line_node(loop: Loop) -> cst.CSTNode:
    """The node whose line is the loop's line (a comprehension clause has no syntactic range)."""
    node = loop.node
    return node.iter if isinstance(node, cst.CompFor) else node

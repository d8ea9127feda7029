"""Positions of a few nodes, at the cost of one plain code generation.

libcst's ``PositionProvider`` records a range for every node through a generator-based context
manager and costs two to three times the parse. The rules only need the positions of the nodes
they report or cite, so this pass tracks the line and column while generating code, records only
those nodes, and stops at the first top-level statement after the last of them.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from contextlib import AbstractContextManager, nullcontext
from types import TracebackType

import libcst as cst
from libcst._nodes.internal import CodegenState
from libcst.metadata import CodePosition, CodeRange

_NEWLINE = re.compile(r"\r\n?|\n")


class _Recorder:
    __slots__ = ("state", "node", "start")

    def __init__(self, state: _PositionState, node: cst.CSTNode) -> None:
        self.state = state
        self.node = node
        self.start = CodePosition(state.line, state.column)

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        state = self.state
        end = CodePosition(state.line, state.column)
        state.found.setdefault(self.node, CodeRange(self.start, end))


_NOTHING: AbstractContextManager[None] = nullcontext()  # reusable: it holds no state


class _PositionState(CodegenState):
    """Generates no text: only follows the line and column, like libcst's position state."""

    def __init__(self, module: cst.Module, targets: Collection[cst.CSTNode]) -> None:
        super().__init__(
            default_indent=module.default_indent, default_newline=module.default_newline
        )
        self.targets = targets
        self.found: dict[cst.CSTNode, CodeRange] = {}
        self.line = 1
        self.column = 0

    def add_indent_tokens(self) -> None:
        for token in self.indent_tokens:
            self.add_token(token)

    def add_token(self, value: str) -> None:
        if "\n" not in value and "\r" not in value:
            self.column += len(value)
            return
        segments = _NEWLINE.split(value)
        self.line += len(segments) - 1
        self.column = len(segments[-1])

    def pop_trailing_newline(self) -> None:
        return None

    def record_syntactic_position(  # type: ignore[override]
        self,
        node: cst.CSTNode,
        *,
        start_node: cst.CSTNode | None = None,
        end_node: cst.CSTNode | None = None,
    ) -> AbstractContextManager[None]:
        # Statements hoist their end from their body; only their start is ever asked for.
        return _Recorder(self, node) if node in self.targets else _NOTHING


def positions_of(
    module: cst.Module, targets: Collection[cst.CSTNode]
) -> dict[cst.CSTNode, CodeRange]:
    """The syntactic range (as ``PositionProvider`` gives it) of each target node."""
    state = _PositionState(module, targets)
    for header in module.header:
        header._codegen(state)
    for statement in module.body:
        statement._codegen(state)
        if len(state.found) >= len(targets):
            break
    return state.found

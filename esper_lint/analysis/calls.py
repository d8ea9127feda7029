"""The calls a file makes that must run on every rank, direct or through helper functions.

The traversal records every call that is symmetric itself (a lifecycle call, a collective) or may
resolve to a helper function (``CallRecord``), and each function's own records
(``FunctionInfo``). After the walk, ``HelperChains`` follows helper calls to the symmetric calls
they make (``SymmetricCall.chain``: ``sync() -> dist.all_reduce()``); recursion ends at a
function already being followed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import libcst as cst

from esper_lint.analysis.control import (
    Condition,
    Context,
    Exit,
    Exits,
    controlling_condition,
    enclosing_data_loop,
)
from esper_lint.analysis.implicit_collectives import ImplicitCollective
from esper_lint.analysis.loops import Loop
from esper_lint.analysis.rank import NONE, RANK
from esper_lint.analysis.symbols import CallKind, dotted_name

if TYPE_CHECKING:
    from esper_lint.analysis.summaries import FunctionSummary, ModuleContext


@dataclass(eq=False)
class CallRecord:
    """A call that is symmetric itself or may resolve to a same-file helper."""

    node: cst.Call
    kind: CallKind | None
    helper_key: str | None
    context: Context
    exits: Exits
    implicit: ImplicitCollective | None = None  # the table entry of an IMPLICIT call (ESP006)


@dataclass(eq=False)
class FunctionInfo:
    key: str
    records: list[CallRecord] = field(default_factory=list)
    return_bits: int = NONE
    # per-position bits when every `return` returns a tuple of the same length
    element_returns: list[int] | None = None
    mixed_returns: bool = False
    params: tuple[str, ...] = ()
    rank_zero_decorator: bool = False  # see calls_wrapped_only_under_rank

    def note_return(self, parts: list[int] | None) -> None:
        if parts is None or self.mixed_returns:
            self.mixed_returns = True
            self.element_returns = None
        elif self.element_returns is None:
            self.element_returns = parts
        elif len(self.element_returns) == len(parts):
            self.element_returns = [a | b for a, b in zip(self.element_returns, parts, strict=True)]
        else:
            self.mixed_returns = True
            self.element_returns = None


@dataclass(frozen=True, eq=False)
class SymmetricCall:
    """A lifecycle call or collective, possibly through same-file helpers (``chain``)."""

    record: CallRecord
    kind: CallKind
    chain: tuple[str, ...]
    terminal: CallRecord | None = None  # the call at the end of ``chain``, when not ``record``

    @property
    def implicit(self) -> ImplicitCollective | None:
        """The implicit-collectives table entry of the call at the end of the chain (ESP006)."""
        return (self.terminal or self.record).implicit

    @property
    def node(self) -> cst.Call:
        return self.record.node

    @property
    def text(self) -> str:
        return " -> ".join(self.chain)

    @property
    def condition(self) -> Condition | None:
        """The rank-dependent condition (or rank-only decorator) controlling this call."""
        return controlling_condition(self.record.context, self.kind.value)

    @property
    def data_loop(self) -> Loop | None:
        """The innermost enclosing loop with a data-dependent trip count."""
        return enclosing_data_loop(self.record.context)

    @property
    def early_exit(self) -> Exit | None:
        """The nearest earlier rank-dependent early exit that can skip this call."""
        return self.record.exits[-1] if self.record.exits else None


Chain = tuple[str, ...]
# a chain, and the record of the symmetric call at its end
Found = tuple[Chain, CallRecord | None]


class HelperChains:
    """Which symmetric calls each recorded call makes, through the functions of ``functions``."""

    def __init__(
        self,
        module: cst.Module,
        functions: dict[str, FunctionInfo],
        project: ModuleContext | None = None,
    ) -> None:
        self.module = module
        self.functions = functions
        self.project = project
        self.memo: dict[tuple[str, CallKind], Found | None] = {}

    def symmetric_calls(self, records: list[CallRecord]) -> list[SymmetricCall]:
        calls: list[SymmetricCall] = []
        for record in records:
            if record.kind is not None:
                calls.append(SymmetricCall(record, record.kind, (self.display(record),)))
                continue
            assert record.helper_key is not None
            for kind in CallKind:
                found = self.chain(record.helper_key, kind, frozenset())
                if found is not None:
                    chain, terminal = found
                    display = (self.display(record), *chain)
                    calls.append(SymmetricCall(record, kind, display, terminal))
        return calls

    def chain(self, key: str, kind: CallKind, visiting: frozenset[str]) -> Found | None:
        """The calls from function ``key`` down to a symmetric call of ``kind``, if it makes one,
        and that call's record."""
        if (key, kind) in self.memo:
            return self.memo[(key, kind)]
        if is_external(key):
            summary = self._external(key)
            external = summary.chains.get(kind.value) if summary is not None else None
            return (external, None) if external is not None else None  # no record across files
        info = self.functions.get(key)
        if info is None or key in visiting:
            return None
        found: Found | None = None
        for record in info.records:
            if record.kind is kind:
                found = ((self.display(record),), record)
                break
            if record.kind is None and record.helper_key is not None:
                sub = self.chain(record.helper_key, kind, visiting | {key})
                if sub is not None:
                    found = ((self.display(record), *sub[0]), sub[1])
                    break
        self.memo[(key, kind)] = found
        return found

    def display(self, record: CallRecord) -> str:
        func = record.node.func
        text = dotted_name(func)
        if text is None:
            text = " ".join(self.module.code_for_node(func).split())
        summary = self._external(record.helper_key)
        if summary is not None and self.project is not None and summary.file != self.project.file:
            return f"{summary.file}: {text}()"  # a hop into another file names that file
        return f"{text}()"

    def _external(self, key: str | None) -> FunctionSummary | None:
        if key is None or self.project is None or not is_external(key):
            return None
        module, _, name = key.partition(":")
        return self.project.function(module, name)


def is_external(key: str) -> bool:
    """Keys of functions in other modules read ``module:Class.method``; local keys have no colon."""
    return ":" in key


def external_key(module: str, name: str) -> str:
    return f"{module}:{name}"


def calls_wrapped_only_under_rank(info: FunctionInfo, functions: dict[str, FunctionInfo]) -> bool:
    """Whether ``info`` is a rank-zero decorator: the functions it defines call one of its
    parameters (the wrapped function), and only under a rank-dependent condition or after a
    rank-dependent early exit. A wrapper that calls it unconditionally is an ordinary decorator.
    """
    params = set(info.params)
    if not params:
        return False
    prefix = f"{info.key}.<locals>."
    wrapped = [
        record
        for key, nested in functions.items()
        if key.startswith(prefix) and "<locals>" not in key[len(prefix) :]
        for record in nested.records
        if isinstance(record.node.func, cst.Name) and record.node.func.value in params
    ]
    return bool(wrapped) and all(_rank_guarded(record) for record in wrapped)


def _rank_guarded(record: CallRecord) -> bool:
    if record.exits:
        return True
    return any(isinstance(frame, Condition) and frame.bits & RANK for frame, _ in record.context)

"""The state of the single traversal, shared by the rooms that each handle part of the tree.

``build_facts`` walks a module once. The walk is hand-written (no libcst visitor, no metadata
providers) and split by the question each part answers:

- ``scopes.ScopeWalk``: definitions, imports and bindings ("what does this name or call resolve
  to");
- ``values.ValueWalk``: expressions and assignments ("does this value differ across ranks");
- ``flow.FlowWalk``: statements and the expressions that guard others ("what controls this call":
  conditions, loops, early exits).

Each room is a mixin over ``WalkState``; the concrete walker (``facts``) combines them and owns
the dispatch tables. The hooks below are what one room calls in another.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import libcst as cst

from esper_lint.analysis.calls import CallRecord, FunctionInfo
from esper_lint.analysis.control import (
    ComplementCandidate,
    Condition,
    Context,
    Exit,
    ExitKind,
    Exits,
)
from esper_lint.analysis.groups import GroupTracker
from esper_lint.analysis.implicit import ImplicitCalls
from esper_lint.analysis.implicit import Scope as BindingScope
from esper_lint.analysis.local_exits import LocalExit

if TYPE_CHECKING:
    from esper_lint.analysis.values import Witness
from esper_lint.analysis.loops import Loop
from esper_lint.analysis.rank import NONE, Sources
from esper_lint.analysis.symbols import Imports, SymmetricNames

if TYPE_CHECKING:
    from esper_lint.analysis.summaries import FunctionSummary, ModuleContext

_SKIPPED_FIELDS = frozenset(
    {
        "lpar",
        "rpar",
        "comma",
        "semicolon",
        "operator",
        "leading_lines",
        "lines_after_decorators",
        "header",
        "footer",
        "equal",
        "star",
        "colon",
        "lbracket",
        "rbracket",
        "lbrace",
        "rbrace",
        "dot",
        "newline",
        "annotation",
    }
)
_CHILD_FIELDS: dict[type[cst.CSTNode], tuple[str, ...]] = {}


def _child_fields(node_type: type[cst.CSTNode]) -> tuple[str, ...]:
    fields = _CHILD_FIELDS.get(node_type)
    if fields is None:
        fields = tuple(
            f.name
            for f in dataclasses.fields(node_type)
            if f.name not in _SKIPPED_FIELDS and not f.name.startswith("whitespace")
        )
        _CHILD_FIELDS[node_type] = fields
    return fields


@dataclasses.dataclass
class Scope:
    bindings: dict[str, int]
    is_class: bool = False
    # name -> the expression it was last assigned (what ``values.why_local`` explains it by)
    origins: dict[str, cst.CSTNode] = dataclasses.field(default_factory=dict)


class WalkState:
    """Stacks and tables of one traversal. ``stmt``/``expr`` return escaping exits / bits."""

    stmt_handlers: dict[type[cst.CSTNode], Callable[[cst.CSTNode], Exits]]
    expr_handlers: dict[type[cst.CSTNode], Callable[[cst.CSTNode], int]]

    def __init__(
        self,
        module: cst.Module,
        names: SymmetricNames,
        sources: Sources,
        known_returns: dict[str, int],
        implicit: ImplicitCalls,
        project: ModuleContext | None = None,
    ) -> None:
        self.module = module
        self.project = project  # None: the file alone, as if it had no project
        self.names = names
        self.sources = sources
        self.implicit = implicit  # the implicit-collectives table, and what names hold (ESP006)
        self.constructed = implicit.new_bindings()
        self.imports = Imports()
        # which groups and ranks lists the file builds (``groups``); every rank-dependent exit
        self.groups = GroupTracker(module, self.imports.qualify)
        self.all_exits: list[Exit] = []
        self.known_returns = dict(known_returns)
        self.known_elements: dict[str, list[int]] = {}
        self.used_before_definition: set[str] = set()
        self.functions: dict[str, FunctionInfo] = {}
        # (key, names of the defs nested directly in it) of each enclosing function, outermost first
        self.local_defs: list[tuple[str, frozenset[str]]] = []
        self.records: list[CallRecord] = []
        self.conditions: list[Condition] = []
        self.complements: list[list[ComplementCandidate]] = []
        self.scopes: list[Scope] = [Scope({})]
        self.class_attrs: dict[tuple[str, str], int] = {}
        # class name -> the methods its body defines, and the refs ("module:Class") of its bases
        self.class_methods: dict[str, frozenset[str]] = {}
        self.class_bases: dict[str, tuple[str, ...]] = {}
        self.context: Context = ()
        self.exits: Exits = ()
        self.owner: FunctionInfo | None = None
        self.class_body: str | None = None  # the class whose body is being walked directly
        self.method_class: str | None = None  # the class of the enclosing method
        # exits only some ranks may take (ESP005), and how many `try` bodies with handlers (which
        # catch a `raise`) enclose the current statement
        self.local_exits: list[LocalExit] = []
        self.catching = 0

    def walk(self) -> None:
        self._block(self.module.body)

    def _generic(self, node: cst.CSTNode) -> int:
        bits = NONE
        for name in _child_fields(type(node)):
            value = getattr(node, name)
            if isinstance(value, cst.CSTNode):
                bits |= self.expr(value)
            elif isinstance(value, (tuple, list)):
                for item in value:
                    if isinstance(item, cst.CSTNode):
                        bits |= self.expr(item)
        return bits

    def _generic_statement(self, node: cst.CSTNode) -> Exits:
        self._generic(node)
        return ()

    # ------------------------------------------------ hooks, defined by the rooms

    def expr(self, node: cst.CSTNode) -> int:
        raise NotImplementedError

    def _block(self, statements: Sequence[cst.CSTNode]) -> Exits:
        raise NotImplementedError

    def _suite(self, suite: cst.BaseSuite) -> Exits:
        raise NotImplementedError

    def _in_frame(self, frame: Condition | Loop, branch: int, suite: cst.BaseSuite) -> Exits:
        raise NotImplementedError

    def _exit(self, kind: ExitKind, node: cst.CSTNode) -> Exits:
        raise NotImplementedError

    def _mark_while_driven_by_next(self, node: cst.Call) -> None:
        raise NotImplementedError

    def why_local(self, test: cst.CSTNode) -> Witness | None:
        raise NotImplementedError

    def _origin(self, name: str) -> cst.CSTNode | None:
        raise NotImplementedError

    def _decorator_condition(self, decorators: Sequence[cst.Decorator]) -> Condition | None:
        raise NotImplementedError

    def _bind(self, target: cst.CSTNode, bits: int, opaque: bool = False) -> None:
        raise NotImplementedError

    def _binding(self, name: str) -> int | None:
        raise NotImplementedError

    def _lookup(self, name: str) -> int:
        raise NotImplementedError

    def _helper_key(self, func: cst.BaseExpression) -> str | None:
        raise NotImplementedError

    def _params_defaults(self, params: cst.Parameters) -> None:
        raise NotImplementedError

    def _param_bindings(self, params: cst.Parameters) -> dict[str, int]:
        raise NotImplementedError

    def _element_values(self, value: cst.BaseExpression, count: int) -> list[int] | None:
        raise NotImplementedError

    def _is_symmetric(self, node: cst.BaseExpression) -> bool:
        raise NotImplementedError

    def _note_constructed(self, target: cst.BaseExpression, value: cst.BaseExpression) -> None:
        raise NotImplementedError

    def _binding_scope(self) -> BindingScope:
        raise NotImplementedError

    def _external(self, key: str | None) -> FunctionSummary | None:
        raise NotImplementedError

    def _returns_of(self, key: str) -> int | None:
        raise NotImplementedError

    def _is_rank_zero_decorator(self, target: cst.BaseExpression) -> bool:
        raise NotImplementedError

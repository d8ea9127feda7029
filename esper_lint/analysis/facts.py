"""The facts the rules ask about, gathered by one traversal of a module.

``build_facts(module, config) -> FileFacts``: the symmetric calls of the file, each with what
controls it. The traversal is one pass over the tree, split by question (see ``traversal``):
``scopes`` (what names and calls resolve to), ``values`` (what differs across ranks) and ``flow``
(what controls a call). Positions are resolved only when a rule reports something
(``FileFacts.line``).
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

import libcst as cst
from libcst.metadata import CodeRange

from esper_lint.analysis.calls import CallRecord, FunctionInfo, HelperChains, SymmetricCall
from esper_lint.analysis.control import Condition, decide_exemptions
from esper_lint.analysis.flow import FlowWalk
from esper_lint.analysis.implicit import ImplicitCalls
from esper_lint.analysis.local_exits import WaitedIn, local_exit_nodes, waited_in
from esper_lint.analysis.loops import loop_line_node
from esper_lint.analysis.positions import positions_of
from esper_lint.analysis.rank import NONE, RANK, UNIFORM, Sources
from esper_lint.analysis.scopes import ScopeWalk
from esper_lint.analysis.symbols import CallKind, SymmetricNames
from esper_lint.analysis.values import ValueWalk, is_uniform
from esper_lint.config import Config

if TYPE_CHECKING:
    from esper_lint.analysis.summaries import ModuleContext

__all__ = ["CallRecord", "FileFacts", "FunctionInfo", "SymmetricCall", "Walker", "build_facts"]

MAX_EXTRA_PASSES = 2


class FileFacts:
    """What the rules ask: the symmetric calls, what controls them, and where things are."""

    def __init__(
        self,
        module: cst.Module,
        calls: list[SymmetricCall],
        sources: Sources | None = None,
        local_exits: list[WaitedIn] | None = None,
        uniform_calls: set[cst.Call] | None = None,
    ) -> None:
        self.module = module
        self.calls = calls
        self.sources = sources if sources is not None else Sources.from_config(Config())
        # exits only some ranks take, each with the symmetric call the others wait in (ESP005)
        self.local_exits = local_exits if local_exits is not None else []
        self._uniform_calls = uniform_calls or set()

    def returns_uniform(self, call: cst.Call) -> bool:
        """Whether ``call`` calls a (project or same-file) function whose result comes from a
        reduction or broadcast, and so is the same on every rank."""
        return call in self._uniform_calls

    def backend_guarded(self, call: SymmetricCall, backends: frozenset[str]) -> bool:
        """Whether what controls ``call`` decides on the backend too (see ``backends``)."""
        from esper_lint.analysis.backends import backend_guarded, rank_test_by_name

        record = call.record
        return backend_guarded(
            record.context, record.exits, sorted(backends), rank_test_by_name(self.sources)
        )

    def calls_of(self, kind: CallKind) -> list[SymmetricCall]:
        return [call for call in self.calls if call.kind is kind]

    @cached_property
    def _positions(self) -> dict[cst.CSTNode, CodeRange]:
        targets = self._citable_nodes()
        found = positions_of(self.module, targets)
        if len(found) < len(targets):
            # A libcst release whose code generation the lean pass does not follow.
            from libcst.metadata import MetadataWrapper, PositionProvider

            wrapper = MetadataWrapper(self.module, unsafe_skip_copy=True)
            return dict(wrapper.resolve(PositionProvider))
        return found

    def _citable_nodes(self) -> set[cst.CSTNode]:
        """Every node a message may cite: calls, their conditions, loops and early exits."""
        nodes: set[cst.CSTNode] = set()
        for call in self.calls:
            nodes.add(call.node)
            for frame, _branch in call.record.context:
                if isinstance(frame, Condition):
                    nodes.update((frame.node, frame.test))
                else:
                    nodes.add(loop_line_node(frame))
                    if frame.exit_node is not None:
                        nodes.add(frame.exit_node)
                    if frame.evidence is not None:
                        nodes.add(frame.evidence)
            for exit_ in call.record.exits:
                nodes.update((exit_.node, exit_.guard.test))
        for verdict in self.local_exits:
            nodes.update(local_exit_nodes(verdict))
        return nodes

    def range_of(self, node: cst.CSTNode) -> CodeRange:
        return self._positions[node]

    def line(self, node: cst.CSTNode) -> int:
        return self._positions[node].start.line

    def text(self, node: cst.CSTNode) -> str:
        return " ".join(self.module.code_for_node(node).split())


def build_facts(
    module: cst.Module,
    config: Config,
    project: ModuleContext | None = None,
    remember: bool = True,
) -> FileFacts:
    """The facts of one module; with ``project``, calls into other project modules resolve
    through their summaries (``summaries``), without it the file is read alone. ``remember``
    keeps the walk as the module's summary; not for a partly blanked tree."""
    kept = project.project.kept_walk(module, config, project) if project is not None else None
    walker = kept if kept is not None else walk_module(module, config, project)
    if project is not None and remember:
        project.project.remember(project.name, walker)
    return walker.facts()


def walk_module(module: cst.Module, config: Config, project: ModuleContext | None) -> Walker:
    names = SymmetricNames.from_config(config)
    sources = Sources.from_config(config)
    implicit = ImplicitCalls.from_config(config)
    known_returns: dict[str, int] = {}
    walker = _walk(module, names, sources, known_returns, implicit, project)
    for _ in range(MAX_EXTRA_PASSES):
        returns = {key: info.return_bits for key, info in walker.functions.items()}
        # a function used before its definition turned out to return a rank-dependent value, or
        # a uniform one (ESP005)
        if not any(
            returns.get(key, NONE) & (RANK | UNIFORM) for key in walker.used_before_definition
        ):
            break
        walker = _walk(module, names, sources, returns, implicit, project)
    return walker


def _walk(
    module: cst.Module,
    names: SymmetricNames,
    sources: Sources,
    known_returns: dict[str, int],
    implicit: ImplicitCalls,
    project: ModuleContext | None,
) -> Walker:
    walker = Walker(module, names, sources, known_returns, implicit, project)
    walker.walk()
    return walker


class Walker(ScopeWalk, ValueWalk, FlowWalk):
    """The single traversal: each node type goes to the room that answers for it."""

    def __init__(
        self,
        module: cst.Module,
        names: SymmetricNames,
        sources: Sources,
        known_returns: dict[str, int],
        implicit: ImplicitCalls,
        project: ModuleContext | None = None,
    ) -> None:
        super().__init__(module, names, sources, known_returns, implicit, project)
        self.stmt_handlers = {
            cst.SimpleStatementLine: self._simple_line,  # type: ignore[dict-item]
            cst.If: self._if_statement,  # type: ignore[dict-item]
            cst.For: self._for,  # type: ignore[dict-item]
            cst.While: self._while,  # type: ignore[dict-item]
            cst.Try: self._try,  # type: ignore[dict-item]
            cst.TryStar: self._try,  # type: ignore[dict-item]
            cst.With: self._with,  # type: ignore[dict-item]
            cst.FunctionDef: self._function,  # type: ignore[dict-item]
            cst.ClassDef: self._class,  # type: ignore[dict-item]
            cst.Match: self._match,  # type: ignore[dict-item]
            cst.Expr: self._expr_statement,  # type: ignore[dict-item]
            cst.Assign: self._assign,  # type: ignore[dict-item]
            cst.AnnAssign: self._ann_assign,  # type: ignore[dict-item]
            cst.AugAssign: self._aug_assign,  # type: ignore[dict-item]
            cst.Return: self._return,  # type: ignore[dict-item]
            cst.Raise: self._raise,  # type: ignore[dict-item]
            cst.Break: self._break,  # type: ignore[dict-item]
            cst.Continue: self._continue,  # type: ignore[dict-item]
            cst.Assert: self._assert,  # type: ignore[dict-item]
            cst.Import: self._import,  # type: ignore[dict-item]
            cst.ImportFrom: self._import_from,  # type: ignore[dict-item]
        }
        self.expr_handlers = {
            cst.Name: self._name,  # type: ignore[dict-item]
            cst.Attribute: self._attribute,  # type: ignore[dict-item]
            cst.Call: self._call,  # type: ignore[dict-item]
            cst.Subscript: self._subscript,  # type: ignore[dict-item]
            cst.Comparison: self._comparison,  # type: ignore[dict-item]
            cst.BooleanOperation: self._boolean,  # type: ignore[dict-item]
            cst.IfExp: self._if_expression,  # type: ignore[dict-item]
            cst.Lambda: self._lambda,  # type: ignore[dict-item]
            cst.ListComp: self._comprehension,  # type: ignore[dict-item]
            cst.SetComp: self._comprehension,  # type: ignore[dict-item]
            cst.GeneratorExp: self._comprehension,  # type: ignore[dict-item]
            cst.DictComp: self._comprehension,  # type: ignore[dict-item]
            cst.NamedExpr: self._named_expression,  # type: ignore[dict-item]
        }

    # ----------------------------------------------------------------- results

    def facts(self) -> FileFacts:
        helpers = HelperChains(self.module, self.functions, self.project)
        calls = helpers.symmetric_calls(self.records)
        for call in calls:
            keys = helpers.keys(call)
            for frame, branch in call.record.context:
                if isinstance(frame, Condition):
                    for key in keys:
                        frame.record(branch, key)
                    frame.groups.setdefault(branch, []).extend(call.groups)
            for exit_ in call.record.exits:
                exit_.after.extend(keys)
        decide_exemptions(self.conditions, self.complements, self.all_exits)
        return FileFacts(
            self.module, calls, self.sources, self._waited_in(calls), self._uniform_calls()
        )

    def _waited_in(self, calls: list[SymmetricCall]) -> list[WaitedIn]:
        if not self.local_exits:
            return []
        order = {record: index for index, record in enumerate(self.records)}
        owners: dict[CallRecord, str | None] = dict.fromkeys(self.records)
        for key, info in self.functions.items():
            for record in info.records:
                owners[record] = key
        return waited_in(self.local_exits, calls, order, owners)

    def _uniform_calls(self) -> set[cst.Call]:
        """The calls of functions whose result is the same on every rank (``returns_uniform``)."""
        found: set[cst.Call] = set()
        for record in self.records:
            key = record.helper_key
            if key is None:
                continue
            bits = self._returns_of(key)
            if bits is not None and is_uniform(bits):
                found.add(record.node)
        return found

"""ESP001/ESP004's fix: move a call out of a rank-dependent ``if`` body to just after the ``if``.

Before::

    if dist.get_rank() == 0:
        dist.barrier()
        torch.save(model.state_dict(), path)

After::

    if dist.get_rank() == 0:
        torch.save(model.state_dict(), path)
    dist.barrier()

Offered only when the move cannot break the code it leaves: the call is a statement of its own
directly in the body of the controlling ``if`` (not an ``elif``), as an expression or assigned to
plain names; it reads no name the body binds (the other ranks would not have it); no later
statement of the body reads a name the call reads or assigns (the result, or an argument a
collective fills in place); and the body does not leave (``return``, ``raise``, ``break``,
``continue``). Comments on the call's line move with it. Always unsafe: the call now runs on
every rank, after the rest of the body instead of before it.

ESP006 also hoists: when the body goes on to read what the call assigns (``state =
accelerator.get_state_dict(model)`` then ``torch.save(state, path)``), the call moves to just
before the ``if`` instead, provided the statements before it in the body bind nothing it reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import libcst as cst

from esper_lint.analysis.control import ConditionKind
from esper_lint.analysis.facts import FileFacts
from esper_lint.fixes.types import Applicability, Fix
from esper_lint.rules.base import Finding

_LEAVING = (cst.Return, cst.Raise, cst.Break, cst.Continue)


def move_out_of_rank_if(facts: FileFacts, finding: Finding, *, hoist: bool = False) -> Fix | None:
    """The move after the ``if``; with ``hoist``, when the body goes on to use the call's result
    (``state = accelerator.get_state_dict(model)`` then ``torch.save(state, path)``), the move to
    just before the ``if`` instead."""
    call = next((c for c in facts.calls if c.node is finding.node), None)
    if call is None:
        return None
    condition = call.condition
    if condition is None or condition.kind is not ConditionKind.IF:
        return None
    if_node = condition.node
    if not isinstance(if_node, cst.If) or _is_elif(facts.module, if_node):
        return None
    text = facts.text(if_node.test)
    plan = _plan(if_node, call.node)
    if plan is not None:
        description = f"Move `{call.text}` out of `if {text}:`, to just after it"
        return Fix(description, Applicability.UNSAFE, plan.apply)
    plan = _hoist_plan(if_node, call.node) if hoist else None
    if plan is None:
        return None
    description = f"Move `{call.text}` out of `if {text}:`, to just before it"
    return Fix(description, Applicability.UNSAFE, plan.apply)


@dataclass(frozen=True)
class _Plan:
    target: cst.If
    index: int  # of the moved statement in the body
    before: bool = False  # the statement goes just before the ``if`` instead of after it

    def apply(self, module: cst.Module) -> cst.Module:
        return module.visit(_Move(self))


class _Move(cst.CSTTransformer):
    def __init__(self, plan: _Plan) -> None:
        super().__init__()
        self.plan = plan

    def leave_If(
        self, original_node: cst.If, updated_node: cst.If
    ) -> cst.BaseStatement | cst.FlattenSentinel[cst.BaseStatement]:
        if original_node is not self.plan.target:
            return updated_node
        body = updated_node.body
        index = self.plan.index
        if isinstance(body, cst.IndentedBlock):
            moved: cst.BaseStatement = body.body[index]
            rest: list[cst.BaseStatement] = [*body.body[:index], *body.body[index + 1 :]]
            new_body: cst.BaseSuite = body.with_changes(body=rest or [_pass_line()])
        else:
            assert isinstance(body, cst.SimpleStatementSuite)
            small = body.body[index]
            moved = cst.SimpleStatementLine(
                body=[small.with_changes(semicolon=cst.MaybeSentinel.DEFAULT)]
            )
            others = [*body.body[:index], *body.body[index + 1 :]]
            if others:
                last = others[-1].with_changes(semicolon=cst.MaybeSentinel.DEFAULT)
                new_body = body.with_changes(body=[*others[:-1], last])
            else:
                new_body = body.with_changes(body=[cst.Pass()])
        kept = updated_node.with_changes(body=new_body)
        if self.plan.before:
            # comments above the ``if``, then the call's own, stay above the moved call
            leading = [*kept.leading_lines, *getattr(moved, "leading_lines", ())]
            moved = moved.with_changes(leading_lines=leading)
            return cst.FlattenSentinel([moved, kept.with_changes(leading_lines=())])
        return cst.FlattenSentinel([kept, moved])


def _pass_line() -> cst.SimpleStatementLine:
    return cst.SimpleStatementLine(body=[cst.Pass()])


def _plan(if_node: cst.If, call_node: cst.Call) -> _Plan | None:
    statements = _statements(if_node.body)
    index = next(
        (i for i, statement in enumerate(statements) if _is_statement_of(statement, call_node)),
        None,
    )
    if index is None:
        return None
    others = [s for i, s in enumerate(statements) if i != index]
    if any(_leaves(statement) for statement in others):
        return None
    moved = statements[index]
    read = _names_read(call_node)
    if read & set().union(*(_names_bound(s) for s in others)):
        return None
    touched = read | _names_bound(moved)
    later = statements[index + 1 :]
    if any(touched & _names_read(statement) for statement in later):
        return None
    return _Plan(if_node, index)


def _hoist_plan(if_node: cst.If, call_node: cst.Call) -> _Plan | None:
    """Before the ``if``: the statements before the call bind nothing it reads and do not leave,
    and the test reads nothing the call assigns."""
    statements = _statements(if_node.body)
    index = next(
        (i for i, statement in enumerate(statements) if _is_statement_of(statement, call_node)),
        None,
    )
    if index is None or not isinstance(if_node.body, cst.IndentedBlock):
        return None
    earlier = statements[:index]
    if any(_leaves(statement) for statement in earlier):
        return None
    if _names_read(call_node) & set().union(*(_names_bound(s) for s in earlier)):
        return None
    if _names_bound(statements[index]) & _names_read(if_node.test):
        return None
    return _Plan(if_node, index, before=True)


def _statements(suite: cst.BaseSuite) -> Sequence[cst.CSTNode]:
    if isinstance(suite, cst.IndentedBlock):
        return suite.body
    assert isinstance(suite, cst.SimpleStatementSuite)
    return suite.body


def _small_of(statement: cst.CSTNode) -> cst.CSTNode | None:
    if isinstance(statement, cst.SimpleStatementLine):
        return statement.body[0] if len(statement.body) == 1 else None
    return statement if isinstance(statement, cst.BaseSmallStatement) else None


def _is_statement_of(statement: cst.CSTNode, call_node: cst.Call) -> bool:
    small = _small_of(statement)
    if isinstance(small, cst.Expr):
        return small.value is call_node
    if isinstance(small, cst.Assign):
        plain = all(isinstance(target.target, cst.Name) for target in small.targets)
        return plain and small.value is call_node
    return False


def _leaves(statement: cst.CSTNode) -> bool:
    finder = _Finder(_LEAVING)
    statement.visit(finder)
    return finder.found


class _Finder(cst.CSTVisitor):
    def __init__(self, kinds: tuple[type[cst.CSTNode], ...]) -> None:
        super().__init__()
        self.kinds = kinds
        self.found = False

    def on_visit(self, node: cst.CSTNode) -> bool:
        if isinstance(node, (cst.FunctionDef, cst.Lambda, cst.ClassDef)):
            return False  # their returns leave them, not the body
        if isinstance(node, self.kinds):
            self.found = True
        return not self.found


class _Names(cst.CSTVisitor):
    """Every Name in a subtree, and those in binding positions."""

    def __init__(self) -> None:
        super().__init__()
        self.read: set[str] = set()
        self.bound: set[str] = set()
        self._binding = 0

    def on_visit(self, node: cst.CSTNode) -> bool:
        if isinstance(node, cst.Name):
            (self.bound if self._binding else self.read).add(node.value)
        if isinstance(node, (cst.AssignTarget, cst.AsName)):
            self._binding += 1
        return True

    def on_leave(self, original_node: cst.CSTNode) -> None:
        if isinstance(original_node, (cst.AssignTarget, cst.AsName)):
            self._binding -= 1

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        self.bound |= _plain_names(node.target)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        self.bound |= _plain_names(node.target)

    def visit_For(self, node: cst.For) -> None:
        self.bound |= _plain_names(node.target)

    def visit_NamedExpr(self, node: cst.NamedExpr) -> None:
        self.bound |= _plain_names(node.target)

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self.bound.add(node.name.value)

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self.bound.add(node.name.value)


def _plain_names(node: cst.CSTNode) -> set[str]:
    collector = _Names()
    node.visit(collector)
    return collector.read | collector.bound


def _names_read(node: cst.CSTNode) -> set[str]:
    collector = _Names()
    node.visit(collector)
    return collector.read | collector.bound


def _names_bound(node: cst.CSTNode) -> set[str]:
    collector = _Names()
    node.visit(collector)
    return collector.bound


def _is_elif(module: cst.Module, if_node: cst.If) -> bool:
    finder = _ElifFinder(if_node)
    module.visit(finder)
    return finder.found


class _ElifFinder(cst.CSTVisitor):
    def __init__(self, target: cst.If) -> None:
        super().__init__()
        self.target = target
        self.found = False

    def visit_If(self, node: cst.If) -> bool:
        if node.orelse is self.target:
            self.found = True
        return not self.found

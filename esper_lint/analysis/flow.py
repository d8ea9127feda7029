"""What controls a call: the statements and expressions that guard, repeat or skip others.

``FlowWalk`` walks blocks, ``if``/``match``/``while`` conditions, ``for`` loops and
comprehensions, ``try`` handlers and the guarding expressions (``a and b``, ``x if c else y``),
keeping the context (``control.Context``) each call is recorded under and the rank-dependent
early exits (``return``, ``break``, ``continue``, ``raise``, ``sys.exit()``) that may skip later
calls. The frames themselves, and what a condition exempts, are ``control``'s; which loops have
data-dependent trip counts is ``loops``'.

Apart from those (ESP005), every exit statement decided by a rank-local condition, and every
process exit under rank control, is noted as a ``local_exits.LocalExit``; ``local_exits`` then
finds the symmetric call the other ranks wait in.
"""

from __future__ import annotations

from collections.abc import Sequence

import libcst as cst

from esper_lint.analysis.control import (
    ComplementCandidate,
    Condition,
    ConditionKind,
    Context,
    Exit,
    ExitKind,
    Exits,
)
from esper_lint.analysis.groups import quick_text
from esper_lint.analysis.local_exits import LocalExit
from esper_lint.analysis.loops import Loop, unwrap_iterable
from esper_lint.analysis.paths import And, Atom, AtomKind, Formula, Not, Or
from esper_lint.analysis.rank import DATA, ITER, ITER_WRAPPERS, NONE, RANK, condition_polarity
from esper_lint.analysis.symbols import dotted_name, final_name
from esper_lint.analysis.traversal import Scope, WalkState
from esper_lint.analysis.values import GUARD_BITS, LOCAL_BITS, element_bits, union

RANK_DECORATORS = frozenset(
    {"rank_zero_only", "on_main_process", "on_local_main_process", "on_last_process", "on_process"}
)
EXIT_CALLS = frozenset({"sys.exit", "exit", "quit", "os._exit"})
_GUARD_WORDS = {
    ConditionKind.IF: "if ",
    ConditionKind.WHILE: "while ",
    ConditionKind.MATCH: "match ",
    ConditionKind.COMPREHENSION_IF: "if ",
    ConditionKind.EXCEPT: "except ",
}


def _is_wildcard(case: cst.MatchCase) -> bool:
    pattern = case.pattern
    return isinstance(pattern, cst.MatchAs) and pattern.pattern is None and case.guard is None


def _names_stop_iteration(node: cst.BaseExpression | None) -> bool:
    if node is None:
        return False
    if isinstance(node, cst.Tuple):
        return any(_names_stop_iteration(e.value) for e in node.elements)
    return final_name(node) == "StopIteration"


class FlowWalk(WalkState):
    """Statements, and the expressions that make other code conditional or repeated."""

    def _decorator_condition(self, decorators: Sequence[cst.Decorator]) -> Condition | None:
        """The first rank-only decorator (``@rank_zero_only``) as the condition of the body."""
        for decorator in decorators:
            target = decorator.decorator
            if isinstance(target, cst.Call):
                target = target.func
            if final_name(target) in RANK_DECORATORS or self._is_rank_zero_decorator(target):
                return Condition(ConditionKind.DECORATOR, decorator, decorator, RANK)
        return None

    def _block(self, statements: Sequence[cst.CSTNode]) -> Exits:
        escaping: Exits = ()
        saved_exits = self.exits
        candidates: list[ComplementCandidate] = []
        for statement in statements:
            if type(statement) is cst.If and statement.orelse is None:
                exits, condition = self._if(statement)
                self._note_complement(statement, condition, candidates)
            else:
                handler = self.stmt_handlers.get(type(statement))
                exits = (
                    handler(statement)
                    if handler is not None
                    else self._generic_statement(statement)
                )
            if exits:
                escaping += exits
                self.exits += exits
        self.exits = saved_exits
        if len(candidates) >= 2:
            self.complements.append(candidates)
        return escaping

    def _note_complement(
        self, node: cst.If, condition: Condition, candidates: list[ComplementCandidate]
    ) -> None:
        if not condition.bits & RANK:
            return
        shape = condition_polarity(node.test, self._is_symmetric)
        if shape is not None:
            candidates.append(ComplementCandidate(condition, shape[0], shape[1]))

    def _suite(self, suite: cst.BaseSuite) -> Exits:
        return self._block(suite.body)

    def _in_frame(self, frame: Condition | Loop, branch: int, suite: cst.BaseSuite) -> Exits:
        saved = self.context
        self.context = saved + ((frame, branch),)
        exits = self._suite(suite)
        self.context = saved
        return exits

    def _simple_line(self, node: cst.SimpleStatementLine) -> Exits:
        return self._block(node.body)

    def _if_statement(self, node: cst.If) -> Exits:
        return self._if(node)[0]

    def _if(self, node: cst.If) -> tuple[Exits, Condition]:
        bits, formula = self._test(node.test)
        condition = Condition(
            ConditionKind.IF, node, node.test, bits, branch_count=2, formula=formula
        )
        if bits & RANK:
            self.conditions.append(condition)
        exits = self._in_frame(condition, 0, node.body)
        orelse = node.orelse
        if isinstance(orelse, cst.If):
            saved = self.context
            self.context = saved + ((condition, 1),)
            more, condition.elif_ = self._if(orelse)
            condition.elif_.previous = condition
            self.context = saved
            exits += more
        elif isinstance(orelse, cst.Else):
            condition.complete = True
            exits += self._in_frame(condition, 1, orelse.body)
        return exits, condition

    def _for(self, node: cst.For) -> Exits:
        iter_bits = self.expr(node.iter)
        loop = Loop(node)
        if iter_bits & ITER:
            loop.mark_iterable(unwrap_iterable(node.iter))
        self._bind_loop_target(node, element_bits(iter_bits))
        self.groups.note_loop(node.target, node.iter)
        exits = self._leave_loop(loop, self._in_frame(loop, 0, node.body))
        if node.orelse is not None:
            exits += self._suite(node.orelse.body)
        return exits

    def _while(self, node: cst.While) -> Exits:
        bits, formula = self._test(node.test)
        loop = Loop(node)
        saved = self.context
        if bits & RANK:
            condition = Condition(ConditionKind.WHILE, node, node.test, bits, formula=formula)
            self.context = saved + ((condition, 0),)
        if bits & (DATA | ITER):
            loop.mark_iterable(node.test)
        exits = self._leave_loop(loop, self._in_frame(loop, 0, node.body))
        self.context = saved
        if node.orelse is not None:
            exits += self._suite(node.orelse.body)
        return exits

    @staticmethod
    def _leave_loop(loop: Loop, exits: Exits) -> Exits:
        return tuple(e for e in exits if e.target is not loop)

    def _bind_loop_target(self, node: cst.For, bits: int) -> None:
        """``for step, batch in enumerate(loader)``: the step counter is the same on every rank."""
        target = node.target
        if (
            isinstance(target, cst.Tuple)
            and len(target.elements) == 2
            and self._is_enumerated(node.iter)
        ):
            self._bind(target.elements[0].value, NONE)
            self._bind(target.elements[1].value, bits)
            return
        self._bind(target, bits)

    def _is_enumerated(self, node: cst.BaseExpression, depth: int = 0) -> bool:
        """``enumerate(...)``, also wrapped (``tqdm(enumerate(loader))``), chosen by a condition
        (``tqdm(enumerate(x)) if is_main else enumerate(x)``) or bound to a name first."""
        if depth > 3:
            return False
        if isinstance(node, cst.Call):
            name = final_name(node.func)
            if name == "enumerate":
                return True
            return (
                name in ITER_WRAPPERS
                and bool(node.args)
                and self._is_enumerated(node.args[0].value, depth + 1)
            )
        if isinstance(node, cst.IfExp):
            return self._is_enumerated(node.body, depth + 1) and self._is_enumerated(
                node.orelse, depth + 1
            )
        if isinstance(node, cst.Name):
            origin = self._origin(node.value)
            return isinstance(origin, cst.BaseExpression) and self._is_enumerated(origin, depth + 1)
        return False

    def _try(self, node: cst.Try | cst.TryStar) -> Exits:
        catching = 1 if node.handlers else 0
        self.catching += catching
        exits = self._suite(node.body)
        self.catching -= catching
        if node.handlers:
            exits = tuple(e for e in exits if e.kind is not ExitKind.RAISE)
        for handler in node.handlers:
            if handler.type is not None:
                self.expr(handler.type)
            if handler.name is not None:
                self._bind(handler.name.name, NONE)
            if handler.type is not None and _names_stop_iteration(handler.type):
                # the data ran out: an exit here depends on data
                condition = Condition(ConditionKind.EXCEPT, handler, handler.type, DATA)
                exits += self._in_frame(condition, 0, handler.body)
            else:
                exits += self._suite(handler.body)
        if node.orelse is not None:
            exits += self._suite(node.orelse.body)
        if node.finalbody is not None:
            exits += self._suite(node.finalbody.body)
        return exits

    def _with(self, node: cst.With) -> Exits:
        for item in node.items:
            bits = self.expr(item.item)
            if item.asname is not None:
                self._bind(item.asname.name, bits)
        return self._suite(node.body)

    def _match(self, node: cst.Match) -> Exits:
        bits = self.expr(node.subject)
        condition = Condition(
            ConditionKind.MATCH,
            node,
            node.subject,
            bits,
            branch_count=len(node.cases),
            complete=bool(node.cases) and _is_wildcard(node.cases[-1]),
        )
        if bits & RANK:
            self.conditions.append(condition)
        exits: Exits = ()
        for index, case in enumerate(node.cases):
            if case.guard is not None:
                self.expr(case.guard)
            exits += self._in_frame(condition, index, case.body)
        return exits

    def _expr_statement(self, node: cst.Expr) -> Exits:
        self.expr(node.value)
        value = node.value
        if isinstance(value, cst.Call):
            callee = dotted_name(value.func)
            if callee is not None and self.imports.qualify(callee) in EXIT_CALLS:
                return self._exit(ExitKind.EXIT, node)
        return ()

    def _return(self, node: cst.Return) -> Exits:
        value = node.value
        if value is not None:
            parts = None
            if isinstance(value, cst.Tuple):
                parts = self._element_values(value, len(value.elements))
            bits = self.expr(value) if parts is None else union(parts)
            if self.owner is not None:
                self.owner.return_bits |= bits
                self.owner.note_return(parts)
        return self._exit(ExitKind.RETURN, node)

    def _raise(self, node: cst.Raise) -> Exits:
        if node.exc is None:
            return ()  # a bare re-raise lets an error through; it is no way to skip work on a rank
        self.expr(node.exc)
        return self._exit(ExitKind.RAISE, node)

    def _break(self, node: cst.Break) -> Exits:
        return self._exit(ExitKind.BREAK, node)

    def _continue(self, node: cst.Continue) -> Exits:
        return self._exit(ExitKind.CONTINUE, node)

    def _exit(self, kind: ExitKind, node: cst.CSTNode) -> Exits:
        exits = self._rank_exit(kind, node)
        self._note_local_exit(kind, node, exits)
        return exits

    def _rank_exit(self, kind: ExitKind, node: cst.CSTNode) -> Exits:
        """Note what an early exit does: it may end loops early, and may skip later calls."""
        context = self.context
        target_index = -1
        if kind in (ExitKind.BREAK, ExitKind.CONTINUE):
            target_index = next(
                (i for i in range(len(context) - 1, -1, -1) if isinstance(context[i][0], Loop)),
                -1,
            )
            if target_index < 0:
                return ()
        # A guarded `raise` or `sys.exit()` is an error path that stops the job, not a way to end
        # the loops early on some ranks: only `break` and `return` make trip counts differ.
        if kind in (ExitKind.BREAK, ExitKind.RETURN):
            self._mark_loops_ended_by(kind, node, target_index)
        for frame, branch in reversed(context[target_index + 1 :]):
            if not isinstance(frame, Condition) or frame.kind is ConditionKind.DECORATOR:
                continue
            if frame.bits & RANK:
                target = context[target_index][0] if target_index >= 0 else None
                assert target is None or isinstance(target, Loop)
                exit_ = Exit(kind, node, frame, target, branch, context[target_index + 1 :])
                self.all_exits.append(exit_)
                return (exit_,)
            if kind is ExitKind.RAISE:
                # `if rank == 0: if out is None: raise ...` is an error path, not a way to skip
                # work on some ranks: only a raise guarded directly by the rank counts.
                return ()
        return ()

    def _mark_loops_ended_by(self, kind: ExitKind, node: cst.CSTNode, target_index: int) -> None:
        context = self.context
        for index, (frame, _branch) in enumerate(context):
            if not isinstance(frame, Loop):
                continue
            if kind is ExitKind.BREAK and index != target_index:
                continue
            for guard, _ in reversed(context[index + 1 :]):
                if isinstance(guard, Condition) and guard.bits & GUARD_BITS:
                    frame.mark_guarded_exit(node, guard.test, _GUARD_WORDS.get(guard.kind, ""))
                    break

    def _mark_while_driven_by_next(self, node: cst.Call) -> None:
        for frame, _branch in reversed(self.context):
            if isinstance(frame, Loop):
                if isinstance(frame.node, cst.While):
                    frame.mark_iterable(node)
                return

    def _boolean(self, node: cst.BooleanOperation) -> int:
        return self._boolean_test(node)[0]

    def _test(self, node: cst.BaseExpression) -> tuple[int, Formula]:
        """Walk a condition's test as ``expr`` does, and split it into a formula over atoms."""
        if isinstance(node, cst.BooleanOperation):
            return self._boolean_test(node)
        if isinstance(node, cst.UnaryOperation) and isinstance(node.operator, cst.Not):
            bits, formula = self._test(node.expression)
            return bits, Not(formula)
        return self._atom(node, self.expr(node))

    def _boolean_test(self, node: cst.BooleanOperation) -> tuple[int, Formula]:
        is_and = isinstance(node.operator, cst.And)
        left, left_formula = self._test(node.left)
        if not left & GUARD_BITS:
            right, right_formula = self._test(node.right)
        else:
            runs_right = left_formula if is_and else Not(left_formula)
            condition = Condition(ConditionKind.BOOL, node, node.left, left, formula=runs_right)
            saved = self.context
            self.context = saved + ((condition, 0),)
            right, right_formula = self._test(node.right)
            self.context = saved
        pair = (left_formula, right_formula)
        return left | right, And(pair) if is_and else Or(pair)

    def _atom(self, node: cst.BaseExpression, bits: int) -> tuple[int, Formula]:
        """A test that is not ``and``/``or``/``not``: uniform, rank-dependent or a membership."""
        membership = self.groups.membership(node, self._is_rank_value)
        if membership is not None:
            key = "member of " + ",".join(sorted(membership.origins))
            if membership.rank_source:
                bits |= RANK
            elif not bits & RANK:
                return bits, Atom(AtomKind.UNIFORM, membership.text)
            atom = Atom(AtomKind.MEMBERSHIP, key, membership, membership.text)
            return bits, atom if membership.member else Not(atom)
        kind = AtomKind.RANK if bits & RANK else AtomKind.UNIFORM
        text = quick_text(node)
        if text is None:
            return bits, Atom(kind, f"#{id(node)}", node=node, module=self.module)
        return bits, Atom(kind, text)

    def _is_rank_value(self, node: cst.BaseExpression) -> bool:
        if dotted_name(node) is not None:
            return bool(self.expr(node) & RANK)  # a chain of names: reading it records nothing
        return not self._is_symmetric(node)

    def _if_expression(self, node: cst.IfExp) -> int:
        test, formula = self._test(node.test)
        condition = Condition(
            ConditionKind.IFEXP,
            node,
            node.test,
            test,
            branch_count=2,
            complete=True,
            formula=formula,
        )
        if test & RANK:
            self.conditions.append(condition)
        saved = self.context
        self.context = saved + ((condition, 0),)
        body = self.expr(node.body)
        self.context = saved + ((condition, 1),)
        orelse = self.expr(node.orelse)
        self.context = saved
        return test | body | orelse

    def _lambda(self, node: cst.Lambda) -> int:
        self._params_defaults(node.params)
        saved = (self.context, self.exits)
        self.context, self.exits = (), ()
        self.scopes.append(Scope(self._param_bindings(node.params)))
        self.expr(node.body)
        self.scopes.pop()
        self.context, self.exits = saved
        return NONE

    def _comprehension(
        self, node: cst.ListComp | cst.SetComp | cst.GeneratorExp | cst.DictComp
    ) -> int:
        saved = self.context
        self.scopes.append(Scope({}))
        bits = NONE
        clause: cst.CompFor | None = node.for_in
        while clause is not None:
            iter_bits = self.expr(clause.iter)
            bits |= iter_bits & (RANK | DATA)
            loop = Loop(clause)
            if iter_bits & ITER:
                loop.mark_iterable(unwrap_iterable(clause.iter))
            self._bind(clause.target, element_bits(iter_bits))
            self.context += ((loop, 0),)
            for if_clause in clause.ifs:
                test = self.expr(if_clause.test)
                if test & GUARD_BITS:
                    condition = Condition(
                        ConditionKind.COMPREHENSION_IF, if_clause, if_clause.test, test
                    )
                    self.context += ((condition, 0),)
            clause = clause.inner_for_in
        if isinstance(node, cst.DictComp):
            bits |= self.expr(node.key) | self.expr(node.value)
        else:
            bits |= self.expr(node.elt)
        self.scopes.pop()
        self.context = saved
        return bits

    # ------------------------------------------------------ rank-local exits (ESP005)

    def _assert(self, node: cst.Assert) -> Exits:
        bits = self.expr(node.test)
        if node.msg is not None:
            self.expr(node.msg)
        if bits & LOCAL_BITS:
            self._note_local_exit(ExitKind.RAISE, node, (), node.test, bits)
        else:
            self._note_local_exit(ExitKind.RAISE, node, ())
        return ()

    def _note_local_exit(
        self,
        kind: ExitKind,
        node: cst.CSTNode,
        rank_exits: Exits,
        own_test: cst.BaseExpression | None = None,
        own_bits: int = NONE,
    ) -> None:
        """Note an exit decided by a rank-local condition, or a process exit under rank control."""
        if kind is ExitKind.RAISE and self.catching:
            return  # caught in this function: the handler runs instead
        context = self.context
        start = 0
        target: Loop | None = None
        if kind in (ExitKind.BREAK, ExitKind.CONTINUE):
            index = next(
                (i for i in range(len(context) - 1, -1, -1) if isinstance(context[i][0], Loop)),
                -1,
            )
            if index < 0:
                return
            start, found = index + 1, context[index][0]
            assert isinstance(found, Loop)
            target = found
        rank_exit = rank_exits[0] if rank_exits else None
        exit_ = LocalExit(
            kind,
            node,
            self.owner.key if self.owner is not None else None,
            len(self.records),
            context,
            rank_exit=rank_exit,
            target=target,
        )
        if own_test is not None:
            exit_.guard_test, exit_.holds, exit_.bits = own_test, False, own_bits
        else:
            guard = self._local_guard(context[start:])
            if guard is not None:
                exit_.guard, exit_.branch = guard
                exit_.guard_test, exit_.bits = exit_.guard.test, exit_.guard.bits
                exit_.holds = exit_.guard.kind is not ConditionKind.IF or exit_.branch == 0
        if exit_.guard_test is not None:
            if kind is ExitKind.RAISE and rank_exit is None and not self._data_local(exit_):
                return  # v1's reading: a raise under a rank test is an error path
            if not exit_.bits & RANK:  # a rank test speaks for itself
                witness = self.why_local(exit_.guard_test)
                if witness is None:
                    return  # no value to name: the data bits came from names alone
                if kind is ExitKind.RAISE and not witness.measured:
                    return  # an invariant (`assert key is not None`), not a health check
                exit_.why = witness.words
        elif kind is ExitKind.EXIT:
            exit_.controller = self._rank_controller(context)
            if exit_.controller is None:
                return
        else:
            return
        if kind is ExitKind.EXIT and exit_.controller is None:
            exit_.controller = self._rank_controller(context)
        self.local_exits.append(exit_)

    @staticmethod
    def _local_guard(frames: Context) -> tuple[Condition, int] | None:
        """The innermost condition among ``frames`` that reads a rank-local value."""
        for frame, branch in reversed(frames):
            if not isinstance(frame, Condition):
                continue
            if frame.kind in (ConditionKind.DECORATOR, ConditionKind.EXCEPT):
                continue
            if frame.bits & LOCAL_BITS:
                return frame, branch
        return None

    @staticmethod
    def _data_local(exit_: LocalExit) -> bool:
        return bool(exit_.bits & DATA)

    def _rank_controller(self, context: Context) -> Condition | Exit | None:
        """What runs this code on some ranks only: a rank-only decorator or an earlier exit."""
        for frame, _branch in context:
            if isinstance(frame, Condition) and frame.kind is ConditionKind.DECORATOR:
                return frame
        return self.exits[-1] if self.exits else None

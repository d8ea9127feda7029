"""Whether a value differs across ranks: the bits of expressions, and how assignments carry them.

Values carry ``rank`` bits (RANK, DATA, ITER; see ``rank``). ``ValueWalk.expr`` gives an
expression's bits: names read their binding (``scopes``) or, unbound, their conventional meaning;
calls combine what they call, their arguments through value-preserving builtins, and what a
helper function returns. A collective's result, and the buffers it fills in place, are the same
on every rank. Assignments bind targets to bits, element by element where the shapes match.
"""

from __future__ import annotations

import libcst as cst

from esper_lint.analysis.calls import CallRecord, is_external
from esper_lint.analysis.control import Exits
from esper_lint.analysis.rank import (
    DATA,
    ITER,
    ITER_WRAPPERS,
    NONE,
    RANK,
    env_var_bits,
    is_distributed_mode_check,
)
from esper_lint.analysis.symbols import CallKind, dotted_name, final_name
from esper_lint.analysis.traversal import WalkState

VALUE_PRESERVING_CALLS = frozenset(
    {"int", "float", "str", "bool", "abs", "min", "max", "round", "sum", "any", "all", "divmod"}
)
# Names of what `accelerator.prepare` returns that are not data: the model, its optimizer...
NOT_DATA_WORDS = ("model", "optim", "sched", "net", "module", "opt", "lr", "criterion", "loss")
IN_PLACE_COLLECTIVES = frozenset(
    {"broadcast", "broadcast_object_list", "all_reduce", "all_gather", "all_gather_object"}
)
# The same on every rank: the result of a reduction or a broadcast (a value may carry it with
# DATA; it is uniform only without RANK). Nothing in ESP001-ESP004 reads it; summaries expose it.
UNIFORM = 8
# Bits that make a condition worth a frame: what it guards may differ across ranks.
GUARD_BITS = RANK | DATA | ITER
LEAVES = frozenset(
    {
        cst.Integer,
        cst.Float,
        cst.Imaginary,
        cst.SimpleString,
        cst.Ellipsis,
        cst.FormattedStringText,
    }
)


def union(parts: list[int]) -> int:
    bits = NONE
    for part in parts:
        bits |= part
    return bits


def element_bits(iterable_bits: int) -> int:
    """What iterating yields: rank stays rank, data and loaders yield data."""
    return (iterable_bits & RANK) | (DATA if iterable_bits & (DATA | ITER) else NONE)


def _is_accelerator_call(func: cst.BaseExpression) -> bool:
    if not isinstance(func, cst.Attribute):
        return False
    receiver = final_name(func.value)
    return receiver is not None and "accelerator" in receiver.lower()


def _prepared_bits(target: cst.BaseExpression) -> int:
    """What ``accelerator.prepare`` gives this target: a loader unless it is named like a model."""
    name = final_name(target)
    if name is not None and any(word in name.lower() for word in NOT_DATA_WORDS):
        return NONE
    return ITER


class ValueWalk(WalkState):
    """Expressions and assignments: the bits of each value, and the calls worth recording."""

    def _assign(self, node: cst.Assign) -> Exits:
        for target in node.targets:
            self._bind_assignment(target.target, node.value)
        return ()

    def _ann_assign(self, node: cst.AnnAssign) -> Exits:
        if node.value is not None:
            self._bind_assignment(node.target, node.value)
        return ()

    def _aug_assign(self, node: cst.AugAssign) -> Exits:
        bits = self.expr(node.value) | self.expr(node.target)
        self._bind(node.target, bits)
        return ()

    def _bind_assignment(self, target: cst.BaseExpression, value: cst.BaseExpression) -> None:
        """Bind a target to a value's bits, element by element where the shapes match.

        ``rank = 0`` or ``for rank in range(3)`` make ``rank`` symmetric, but ``rank = setup()``
        with an unknown ``setup`` keeps the conventional name's rank dependence.
        """
        self._note_constructed(target, value)
        self.groups.note_assignment(target, value)
        if isinstance(value, cst.Call) and final_name(value.func) == "prepare":
            if _is_accelerator_call(value.func):
                self.expr(value)
                self._bind_prepared(target)
                return
        opaque = isinstance(value, cst.Call) and not self._is_known_call(value)
        if isinstance(target, (cst.Tuple, cst.List)):
            parts = self._element_values(value, len(target.elements))
            if parts is not None:
                for element, bits in zip(target.elements, parts, strict=True):
                    self._bind(element.value, bits, opaque)
                return
        self._bind(target, self.expr(value), opaque)

    def _is_known_call(self, value: cst.Call) -> bool:
        name = final_name(value.func)
        if name in VALUE_PRESERVING_CALLS or name in ("range", "len"):
            return True
        key = self._helper_key(value.func)
        return key is not None and (key in self.known_returns or self._external(key) is not None)

    def _element_values(self, value: cst.BaseExpression, count: int) -> list[int] | None:
        """Bits of each element of a tuple value, or of a same-file function's tuple result."""
        if isinstance(value, (cst.Tuple, cst.List)) and len(value.elements) == count:
            if any(isinstance(e, cst.StarredElement) for e in value.elements):
                return None
            return [self.expr(e.value) for e in value.elements]
        if isinstance(value, cst.Call):
            key = self._helper_key(value.func)
            elements = self.known_elements.get(key) if key is not None else None
            summary = self._external(key)
            if summary is not None and summary.element_returns is not None:
                elements = list(summary.element_returns)
            if elements is not None and len(elements) == count:
                self.expr(value)
                return list(elements)
        return None

    def _bind_prepared(self, target: cst.BaseExpression) -> None:
        if isinstance(target, (cst.Tuple, cst.List)):
            for element in target.elements:
                self._bind_prepared(element.value)
        else:
            self._bind(target, _prepared_bits(target))

    def _is_symmetric(self, node: cst.BaseExpression) -> bool:
        """Whether no name in ``node`` is rank-dependent, read without walking it again."""
        pending: list[cst.CSTNode] = [node]
        while pending:
            current = pending.pop()
            if isinstance(current, cst.Name) and self._lookup(current.value) & RANK:
                return False
            if (
                isinstance(current, cst.Attribute)
                and self.sources.name_bits(current.attr.value) & RANK
            ):
                return False
            if isinstance(current, (cst.Call, cst.Subscript)) and env_var_bits(current):
                return False
            if isinstance(current, cst.Call) and self.sources.call_bits(current.func, None) & RANK:
                return False
            pending.extend(current.children)
        return True

    def expr(self, node: cst.CSTNode) -> int:
        node_type = type(node)
        if node_type in LEAVES:
            return NONE
        handler = self.expr_handlers.get(node_type)
        if handler is not None:
            return handler(node)
        return self._generic(node)

    def _name(self, node: cst.Name) -> int:
        return self._lookup(node.value)

    def _attribute(self, node: cst.Attribute) -> int:
        attr = node.attr.value
        bits = self.expr(node.value) | self.sources.name_bits(attr)
        receiver = node.value
        if (
            self.method_class is not None
            and isinstance(receiver, cst.Name)
            and receiver.value in ("self", "cls")
        ):
            bits |= self.class_attrs.get((self.method_class, attr), NONE)
            bits |= self.known_returns.get(f"{self.method_class}.{attr}", NONE)
        return bits

    def _subscript(self, node: cst.Subscript) -> int:
        bits = self.expr(node.value)
        for element in node.slice:
            bits |= self.expr(element.slice)
        return bits | env_var_bits(node)

    def _comparison(self, node: cst.Comparison) -> int:
        bits = self.expr(node.left)
        for target in node.comparisons:
            bits |= self.expr(target.comparator)
        if is_distributed_mode_check(node):
            bits &= ~RANK
        return bits

    def _named_expression(self, node: cst.NamedExpr) -> int:
        bits = self.expr(node.value)
        self._bind(node.target, bits)
        return bits

    def _callee(self, func: cst.BaseExpression) -> int:
        """Bits of what is called: its receiver's, and its own name's as a called name."""
        if isinstance(func, cst.Attribute):
            return self.expr(func.value) | self.sources.called_name_bits(func.attr.value)
        if isinstance(func, cst.Name):
            bound = self._binding(func.value)
            return self.sources.called_name_bits(func.value) if bound is None else bound
        return self.expr(func)

    def _call(self, node: cst.Call) -> int:
        func = node.func
        helper_key = self._helper_key(func)
        # A project function answers for itself: its summary, not its name, says what it returns.
        external = self._external(helper_key)
        bits = self._callee(func) if external is None else self._receiver_bits(func)
        arg_bits = NONE
        first_arg_bits = NONE
        for index, arg in enumerate(node.args):
            value_bits = self.expr(arg.value)
            arg_bits |= value_bits
            if index == 0:
                first_arg_bits = value_bits
        name = final_name(func)
        dotted = dotted_name(func)
        qualified = self.imports.qualify(dotted) if dotted is not None else None
        # Arguments carry rank dependence only through value-preserving builtins (`int(rank)`);
        # `model.to(device_of_rank)` is not a rank-dependent model.
        carried = RANK | DATA if name in VALUE_PRESERVING_CALLS else DATA
        bits |= arg_bits & carried
        if external is None:
            bits |= self.sources.call_bits(func, qualified)
        bits |= env_var_bits(node)
        if name in ITER_WRAPPERS:
            bits |= arg_bits & ITER
        elif name == "prepare" and _is_accelerator_call(func):
            bits |= ITER
        elif name in ("range", "len"):
            bits &= ~ITER
        elif name == "next" and first_arg_bits & ITER:
            bits |= DATA
            self._mark_while_driven_by_next(node)
        if helper_key is not None:
            returns = self._returns_of(helper_key)
            if returns is None:
                if not is_external(helper_key):
                    self.used_before_definition.add(helper_key)
            else:
                bits |= returns
        kind = self.names.classify(func, self.imports)
        if kind is CallKind.COLLECTIVE:
            bits = self._after_collective(node, bits)
        implicit = None
        if kind is None:
            scope = self._binding_scope()
            implicit = self.implicit.match(node, self.imports, self.constructed, scope)
            if implicit is not None:
                kind = CallKind.IMPLICIT
        if kind is not None or helper_key is not None:
            record = CallRecord(node, kind, helper_key, self.context, self.exits, implicit)
            if kind is CallKind.COLLECTIVE:
                record.group = self.groups.group_of(node)
                record.op = qualified or dotted or name or ""
            elif helper_key is not None:
                record.arguments = self.groups.arguments_of(node)
            self.records.append(record)
            if self.owner is not None:
                self.owner.records.append(record)
        return bits

    def _after_collective(self, node: cst.Call, bits: int) -> int:
        """A collective's result, and the buffers it fills in place, are the same on every rank."""
        if final_name(node.func) in IN_PLACE_COLLECTIVES:
            # only the first argument is filled: `broadcast(t, src)` leaves `src` as it was
            first = node.args[0] if node.args else None
            if first is not None and first.keyword is None and isinstance(first.value, cst.Name):
                name = first.value.value
                self._bind(first.value, (self._lookup(name) & ~RANK) | UNIFORM)
        return (bits & ~RANK) | UNIFORM

    def _receiver_bits(self, func: cst.BaseExpression) -> int:
        return self.expr(func.value) if isinstance(func, cst.Attribute) else NONE

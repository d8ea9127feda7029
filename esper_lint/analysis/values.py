"""Whether a value differs across ranks: the bits of expressions, and how assignments carry them.

Values carry ``rank`` bits (RANK, DATA, ITER; see ``rank``). ``ValueWalk.expr`` gives an
expression's bits: names read their binding (``scopes``) or, unbound, their conventional meaning;
calls combine what they call, their arguments through value-preserving builtins, and what a
helper function returns. A collective's result, and the buffers it fills in place, are the same
on every rank. Assignments bind targets to bits, element by element where the shapes match.

Uniform values (ESP005): a sanitiser (``sanitizers``: a reduction, a broadcast, a gather) makes
its result, or the buffers it fills in place, the same on every rank. Such a value carries
UNIFORM and neither RANK nor DATA, and what is computed from uniform values alone stays uniform
(``reduced.item()``, ``torch.isfinite(reduced).all()``, ``reduced > 3``). Mixed with a rank-local
value it is rank-local again (the DATA or RANK bit comes along). A function whose every return
is uniform returns a uniform value (``all_reduce_mean(x)``); its key's known return bits say so.
``why_local`` names the value that makes a condition rank-local, for the messages.
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from esper_lint.analysis.calls import CallRecord, is_external
from esper_lint.analysis.control import Exits
from esper_lint.analysis.rank import (
    DATA,
    ITER,
    ITER_WRAPPERS,
    NONE,
    RANK,
    UNIFORM,
    env_var_bits,
    is_config_receiver,
    is_distributed_mode_check,
    nondeterministic_source,
    reads_rank,
)
from esper_lint.analysis.sanitizers import Effect, Sanitizer
from esper_lint.analysis.symbols import CallKind, dotted_name, final_name
from esper_lint.analysis.traversal import WalkState
from esper_lint.analysis.tree import child_nodes

VALUE_PRESERVING_CALLS = frozenset(
    {"int", "float", "str", "bool", "abs", "min", "max", "round", "sum", "any", "all", "divmod"}
)
# Names of what `accelerator.prepare` returns that are not data: the model, its optimizer...
NOT_DATA_WORDS = ("model", "optim", "sched", "net", "module", "opt", "lr", "criterion", "loss")
IN_PLACE_COLLECTIVES = frozenset(
    {"broadcast", "broadcast_object_list", "all_reduce", "all_gather", "all_gather_object"}
)
# Bits that make a value rank-local: an exit decided on it runs only on some ranks (ESP005).
LOCAL_BITS = RANK | DATA
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
    """What iterating yields: rank stays rank, data and loaders yield data; the elements of a
    uniform value are uniform."""
    bits = (iterable_bits & RANK) | (DATA if iterable_bits & (DATA | ITER) else NONE)
    return bits | (iterable_bits & UNIFORM)


def is_uniform(bits: int) -> bool:
    """Whether a value with ``bits`` is the same on every rank because a sanitiser made it so."""
    return bool(bits & UNIFORM) and not bits & LOCAL_BITS


def made_uniform(bits: int) -> int:
    return (bits & ~LOCAL_BITS) | UNIFORM


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
                    self._bind(element.value, bits, opaque and not is_uniform(bits))
                return
        bits = self.expr(value)
        self._bind(target, bits, opaque and not is_uniform(bits))
        if isinstance(target, cst.Name):
            self.scopes[-1].origins[target.value] = value

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
        return not reads_rank(node, self.sources, self._lookup)

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
        named = self.sources.name_bits(attr)
        if is_config_receiver(node.value):
            named &= ~DATA  # `args.loss_scale` is configuration, not this rank's loss
        bits = self.expr(node.value) | named
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
        inputs = bits | arg_bits
        own = self.sources.call_bits(func, qualified) if external is None else NONE
        if is_uniform(inputs) and nondeterministic_source(qualified) is None:
            own &= ~DATA  # `reduced.item()`, `torch.isfinite(reduced)`: still the same everywhere
        bits |= (arg_bits & (carried | UNIFORM)) | own
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
            elif is_uniform(returns):
                bits = made_uniform(bits)  # `reduce_dict(loss_dict)`: every return is reduced
            else:
                bits |= returns
        kind = self.names.classify(func, self.imports)
        if kind is CallKind.COLLECTIVE:
            bits = self._after_collective(node, bits)
        sanitizer = self._sanitizer(node, qualified)
        if sanitizer is not None:
            bits = self._sanitized(node, sanitizer, bits)
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

    def _sanitizer(self, node: cst.Call, qualified: str | None) -> Sanitizer | None:
        """The sanitiser table's entry ``node`` is an instance of, if any."""
        func = node.func
        name = qualified.rpartition(".")[2] if qualified is not None else final_name(func)
        for entry in self.sources.sanitizers.get(name or "", ()):
            if entry.any_receiver:
                return entry
            if qualified is not None and qualified.rpartition(".")[0] in entry.modules:
                return entry
            if isinstance(func, cst.Attribute) and entry.receivers:
                receiver = final_name(func.value)
                lowered = receiver.lower() if receiver is not None else ""
                if any(word in lowered for word in entry.receivers):
                    return entry
        return None

    def _sanitized(self, node: cst.Call, entry: Sanitizer, bits: int) -> int:
        if entry.effect is Effect.RESULT:
            return made_uniform(bits)
        positional = [arg.value for arg in node.args if arg.keyword is None]
        for index in entry.arguments:
            buffer = positional[index] if index < len(positional) else None
            if isinstance(buffer, cst.Name):
                self._bind(buffer, made_uniform(self._lookup(buffer.value)))
            elif (
                isinstance(buffer, cst.Attribute)
                and isinstance(buffer.value, cst.Name)
                and buffer.value.value == "self"
            ):
                self._bind(buffer, UNIFORM)  # `dist.all_reduce(self.found_inf, op=MAX)`
        return bits

    def why_local(self, test: cst.CSTNode) -> Witness | None:
        """The first value in ``test`` that makes it rank-local, and what it is
        (``loss_value is this rank's own loss, not reduced across ranks``); None when no value
        can be named: the test reads data only through the names of the functions it calls
        (``self._validate_condition_metric(logs)``), tensor metadata (``t.device``,
        ``t.numel()``), the keys of a container (``key not in metrics``) or torch's own state
        (``torch.is_grad_enabled()``)."""
        nodes = _preorder(test)
        health = any(
            isinstance(node, cst.Call) and final_name(node.func) in HEALTH_CHECKS for node in nodes
        )
        ordered = any(
            isinstance(node, cst.ComparisonTarget) and isinstance(node.operator, ORDERINGS)
            for node in nodes
        )
        pending: list[cst.CSTNode] = [test]
        while pending:
            node = pending.pop(0)
            if isinstance(node, cst.Call):
                dotted = dotted_name(node.func)
                source = nondeterministic_source(self.imports.qualify(dotted) if dotted else None)
                if source is not None:
                    text = f"{_text(self.module, node)} {_SOURCE_WORDS[source]}"
                    return Witness(text, health or ordered)
                pending[:0] = self._call_inputs(node)
                continue
            if isinstance(node, cst.Comparison) and all(
                isinstance(target.operator, (cst.In, cst.NotIn)) for target in node.comparisons
            ):
                pending.insert(0, node.left)  # the keys of a container are its structure
                continue
            if isinstance(node, cst.Name) and self._lookup(node.value) & LOCAL_BITS:
                if _is_flag_name(node.value):
                    continue  # `prediction_loss_only`, `loss_fn`: a setting or a callable
                words = self._origin_words(node.value)
                measured = health or (ordered and words != _BATCH_WORDS)
                return Witness(f"{node.value} {words}", measured)
            if isinstance(node, cst.Attribute):
                if node.attr.value in TENSOR_METADATA:
                    continue
                if self._is_local_attribute(node) and not _is_flag_name(node.attr.value):
                    bits = self._lookup_attribute(node)
                    rank_only = bool(bits & RANK) and not bits & DATA
                    words = _describe(node.attr.value, rank_only)
                    text = _text(self.module, node)
                    measured = health or (ordered and words != _BATCH_WORDS)
                    return Witness(f"{text} {words}", measured)
            pending[:0] = child_nodes(node)
        return None

    @staticmethod
    def _call_inputs(node: cst.Call) -> list[cst.CSTNode]:
        """What a call's result is computed from: its receiver and arguments, not its name."""
        func = node.func
        if isinstance(func, cst.Attribute) and func.attr.value in TENSOR_METADATA:
            return []  # `t.numel()`, `t.size(0)`: the shape, not the values
        inputs: list[cst.CSTNode] = [func.value] if isinstance(func, cst.Attribute) else []
        if not isinstance(func, (cst.Name, cst.Attribute)):
            inputs.append(func)
        return inputs + [arg.value for arg in node.args]

    def _origin_words(self, name: str) -> str:
        """What a rank-local name is: a clock or random reading it was computed from (followed
        a few assignments back), else what its name, or the name it came from, says."""
        bits = self._lookup(name)
        rank_only = bool(bits & RANK) and not bits & DATA
        chain = self._origin_chain(name)
        for node in chain:
            if isinstance(node, cst.Call):
                dotted = dotted_name(node.func)
                qualified = self.imports.qualify(dotted) if dotted is not None else None
                source = nondeterministic_source(qualified)
                if source is not None:
                    return f"comes from {_text(self.module, node)}, which {_SOURCE_WORDS[source]}"
        direct = _describe(name, rank_only)
        if direct != _BATCH_WORDS:
            return direct
        for node in chain:
            if isinstance(node, cst.Name) and node.value != name:
                found = _describe(node.value, False)
                if found != _BATCH_WORDS and self._lookup(node.value) & LOCAL_BITS:
                    return f"comes from {node.value}, which {found}"
        return direct

    def _origin_chain(self, name: str) -> list[cst.CSTNode]:
        """The nodes of what ``name`` was bound to, and of what their names were bound to."""
        found: list[cst.CSTNode] = []
        seen = {name}
        pending = [name]
        for _ in range(4):
            if not pending:
                break
            origin = self._origin(pending.pop(0))
            if origin is None:
                continue
            for node in _preorder(origin):
                found.append(node)
                if isinstance(node, cst.Name) and node.value not in seen:
                    seen.add(node.value)
                    pending.append(node.value)
        return found

    def _is_local_attribute(self, node: cst.Attribute) -> bool:
        """A rank-local attribute on a receiver that is not itself rank-local (``outputs.loss``)."""
        receiver = node.value
        if isinstance(receiver, cst.Name) and self._lookup(receiver.value) & LOCAL_BITS:
            return False
        return bool(self._lookup_attribute(node) & LOCAL_BITS)

    def _lookup_attribute(self, node: cst.Attribute) -> int:
        """The bits an attribute's own name gives it (no walk: no calls are recorded again)."""
        named = self.sources.name_bits(node.attr.value)
        if is_config_receiver(node.value):
            named &= ~DATA
        if self.method_class is not None and final_name(node.value) in ("self", "cls"):
            named |= self.class_attrs.get((self.method_class, node.attr.value), NONE)
        return named

    def _origin(self, name: str) -> cst.CSTNode | None:
        for scope in reversed(self.scopes):
            if name in scope.origins:
                return scope.origins[name]
        return None

    def _after_collective(self, node: cst.Call, bits: int) -> int:
        """A collective's result, and the buffers it fills in place, are the same on every rank."""
        if final_name(node.func) in IN_PLACE_COLLECTIVES:
            # only the first argument is filled: `broadcast(t, src)` leaves `src` as it was
            first = node.args[0] if node.args else None
            if first is not None and first.keyword is None and isinstance(first.value, cst.Name):
                name = first.value.value
                self._bind(first.value, self._lookup(name) & ~RANK)
        return bits & ~RANK

    def _receiver_bits(self, func: cst.BaseExpression) -> int:
        return self.expr(func.value) if isinstance(func, cst.Attribute) else NONE


_SOURCE_WORDS = {
    "wall clock": "reads this rank's own clock",
    "random": "draws from this rank's random generator",
}


_BATCH_WORDS = "is computed from this rank's own batch, not reduced across ranks"
# Calls that test a measured value's health: a failing one is the classic per-rank exit.
HEALTH_CHECKS = frozenset({"isfinite", "isnan", "isinf", "isneginf", "isposinf"})
# Tensor metadata: the same on every rank in a symmetric program, whatever the values are.
TENSOR_METADATA = frozenset(
    {"device", "dtype", "shape", "ndim", "requires_grad", "is_cuda", "grad_fn", "is_leaf"}
    | {"layout", "numel", "size", "dim", "nelement", "element_size", "get_device", "stride"}
)
# Parts of a name that make it a setting rather than a measured value (`prediction_loss_only`,
# `loss_type`, `metric_for_best_model`).
FLAG_PARTS = frozenset(
    {"only", "type", "fn", "func", "function", "name", "names", "key", "keys", "mode", "kind"}
    | {"for", "cls", "class", "config", "cfg", "weight", "weights", "scale", "scaler", "coef"}
    | {"factor", "enabled", "enable", "use", "interval", "every", "freq", "dir", "path", "file"}
    | {"attributes", "attribute", "fns", "args", "kwargs"}
)


ORDERINGS = (cst.LessThan, cst.LessThanEqual, cst.GreaterThan, cst.GreaterThanEqual)


@dataclass(frozen=True)
class Witness:
    """The value that makes a test rank-local, in words. ``measured``: the test checks a
    value's health (``isfinite``, ``isnan``...) or orders a loss, a metric, the clock or a random
    draw against a bound -- what a per-rank error path (``raise``, ``assert``) is about, as
    opposed to an invariant (``key is not None``, ``a == b``, ``isinstance(...)``)."""

    words: str
    measured: bool


def _is_flag_name(name: str) -> bool:
    return any(part in FLAG_PARTS for part in name.lower().split("_"))


def _describe(name: str, rank: object) -> str:
    if rank:
        return "depends on this rank's rank"
    lowered = name.lower()
    if "loss" in lowered:
        return "is this rank's own loss, not reduced across ranks"
    if any(word in lowered for word in ("acc", "metric", "score", "ppl", "perplexity")):
        return "is this rank's own metric, not reduced across ranks"
    return _BATCH_WORDS


def _text(module: cst.Module, node: cst.CSTNode) -> str:
    return " ".join(module.code_for_node(node).split())


def _preorder(node: cst.CSTNode) -> list[cst.CSTNode]:
    found: list[cst.CSTNode] = []
    pending = [node]
    while pending:
        current = pending.pop()
        found.append(current)
        pending.extend(reversed(child_nodes(current)))
    return found

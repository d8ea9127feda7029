"""Recognising the calls of the implicit-collectives table (``implicit_collectives``).

Two questions, both answered during the one traversal of a file:

- ``ImplicitCalls.match(call, imports, bindings, scope)``: which table entry, if any, a call is;
- ``Bindings``: which names hold the result of a constructor the table names (a
  ``DistributedDataParallel`` model, a torchmetrics metric, the engine ``deepspeed.initialize``
  returns), so that ``model(x)`` or ``metric.compute()`` can be recognised. Bindings are kept per
  scope: a function's own names, the module's names, and ``self.<attr>`` per class.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import libcst as cst

from esper_lint.analysis.implicit_collectives import ImplicitCollective, configured
from esper_lint.analysis.symbols import Imports, dotted_name, final_name
from esper_lint.config import Config

# Calls on a bound value that return the same kind of value (``metric.clone()``, ``model.to(d)``).
_SAME_VALUE_METHODS = frozenset(
    {"clone", "to", "cuda", "cpu", "float", "half", "double", "bfloat16"}
)
_FALSE_LITERALS = frozenset({"False", "None"})


@dataclass(frozen=True)
class Scope:
    """Where a binding lives: the enclosing functions (innermost first) and the method's class."""

    functions: tuple[str, ...] = ()
    class_name: str | None = None

    def keys_for(self, dotted: str) -> tuple[str, ...]:
        """The binding keys ``dotted`` may refer to, innermost first."""
        if dotted.startswith(("self.", "cls.")):
            return (f"{self.class_name}:{dotted}",) if self.class_name is not None else ()
        return (*(f"{function}:{dotted}" for function in self.functions), f":{dotted}")


@dataclass
class Bindings:
    """Constructor results by binding key (see ``Scope``): the constructor's qualified name."""

    constructors: tuple[tuple[str, str | None], ...]  # (qualified-name prefix, disabled_by)
    bound: dict[str, str] = field(default_factory=dict)

    def note(
        self,
        target: cst.BaseExpression,
        value: cst.BaseExpression,
        imports: Imports,
        scope: Scope,
    ) -> None:
        """Record (or forget) what ``target = value`` binds."""
        if isinstance(target, (cst.Tuple, cst.List)):
            if not target.elements:
                return
            # `engine, optimizer, _, _ = deepspeed.initialize(...)`: the engine comes first.
            for element in target.elements[1:]:
                self._forget(element.value, scope)
            target = target.elements[0].value
            if isinstance(target, cst.StarredElement):
                return
        dotted = dotted_name(target)
        if dotted is None:
            return
        constructor = self._constructor(value, imports, scope)
        key = _own_key(scope, dotted)
        if key is None:
            return
        if constructor is None:
            self.bound.pop(key, None)
        else:
            self.bound[key] = constructor

    def constructor_of(self, node: cst.BaseExpression, scope: Scope) -> str | None:
        """The qualified constructor ``node`` (a name or ``self.attr``) was bound to, if any."""
        dotted = dotted_name(node)
        if dotted is None:
            return None
        for key in scope.keys_for(dotted):
            constructor = self.bound.get(key)
            if constructor is not None:
                return constructor
        return None

    def _forget(self, target: cst.BaseExpression, scope: Scope) -> None:
        dotted = dotted_name(target)
        key = _own_key(scope, dotted) if dotted is not None else None
        if key is not None:
            self.bound.pop(key, None)

    def _constructor(self, value: cst.BaseExpression, imports: Imports, scope: Scope) -> str | None:
        if isinstance(value, (cst.Name, cst.Attribute)):
            return self.constructor_of(value, scope)  # `self.model = model`
        if not isinstance(value, cst.Call):
            return None
        func = value.func
        while (
            isinstance(func, cst.Attribute)
            and func.attr.value in _SAME_VALUE_METHODS
            and isinstance(func.value, cst.Call)
        ):
            value = func.value  # `Accuracy(...).to(device)`
            func = value.func
        if isinstance(func, cst.Attribute) and func.attr.value in _SAME_VALUE_METHODS:
            return self.constructor_of(func.value, scope)  # `metric.clone()`
        dotted = dotted_name(func)
        if dotted is None:
            return None
        qualified = imports.qualify(dotted)
        for prefix, disabled_by in self.constructors:
            if qualified == prefix or qualified.startswith(prefix):
                if disabled_by is not None and _passes_false(value, disabled_by):
                    return None
                return qualified
        return None


def _own_key(scope: Scope, dotted: str) -> str | None:
    keys = scope.keys_for(dotted)
    return keys[0] if keys else None


def _passes_false(call: cst.Call, keyword: str) -> bool:
    return any(
        arg.keyword is not None and arg.keyword.value == keyword and _is_false(arg.value)
        for arg in call.args
    )


def _is_false(node: cst.BaseExpression) -> bool:
    if isinstance(node, cst.Name):
        return node.value in _FALSE_LITERALS
    return isinstance(node, cst.Integer) and node.value == "0"


def _passes_true(call: cst.Call, keyword: str) -> bool:
    return any(
        arg.keyword is not None and arg.keyword.value == keyword and not _is_false(arg.value)
        for arg in call.args
    )


@dataclass(frozen=True)
class ImplicitCalls:
    """The configured table, indexed by the name a call is recognised by."""

    by_name: dict[str, tuple[ImplicitCollective, ...]]
    bound_calls: tuple[ImplicitCollective, ...]
    constructors: tuple[tuple[str, str | None], ...]

    @classmethod
    def from_config(cls, config: Config) -> ImplicitCalls:
        return _indexed(config.backends, config.extend_implicit_collectives)

    @classmethod
    def from_entries(cls, entries: Sequence[ImplicitCollective]) -> ImplicitCalls:
        by_name: dict[str, list[ImplicitCollective]] = {}
        bound_calls: list[ImplicitCollective] = []
        constructors: dict[str, str | None] = {}
        for entry in entries:
            for prefix in entry.bound_to:
                constructors.setdefault(prefix, entry.disabled_by)
            if entry.calls_bound:
                bound_calls.append(entry)
                continue
            for name in entry.names:
                by_name.setdefault(name, []).append(entry)
        return cls(
            {name: tuple(found) for name, found in by_name.items()},
            tuple(bound_calls),
            tuple(constructors.items()),
        )

    def new_bindings(self) -> Bindings:
        return Bindings(self.constructors)

    def match(
        self, call: cst.Call, imports: Imports, bindings: Bindings, scope: Scope
    ) -> ImplicitCollective | None:
        """The table entry ``call`` is an instance of, if any (the first that applies)."""
        func = call.func
        dotted = dotted_name(func)
        qualified = imports.qualify(dotted) if dotted is not None else None
        name = qualified.rpartition(".")[2] if qualified is not None else final_name(func)
        for entry in self.by_name.get(name or "", ()):
            if _applies(entry, call, qualified, bindings, scope):
                return entry
        if self.bound_calls and isinstance(func, (cst.Name, cst.Attribute)):
            constructor = bindings.constructor_of(func, scope)
            if constructor is not None:
                for entry in self.bound_calls:
                    if constructor.startswith(entry.bound_to):
                        return entry
        return None


def _applies(
    entry: ImplicitCollective,
    call: cst.Call,
    qualified: str | None,
    bindings: Bindings,
    scope: Scope,
) -> bool:
    if entry.required_keyword is not None and not _passes_true(call, entry.required_keyword):
        return False
    if qualified is not None and qualified in entry.not_qualified:
        return False
    if qualified is not None and qualified in entry.qualified:
        return True
    func = call.func
    if not isinstance(func, cst.Attribute):
        return False
    if entry.any_receiver:
        return True
    receiver = final_name(func.value)
    if receiver is not None and any(word in receiver.lower() for word in entry.receivers):
        return True
    if entry.bound_to:
        constructor = bindings.constructor_of(func.value, scope)
        return constructor is not None and constructor.startswith(entry.bound_to)
    return False


@lru_cache(maxsize=8)
def _indexed(backends: tuple[str, ...], extension: tuple[str, ...]) -> ImplicitCalls:
    """The configured table, indexed once per configuration (not once per file)."""
    return ImplicitCalls.from_entries(configured(backends, extension))

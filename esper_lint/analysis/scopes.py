"""What a name or a call resolves to: definitions, imports, bindings and helper keys.

Functions are keyed by where they are defined in the file: ``f``, ``Class.method``,
``f.<locals>.g``. A call resolves to a key (``helper_key``) that ``calls.HelperChains`` and the
return values of ``functions`` answer for; names resolve through the scope stack to the bits of
their binding (``values`` says what those bits mean).
"""

from __future__ import annotations

from collections.abc import Sequence

import libcst as cst

from esper_lint.analysis.calls import FunctionInfo
from esper_lint.analysis.control import Exits
from esper_lint.analysis.implicit import Scope as BindingScope
from esper_lint.analysis.rank import DATA, ITER, RANK, UNIFORM
from esper_lint.analysis.traversal import Scope, WalkState


def local_key(owner_key: str, name: str) -> str:
    return f"{owner_key}.<locals>.{name}"


_NESTED_BLOCKS = (
    cst.BaseSuite,
    cst.BaseCompoundStatement,
    cst.Else,
    cst.ExceptHandler,
    cst.ExceptStarHandler,
    cst.Finally,
    cst.MatchCase,
)


def local_def_names(body: Sequence[cst.CSTNode]) -> frozenset[str]:
    """Names of the functions a function body defines, however deep in its if/try/with blocks."""
    names: set[str] = set()
    pending = list(body)
    while pending:
        node = pending.pop()
        if isinstance(node, cst.FunctionDef):
            names.add(node.name.value)
        elif not isinstance(node, cst.ClassDef):
            pending.extend(child for child in node.children if isinstance(child, _NESTED_BLOCKS))
    return frozenset(names)


class ScopeWalk(WalkState):
    """Definitions (functions, classes), imports and the bindings of names."""

    def _function(self, node: cst.FunctionDef) -> Exits:
        for decorator in node.decorators:
            self.expr(decorator.decorator)
        decorator_condition = self._decorator_condition(node.decorators)
        self._params_defaults(node.params)
        name = node.name.value
        in_class = self.class_body
        if in_class is not None:
            key = f"{in_class}.{name}"
        elif self.local_defs:
            key = local_key(self.local_defs[-1][0], name)
        else:
            key = name
        info = FunctionInfo(key)
        self.functions[key] = info
        self.local_defs.append((key, local_def_names(node.body.body)))
        saved = (self.context, self.exits, self.owner, self.class_body, self.method_class)
        self.context = ((decorator_condition, 0),) if decorator_condition is not None else ()
        self.exits = ()
        self.owner = info
        self.class_body = None
        if in_class is not None:
            self.method_class = in_class
        self.scopes.append(Scope(self._param_bindings(node.params)))
        self._suite(node.body)
        self.scopes.pop()
        self.local_defs.pop()
        self.context, self.exits, self.owner, self.class_body, self.method_class = saved
        self.known_returns[key] = info.return_bits
        if info.element_returns is not None:
            self.known_elements[key] = info.element_returns
        return ()

    def _params_defaults(self, params: cst.Parameters) -> None:
        for param in (*params.posonly_params, *params.params, *params.kwonly_params):
            if param.default is not None:
                self.expr(param.default)

    def _param_bindings(self, params: cst.Parameters) -> dict[str, int]:
        bindings: dict[str, int] = {}
        for param in (*params.posonly_params, *params.params, *params.kwonly_params):
            name = param.name.value
            bindings[name] = self.sources.name_bits(name)
        return bindings

    def _class(self, node: cst.ClassDef) -> Exits:
        for decorator in node.decorators:
            self.expr(decorator.decorator)
        for arg in (*node.bases, *node.keywords):
            self.expr(arg.value)
        saved = (self.context, self.exits, self.class_body)
        self.context, self.exits, self.class_body = (), (), node.name.value
        self.scopes.append(Scope({}, is_class=True))
        self._suite(node.body)
        self.scopes.pop()
        self.context, self.exits, self.class_body = saved
        return ()

    def _import(self, node: cst.Import) -> Exits:
        self.imports.add_import(node)
        return ()

    def _import_from(self, node: cst.ImportFrom) -> Exits:
        self.imports.add_import_from(node)
        return ()

    def _bind(self, target: cst.CSTNode, bits: int, opaque: bool = False) -> None:
        if isinstance(target, cst.Name):
            # Rebinding clears rank dependence (unless the value is opaque); a `loss` or a
            # `train_loader` stays data by its name.
            name = target.value
            kept = DATA | ITER | RANK if opaque else DATA | ITER
            if bits & UNIFORM and not opaque:
                kept = ITER  # `loss = accelerator.reduce(loss)`: the name no longer says it
            self.scopes[-1].bindings[name] = bits | (self.sources.name_bits(name) & kept)
        elif isinstance(target, (cst.Tuple, cst.List)):
            for element in target.elements:
                self._bind(element.value, bits, opaque)
        elif isinstance(target, cst.StarredElement):
            self._bind(target.value, bits, opaque)
        elif isinstance(target, cst.Attribute):
            self.expr(target.value)
            if isinstance(target.value, cst.Name) and target.value.value == "self":
                if self.method_class is not None:
                    self.class_attrs[(self.method_class, target.attr.value)] = bits
        else:
            self.expr(target)

    def _note_constructed(self, target: cst.BaseExpression, value: cst.BaseExpression) -> None:
        """What ``target = value`` binds among the implicit-collectives table's constructors
        (a DDP model, a torchmetrics metric, a DeepSpeed engine)."""
        self.constructed.note(target, value, self.imports, self._binding_scope())

    def _binding_scope(self) -> BindingScope:
        """The enclosing functions (innermost first) and the method's class."""
        functions = tuple(key for key, _names in reversed(self.local_defs))
        return BindingScope(functions, self.method_class)

    def _binding(self, name: str) -> int | None:
        """Bits of the binding a name refers to (class bodies are not seen from methods)."""
        scopes = self.scopes
        last = len(scopes) - 1
        for index in range(last, -1, -1):
            scope = scopes[index]
            if scope.is_class and index != last:
                continue
            bits = scope.bindings.get(name)
            if bits is not None:
                return bits
        return None

    def _lookup(self, name: str) -> int:
        bits = self._binding(name)
        return self.sources.name_bits(name) if bits is None else bits

    def _helper_key(self, func: cst.BaseExpression) -> str | None:
        """The same-file function a call may resolve to, as a key of ``functions``."""
        if isinstance(func, cst.Name):
            name = func.value
            for owner_key, names in reversed(self.local_defs):
                if name in names:
                    return local_key(owner_key, name)
            return name
        if isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name):
            receiver = func.value.value
            if receiver in ("self", "cls"):
                if self.method_class is None:
                    return None
                return f"{self.method_class}.{func.attr.value}"
            if receiver[:1].isupper():
                return f"{receiver}.{func.attr.value}"
        return None

"""What a name or a call resolves to: definitions, imports, bindings and helper keys.

Functions are keyed by where they are defined in the file: ``f``, ``Class.method``,
``f.<locals>.g``. A call resolves to a key (``helper_key``) that ``calls.HelperChains`` and the
return values of ``functions`` answer for; names resolve through the scope stack to the bits of
their binding (``values`` says what those bits mean).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import libcst as cst

from esper_lint.analysis.calls import (
    FunctionInfo,
    calls_wrapped_only_under_rank,
    external_key,
    is_external,
)
from esper_lint.analysis.control import Exits
from esper_lint.analysis.implicit import Scope as BindingScope
from esper_lint.analysis.rank import DATA, ITER, RANK, UNIFORM
from esper_lint.analysis.symbols import dotted_name, final_name
from esper_lint.analysis.traversal import Scope, WalkState
from esper_lint.analysis.tree import child_nodes

if TYPE_CHECKING:
    from esper_lint.analysis.summaries import FunctionSummary

# Class hierarchies deeper than this are cut (a cycle of bases across modules ends here).
MAX_CLASS_DEPTH = 32


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
# Statements that cannot define a function of the enclosing body (a class body's are methods).
_NO_NESTED_DEFS = frozenset({cst.ClassDef, cst.SimpleStatementLine, cst.SimpleStatementSuite})


def local_def_names(body: Sequence[cst.CSTNode]) -> frozenset[str]:
    """Names of the functions a function body defines, however deep in its if/try/with blocks."""
    names: set[str] = set()
    pending = list(body)
    while pending:
        node = pending.pop()
        node_type = type(node)
        if node_type is cst.FunctionDef:
            names.add(node.name.value)  # type: ignore[attr-defined]
        elif node_type not in _NO_NESTED_DEFS:
            pending.extend(
                child for child in child_nodes(node) if isinstance(child, _NESTED_BLOCKS)
            )
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
        params = node.params
        info = FunctionInfo(
            key,
            params=tuple(self._param_bindings(params)),
            positional=tuple(p.name.value for p in (*params.posonly_params, *params.params)),
        )
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
        self.groups.enter_scope()
        self._suite(node.body)
        self.groups.leave_scope()
        self.scopes.pop()
        self.local_defs.pop()
        self.context, self.exits, self.owner, self.class_body, self.method_class = saved
        info.rank_zero_decorator = calls_wrapped_only_under_rank(info, self.functions)
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
        name = node.name.value
        body = node.body.body
        self.class_methods[name] = frozenset(
            statement.name.value for statement in body if isinstance(statement, cst.FunctionDef)
        )
        self.class_bases[name] = tuple(self._class_ref(arg.value) for arg in node.bases)
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
        if node.relative and self.project is not None:
            self._relative_import(node)
        else:
            self.imports.add_import_from(node)
        return ()

    def _relative_import(self, node: cst.ImportFrom) -> None:
        assert self.project is not None
        if isinstance(node.names, cst.ImportStar):
            return
        tail = dotted_name(node.module) if node.module is not None else ""
        base = self.project.absolute(len(node.relative), tail or "")
        if base is None:
            return
        self.imports.add_from(base, node.names)

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
        """The function a call may resolve to: a key of ``functions`` (this file) or an
        ``external_key`` (a function of another project module, see ``summaries``)."""
        if isinstance(func, cst.Name):
            name = func.value
            for owner_key, names in reversed(self.local_defs):
                if name in names:
                    return local_key(owner_key, name)
            if name not in self.functions:
                imported = self._imported_function(name)
                if imported is not None:
                    return imported
            return name
        if not isinstance(func, cst.Attribute):
            return None
        attr = func.attr.value
        if isinstance(func.value, cst.Name):
            receiver = func.value.value
            if receiver in ("self", "cls"):
                if self.method_class is None:
                    return None
                found = self._method_key(self.method_class, attr, skip_own=False)
                return f"{self.method_class}.{attr}" if found is None else found
            if receiver in self.class_methods:
                found = self._method_key(receiver, attr, skip_own=False)
                return f"{receiver}.{attr}" if found is None else found
        elif self._is_super(func.value) and self.method_class is not None:
            return self._method_key(self.method_class, attr, skip_own=True)
        dotted = dotted_name(func)
        imported = self._imported_function(dotted) if dotted is not None else None
        if imported is not None:
            return imported
        if isinstance(func.value, cst.Name) and func.value.value[:1].isupper():
            return f"{func.value.value}.{attr}"
        return None

    @staticmethod
    def _is_super(node: cst.BaseExpression) -> bool:
        return isinstance(node, cst.Call) and final_name(node.func) == "super"

    def _imported_function(self, dotted: str) -> str | None:
        """The external key of ``dotted`` when its head is an import of a project function."""
        if self.project is None or dotted.partition(".")[0] not in self.imports.aliases:
            return None
        found = self.project.resolve(self.imports.qualify(dotted))
        if found is None or self.project.function(*found) is None:
            return None
        return external_key(*found)

    def _here(self) -> str:
        return self.project.name if self.project is not None else ""

    def _class_ref(self, base: cst.BaseExpression) -> str:
        """``module:Class`` of a base class defined in the project, else ""."""
        dotted = dotted_name(base)
        if dotted is None:
            return ""
        if dotted in self.class_methods:
            return f"{self._here()}:{dotted}"
        if self.project is None or dotted.partition(".")[0] not in self.imports.aliases:
            return ""
        found = self.project.resolve(self.imports.qualify(dotted))
        if found is None:
            return ""
        ref = f"{found[0]}:{found[1]}"
        return ref if self.project.class_summary(ref) is not None else ""

    def _bases_of(self, ref: str) -> tuple[str, ...]:
        module, _, name = ref.partition(":")
        if module == self._here():
            return tuple(base for base in self.class_bases.get(name, ()) if base)
        summary = self.project.class_summary(ref) if self.project is not None else None
        return summary.bases if summary is not None else ()

    def _mro(self, ref: str, depth: int = 0) -> list[str]:
        """C3 linearisation over the project's classes (bases outside the project are left out)."""
        bases = self._bases_of(ref) if depth < MAX_CLASS_DEPTH else ()
        sequences = [self._mro(base, depth + 1) for base in bases] + [list(bases)]
        order = [ref]
        while True:
            sequences = [sequence for sequence in sequences if sequence]
            if not sequences:
                return order
            head = next(
                (s[0] for s in sequences if not any(s[0] in t[1:] for t in sequences)),
                sequences[0][0],  # no consistent order: Python refuses it; take the first
            )
            order.append(head)
            sequences = [s[1:] if s[0] == head else s for s in sequences]

    def _method_key(self, class_name: str, attr: str, *, skip_own: bool) -> str | None:
        """The key of the first definition of ``attr`` along the MRO of ``class_name``."""
        order = self._mro(f"{self._here()}:{class_name}")
        for ref in order[1:] if skip_own else order:
            module, _, name = ref.partition(":")
            if module == self._here():
                if attr in self.class_methods.get(name, ()):
                    return f"{name}.{attr}"
            else:
                summary = self.project.class_summary(ref) if self.project is not None else None
                if summary is not None and attr in summary.methods:
                    return external_key(module, f"{name}.{attr}")
        return None

    def _external(self, key: str | None) -> FunctionSummary | None:
        if key is None or self.project is None or not is_external(key):
            return None
        module, _, name = key.partition(":")
        return self.project.function(module, name)

    def _returns_of(self, key: str) -> int | None:
        """What a call of function ``key`` returns, when it is known yet."""
        if is_external(key):
            summary = self._external(key)
            return summary.return_bits if summary is not None else None
        return self.known_returns.get(key)

    def _is_rank_zero_decorator(self, target: cst.BaseExpression) -> bool:
        if not isinstance(target, (cst.Name, cst.Attribute)):
            return False
        key = self._helper_key(target)
        if key is None:
            return False
        if is_external(key):
            summary = self._external(key)
            return summary is not None and summary.rank_zero_decorator
        info = self.functions.get(key)
        return info is not None and info.rank_zero_decorator

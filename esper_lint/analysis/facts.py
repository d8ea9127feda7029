"""One traversal of a module that gathers every fact the rules ask about.

The walk is hand-written (no libcst visitor, no metadata providers): it keeps its own stacks of
scopes, conditions, loops and early exits, so a candidate file costs one pass over the tree.
Positions are resolved only when a rule reports something (``FileFacts.line``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import libcst as cst
from libcst.metadata import CodeRange

from esper_lint.analysis.control import (
    ComplementCandidate,
    Condition,
    ConditionKind,
    Context,
    Exit,
    ExitKind,
    Exits,
    controlling_condition,
    decide_exemptions,
    enclosing_data_loop,
)
from esper_lint.analysis.loops import Loop, loop_line_node, unwrap_iterable
from esper_lint.analysis.positions import positions_of
from esper_lint.analysis.rank import (
    DATA,
    ITER,
    ITER_WRAPPERS,
    NONE,
    RANK,
    Sources,
    condition_polarity,
    env_var_bits,
    is_distributed_mode_check,
)
from esper_lint.analysis.symbols import (
    CallKind,
    Imports,
    SymmetricNames,
    dotted_name,
    final_name,
)
from esper_lint.config import Config

RANK_DECORATORS = frozenset(
    {"rank_zero_only", "on_main_process", "on_local_main_process", "on_last_process", "on_process"}
)
VALUE_PRESERVING_CALLS = frozenset(
    {"int", "float", "str", "bool", "abs", "min", "max", "round", "sum", "any", "all", "divmod"}
)
# Names of what `accelerator.prepare` returns that are not data: the model, its optimizer...
NOT_DATA_WORDS = ("model", "optim", "sched", "net", "module", "opt", "lr", "criterion", "loss")
IN_PLACE_COLLECTIVES = frozenset(
    {"broadcast", "broadcast_object_list", "all_reduce", "all_gather", "all_gather_object"}
)
EXIT_CALLS = frozenset({"sys.exit", "exit", "quit", "os._exit"})
GUARD_BITS = RANK | DATA | ITER
_GUARD_WORDS = {
    ConditionKind.IF: "if ",
    ConditionKind.WHILE: "while ",
    ConditionKind.MATCH: "match ",
    ConditionKind.COMPREHENSION_IF: "if ",
    ConditionKind.EXCEPT: "except ",
}
MAX_EXTRA_PASSES = 2


@dataclass(eq=False)
class CallRecord:
    """A call that is symmetric itself or may resolve to a same-file helper."""

    node: cst.Call
    kind: CallKind | None
    helper_key: str | None
    context: Context
    exits: Exits


@dataclass(eq=False)
class FunctionInfo:
    key: str
    records: list[CallRecord] = field(default_factory=list)
    return_bits: int = NONE
    # per-position bits when every `return` returns a tuple of the same length
    element_returns: list[int] | None = None
    mixed_returns: bool = False

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


class FileFacts:
    """What the rules ask: the symmetric calls, what controls them, and where things are."""

    def __init__(self, module: cst.Module, calls: list[SymmetricCall]) -> None:
        self.module = module
        self.calls = calls

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
        return nodes

    def range_of(self, node: cst.CSTNode) -> CodeRange:
        return self._positions[node]

    def line(self, node: cst.CSTNode) -> int:
        return self._positions[node].start.line

    def text(self, node: cst.CSTNode) -> str:
        return " ".join(self.module.code_for_node(node).split())


def build_facts(module: cst.Module, config: Config) -> FileFacts:
    names = SymmetricNames.from_config(config)
    sources = Sources.from_config(config)
    known_returns: dict[str, int] = {}
    walker = _Walker(module, names, sources, known_returns)
    for _ in range(MAX_EXTRA_PASSES):
        returns = {key: info.return_bits for key, info in walker.functions.items()}
        # a function used before its definition turned out to return a rank-dependent value
        if not any(returns.get(key, NONE) & RANK for key in walker.used_before_definition):
            break
        walker = _Walker(module, names, sources, returns)
    return walker.facts()


@dataclass
class _Scope:
    bindings: dict[str, int]
    is_class: bool = False


_LEAVES = frozenset(
    {
        cst.Integer,
        cst.Float,
        cst.Imaginary,
        cst.SimpleString,
        cst.Ellipsis,
        cst.FormattedStringText,
    }
)
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


def _union(parts: list[int]) -> int:
    bits = NONE
    for part in parts:
        bits |= part
    return bits


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


def _element_bits(iterable_bits: int) -> int:
    """What iterating yields: rank stays rank, data and loaders yield data."""
    return (iterable_bits & RANK) | (DATA if iterable_bits & (DATA | ITER) else NONE)


def _is_wildcard(case: cst.MatchCase) -> bool:
    pattern = case.pattern
    return isinstance(pattern, cst.MatchAs) and pattern.pattern is None and case.guard is None


def _names_stop_iteration(node: cst.BaseExpression | None) -> bool:
    if node is None:
        return False
    if isinstance(node, cst.Tuple):
        return any(_names_stop_iteration(e.value) for e in node.elements)
    return final_name(node) == "StopIteration"


def _local_key(owner_key: str, name: str) -> str:
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


def _local_def_names(body: Sequence[cst.CSTNode]) -> frozenset[str]:
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


class _Walker:
    """The single traversal. ``stmt``/``expr`` return escaping exits / the value's bits."""

    def __init__(
        self,
        module: cst.Module,
        names: SymmetricNames,
        sources: Sources,
        known_returns: dict[str, int],
    ) -> None:
        self.module = module
        self.names = names
        self.sources = sources
        self.imports = Imports()
        self.known_returns = dict(known_returns)
        self.known_elements: dict[str, list[int]] = {}
        self.used_before_definition: set[str] = set()
        self.functions: dict[str, FunctionInfo] = {}
        # (key, names of the defs nested directly in it) of each enclosing function, outermost first
        self.local_defs: list[tuple[str, frozenset[str]]] = []
        self.records: list[CallRecord] = []
        self.conditions: list[Condition] = []
        self.complements: list[list[ComplementCandidate]] = []
        self.scopes: list[_Scope] = [_Scope({})]
        self.class_attrs: dict[tuple[str, str], int] = {}
        self.context: Context = ()
        self.exits: Exits = ()
        self.owner: FunctionInfo | None = None
        self.class_body: str | None = None  # the class whose body is being walked directly
        self.method_class: str | None = None  # the class of the enclosing method
        self.stmt_handlers: dict[type[cst.CSTNode], Callable[[cst.CSTNode], Exits]] = {
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
            cst.Import: self._import,  # type: ignore[dict-item]
            cst.ImportFrom: self._import_from,  # type: ignore[dict-item]
        }
        self.expr_handlers: dict[type[cst.CSTNode], Callable[[cst.CSTNode], int]] = {
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
        self._block(module.body)

    # ----------------------------------------------------------------- results

    def facts(self) -> FileFacts:
        calls = self._symmetric_calls()
        for call in calls:
            key = (call.chain[0], call.kind.value)
            for frame, branch in call.record.context:
                if isinstance(frame, Condition):
                    frame.record(branch, key)
        decide_exemptions(self.conditions, self.complements)
        return FileFacts(self.module, calls)

    def _symmetric_calls(self) -> list[SymmetricCall]:
        calls: list[SymmetricCall] = []
        memo: dict[tuple[str, CallKind], tuple[str, ...] | None] = {}
        for record in self.records:
            if record.kind is not None:
                calls.append(SymmetricCall(record, record.kind, (self._display(record),)))
                continue
            assert record.helper_key is not None
            for kind in CallKind:
                chain = self._helper_chain(record.helper_key, kind, memo, frozenset())
                if chain is not None:
                    calls.append(SymmetricCall(record, kind, (self._display(record), *chain)))
        return calls

    def _helper_chain(
        self,
        key: str,
        kind: CallKind,
        memo: dict[tuple[str, CallKind], tuple[str, ...] | None],
        visiting: frozenset[str],
    ) -> tuple[str, ...] | None:
        if (key, kind) in memo:
            return memo[(key, kind)]
        info = self.functions.get(key)
        if info is None or key in visiting:
            return None
        chain: tuple[str, ...] | None = None
        for record in info.records:
            if record.kind is kind:
                chain = (self._display(record),)
                break
            if record.kind is None and record.helper_key is not None:
                sub = self._helper_chain(record.helper_key, kind, memo, visiting | {key})
                if sub is not None:
                    chain = (self._display(record), *sub)
                    break
        memo[(key, kind)] = chain
        return chain

    def _display(self, record: CallRecord) -> str:
        func = record.node.func
        text = dotted_name(func)
        if text is None:
            text = " ".join(self.module.code_for_node(func).split())
        return f"{text}()"

    # -------------------------------------------------------------- statements

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

    def _suite(self, suite: cst.BaseSuite) -> Exits:
        return self._block(suite.body)

    def _in_frame(self, frame: Condition | Loop, branch: int, suite: cst.BaseSuite) -> Exits:
        saved = self.context
        self.context = saved + ((frame, branch),)
        exits = self._suite(suite)
        self.context = saved
        return exits

    def _generic_statement(self, node: cst.CSTNode) -> Exits:
        self._generic(node)
        return ()

    def _simple_line(self, node: cst.SimpleStatementLine) -> Exits:
        return self._block(node.body)

    def _if_statement(self, node: cst.If) -> Exits:
        return self._if(node)[0]

    def _if(self, node: cst.If) -> tuple[Exits, Condition]:
        bits = self.expr(node.test)
        condition = Condition(ConditionKind.IF, node, node.test, bits, branch_count=2)
        if bits & RANK:
            self.conditions.append(condition)
        exits = self._in_frame(condition, 0, node.body)
        orelse = node.orelse
        if isinstance(orelse, cst.If):
            saved = self.context
            self.context = saved + ((condition, 1),)
            more, condition.elif_ = self._if(orelse)
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
        self._bind(node.target, _element_bits(iter_bits))
        exits = self._leave_loop(loop, self._in_frame(loop, 0, node.body))
        if node.orelse is not None:
            exits += self._suite(node.orelse.body)
        return exits

    def _while(self, node: cst.While) -> Exits:
        bits = self.expr(node.test)
        loop = Loop(node)
        saved = self.context
        if bits & RANK:
            condition = Condition(ConditionKind.WHILE, node, node.test, bits)
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

    def _try(self, node: cst.Try | cst.TryStar) -> Exits:
        exits = self._suite(node.body)
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

    def _function(self, node: cst.FunctionDef) -> Exits:
        decorator_condition: Condition | None = None
        for decorator in node.decorators:
            self.expr(decorator.decorator)
            target = decorator.decorator
            if isinstance(target, cst.Call):
                target = target.func
            if decorator_condition is None and final_name(target) in RANK_DECORATORS:
                decorator_condition = Condition(ConditionKind.DECORATOR, decorator, decorator, RANK)
        self._params_defaults(node.params)
        name = node.name.value
        in_class = self.class_body
        if in_class is not None:
            key = f"{in_class}.{name}"
        elif self.local_defs:
            key = _local_key(self.local_defs[-1][0], name)
        else:
            key = name
        info = FunctionInfo(key)
        self.functions[key] = info
        self.local_defs.append((key, _local_def_names(node.body.body)))
        saved = (self.context, self.exits, self.owner, self.class_body, self.method_class)
        self.context = ((decorator_condition, 0),) if decorator_condition is not None else ()
        self.exits = ()
        self.owner = info
        self.class_body = None
        if in_class is not None:
            self.method_class = in_class
        self.scopes.append(_Scope(self._param_bindings(node.params)))
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
        self.scopes.append(_Scope({}, is_class=True))
        self._suite(node.body)
        self.scopes.pop()
        self.context, self.exits, self.class_body = saved
        return ()

    def _expr_statement(self, node: cst.Expr) -> Exits:
        self.expr(node.value)
        value = node.value
        if isinstance(value, cst.Call):
            callee = dotted_name(value.func)
            if callee is not None and self.imports.qualify(callee) in EXIT_CALLS:
                return self._exit(ExitKind.EXIT, node)
        return ()

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

    def _return(self, node: cst.Return) -> Exits:
        value = node.value
        if value is not None:
            parts = None
            if isinstance(value, cst.Tuple):
                parts = self._element_values(value, len(value.elements))
            bits = self.expr(value) if parts is None else _union(parts)
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

    def _import(self, node: cst.Import) -> Exits:
        self.imports.add_import(node)
        return ()

    def _import_from(self, node: cst.ImportFrom) -> Exits:
        self.imports.add_import_from(node)
        return ()

    def _exit(self, kind: ExitKind, node: cst.CSTNode) -> Exits:
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
                return (Exit(kind, node, frame, target, branch),)
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

    # ---------------------------------------------------------------- bindings

    def _bind_assignment(self, target: cst.BaseExpression, value: cst.BaseExpression) -> None:
        """Bind a target to a value's bits, element by element where the shapes match.

        ``rank = 0`` or ``for rank in range(3)`` make ``rank`` symmetric, but ``rank = setup()``
        with an unknown ``setup`` keeps the conventional name's rank dependence.
        """
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
        return key is not None and key in self.known_returns

    def _element_values(self, value: cst.BaseExpression, count: int) -> list[int] | None:
        """Bits of each element of a tuple value, or of a same-file function's tuple result."""
        if isinstance(value, (cst.Tuple, cst.List)) and len(value.elements) == count:
            if any(isinstance(e, cst.StarredElement) for e in value.elements):
                return None
            return [self.expr(e.value) for e in value.elements]
        if isinstance(value, cst.Call):
            key = self._helper_key(value.func)
            elements = self.known_elements.get(key) if key is not None else None
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

    def _bind(self, target: cst.CSTNode, bits: int, opaque: bool = False) -> None:
        if isinstance(target, cst.Name):
            # Rebinding clears rank dependence (unless the value is opaque); a `loss` or a
            # `train_loader` stays data by its name.
            name = target.value
            kept = DATA | ITER | RANK if opaque else DATA | ITER
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

    # ------------------------------------------------------------- expressions

    def expr(self, node: cst.CSTNode) -> int:
        node_type = type(node)
        if node_type in _LEAVES:
            return NONE
        handler = self.expr_handlers.get(node_type)
        if handler is not None:
            return handler(node)
        return self._generic(node)

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

    def _boolean(self, node: cst.BooleanOperation) -> int:
        left = self.expr(node.left)
        if not left & GUARD_BITS:
            return left | self.expr(node.right)
        condition = Condition(ConditionKind.BOOL, node, node.left, left)
        saved = self.context
        self.context = saved + ((condition, 0),)
        right = self.expr(node.right)
        self.context = saved
        return left | right

    def _if_expression(self, node: cst.IfExp) -> int:
        test = self.expr(node.test)
        condition = Condition(
            ConditionKind.IFEXP, node, node.test, test, branch_count=2, complete=True
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
        self.scopes.append(_Scope(self._param_bindings(node.params)))
        self.expr(node.body)
        self.scopes.pop()
        self.context, self.exits = saved
        return NONE

    def _comprehension(
        self, node: cst.ListComp | cst.SetComp | cst.GeneratorExp | cst.DictComp
    ) -> int:
        saved = self.context
        self.scopes.append(_Scope({}))
        bits = NONE
        clause: cst.CompFor | None = node.for_in
        while clause is not None:
            iter_bits = self.expr(clause.iter)
            bits |= iter_bits & (RANK | DATA)
            loop = Loop(clause)
            if iter_bits & ITER:
                loop.mark_iterable(unwrap_iterable(clause.iter))
            self._bind(clause.target, _element_bits(iter_bits))
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
        bits = self._callee(func)
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
        bits |= (arg_bits & carried) | self.sources.call_bits(func, qualified)
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
        helper_key = self._helper_key(func)
        if helper_key is not None:
            returns = self.known_returns.get(helper_key)
            if returns is None:
                self.used_before_definition.add(helper_key)
            else:
                bits |= returns
        kind = self.names.classify(func, self.imports)
        if kind is CallKind.COLLECTIVE:
            bits = self._after_collective(node, bits)
        if kind is not None or helper_key is not None:
            record = CallRecord(node, kind, helper_key, self.context, self.exits)
            self.records.append(record)
            if self.owner is not None:
                self.owner.records.append(record)
        return bits

    def _after_collective(self, node: cst.Call, bits: int) -> int:
        """A collective's result, and the buffers it fills in place, are the same on every rank."""
        if final_name(node.func) in IN_PLACE_COLLECTIVES:
            for arg in node.args:
                if arg.keyword is None and isinstance(arg.value, cst.Name):
                    name = arg.value.value
                    self._bind(arg.value, self._lookup(name) & ~RANK)
        return bits & ~RANK

    def _mark_while_driven_by_next(self, node: cst.Call) -> None:
        for frame, _branch in reversed(self.context):
            if isinstance(frame, Loop):
                if isinstance(frame.node, cst.While):
                    frame.mark_iterable(node)
                return

    def _helper_key(self, func: cst.BaseExpression) -> str | None:
        """The same-file function a call may resolve to, as a key of ``functions``."""
        if isinstance(func, cst.Name):
            name = func.value
            for owner_key, names in reversed(self.local_defs):
                if name in names:
                    return _local_key(owner_key, name)
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

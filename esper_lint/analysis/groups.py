"""Which process group a collective runs on, and which tests ask "is this rank a member of it?".

A group is known by its expression as written (``group=self.pp_group``; no group is the world)
and by the objects it derives from: the ranks list given to ``new_group(R)``, the nested list given
to ``new_subgroups_by_enumeration(L)``, the group whose ``get_process_group_ranks(G)`` a list holds.
Those origins are plain keys (``group:<text>``, ``ranks:<text>``, ``enum:<text>``): a membership
test and a collective agree when they share one. ``GroupTracker`` follows the assignments that
create them, in walk order, one scope per function.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import libcst as cst

from esper_lint.analysis.names import TORCH_DISTRIBUTED
from esper_lint.analysis.rank import is_minus_one
from esper_lint.analysis.symbols import dotted_name, final_name

# torch.distributed collective -> position of its `group` parameter (torch 2.13 signatures).
GROUP_PARAMETER: dict[str, int] = {
    "barrier": 0,
    "monitored_barrier": 0,
    "all_reduce": 2,
    "reduce": 3,
    "broadcast": 2,
    "all_gather": 2,
    "all_gather_into_tensor": 2,
    "gather": 3,
    "scatter": 3,
    "reduce_scatter": 3,
    "reduce_scatter_tensor": 3,
    "all_to_all": 2,
    "all_to_all_single": 4,
    "broadcast_object_list": 2,
    "all_gather_object": 2,
    "gather_object": 3,
    "scatter_object_list": 3,
}
# Group constructors: collective over the whole world unless `use_local_synchronization=True`,
# which makes them collective over the ranks given (the first parameter) only.
GROUP_CREATORS = frozenset({"new_group", "new_subgroups", "new_subgroups_by_enumeration"})
RANKS_PARAMETER = {"new_group": "ranks", "new_subgroups_by_enumeration": "ranks_per_subgroup_list"}
LOCAL_SYNCHRONIZATION = "use_local_synchronization"
GROUP_RANKS_CALLS = frozenset({"get_process_group_ranks"})
# Wrappers that keep a ranks list the same list for membership purposes.
RANKS_WRAPPERS = frozenset({"list", "tuple", "sorted", "set", "frozenset"})
WORLD_SPELLINGS = frozenset({"None", "WORLD", "group.WORLD", "GroupMember.WORLD"})
NON_MEMBER = "NON_GROUP_MEMBER"
MADE = "made"  # the origin key of a value assigned from a group constructor
# Predicates whose name says "this rank is (not) in X": `is_current_rank_in_grid(grid)`,
# `rank_in_group(g)`, `is_member(g)`, `_rank_not_in_group(g)`. Their argument is the set tested.
# Read by name only, they are no rank source of their own: one makes a test a membership test
# only where the traversal already found the test rank-dependent.
MEMBERSHIP_PREDICATE = re.compile(r"(^|_)(in_(grid|group|mesh|ranks)|is_member)$")
NEGATED_PREDICATE = re.compile(r"(^|_)not_in_")


@dataclass(frozen=True)
class Group:
    """The group a collective runs on. ``text`` None is the world (every rank of the job)."""

    text: str | None
    origins: frozenset[str] = frozenset()

    @property
    def is_world(self) -> bool:
        return self.text is None


WORLD = Group(None)


@dataclass(frozen=True)
class Membership:
    """A test that is true exactly on the members of a group (``member`` False: the negation)."""

    text: str
    origins: frozenset[str]
    member: bool = True
    # whether the test alone makes a condition rank-dependent (a predicate read by name does not)
    rank_source: bool = True

    def matches(self, group: Group) -> bool:
        return bool((self.origins & group.origins) - {MADE})


_COMPARISON_TEXT: dict[type[cst.BaseCompOp], str] = {
    cst.Equal: "==",
    cst.NotEqual: "!=",
    cst.LessThan: "<",
    cst.LessThanEqual: "<=",
    cst.GreaterThan: ">",
    cst.GreaterThanEqual: ">=",
    cst.In: "in",
    cst.NotIn: "not in",
    cst.Is: "is",
    cst.IsNot: "is not",
}


def source_text(module: cst.Module, node: cst.CSTNode) -> str:
    """The node's code on one line; names, numbers and simple comparisons without codegen."""
    quick = quick_text(node)
    return quick if quick is not None else " ".join(module.code_for_node(node).split())


def quick_text(node: cst.CSTNode) -> str | None:
    """The code of a simple expression (names, numbers, strings, attribute chains, subscripts,
    calls, comparisons and tuples of those), built without codegen, as it reads when formatted
    with single spaces after commas and around operators; None for anything else."""
    node_type = type(node)
    if getattr(node, "lpar", None) and node_type is not cst.Tuple:
        return None  # parenthesised: the parentheses are part of its text
    if node_type is cst.Name or node_type in _LITERALS:
        text: str = node.value  # type: ignore[attr-defined]
        return text
    quick = _QUICK.get(node_type)
    return quick(node) if quick is not None else None


def _quick_attribute(node: cst.Attribute) -> str | None:
    value = quick_text(node.value)
    return f"{value}.{node.attr.value}" if value is not None else None


def _quick_subscript(node: cst.Subscript) -> str | None:
    value = quick_text(node.value)
    if value is None or len(node.slice) != 1:
        return None
    index = node.slice[0].slice
    if not isinstance(index, cst.Index) or index.star is not None:
        return None
    inner = quick_text(index.value)
    return f"{value}[{inner}]" if inner is not None else None


def _quick_call(node: cst.Call) -> str | None:
    func = quick_text(node.func)
    if func is None:
        return None
    args = []
    for arg in node.args:
        value = quick_text(arg.value)
        if value is None or arg.star:
            return None
        args.append(value if arg.keyword is None else f"{arg.keyword.value}={value}")
    return f"{func}({', '.join(args)})"


def _quick_comparison(node: cst.Comparison) -> str | None:
    if len(node.comparisons) != 1:
        return None
    target = node.comparisons[0]
    operator = _COMPARISON_TEXT.get(type(target.operator))
    left, right = quick_text(node.left), quick_text(target.comparator)
    if operator is None or left is None or right is None:
        return None
    return f"{left} {operator} {right}"


def _quick_minus(node: cst.UnaryOperation) -> str | None:
    operand = quick_text(node.expression)
    return f"-{operand}" if isinstance(node.operator, cst.Minus) and operand is not None else None


def _quick_tuple(node: cst.Tuple) -> str | None:
    if len(node.lpar) != 1 or not node.elements:
        return None
    parts = []
    for element in node.elements:
        part = quick_text(element.value)
        if part is None or not isinstance(element, cst.Element):
            return None
        parts.append(part)
    return f"({parts[0]},)" if len(parts) == 1 else f"({', '.join(parts)})"


_LITERALS = frozenset({cst.Integer, cst.Float, cst.SimpleString})
_QUICK: dict[type[cst.CSTNode], Callable[[Any], str | None]] = {
    cst.Attribute: _quick_attribute,
    cst.Subscript: _quick_subscript,
    cst.Call: _quick_call,
    cst.Comparison: _quick_comparison,
    cst.UnaryOperation: _quick_minus,
    cst.Tuple: _quick_tuple,
}


_text = source_text


def _argument(call: cst.Call, keyword: str, position: int | None) -> cst.BaseExpression | None:
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == keyword:
            return arg.value
    if position is None:
        return None
    positional = [arg for arg in call.args if arg.keyword is None and not arg.star]
    return positional[position].value if position < len(positional) else None


def _is_true(node: cst.BaseExpression | None) -> bool:
    return isinstance(node, cst.Name) and node.value == "True"


class GroupTracker:
    """Origins of the groups and ranks lists a file builds, as the walk meets their assignments."""

    def __init__(self, module: cst.Module, qualify: Callable[[str], str]) -> None:
        self.module = module
        self.qualify = qualify
        # expression text -> origin keys; names live in their function's scope, `a.b` globally
        self.scopes: list[dict[str, frozenset[str]]] = [{}]
        self.attributes: dict[str, frozenset[str]] = {}
        # the ranks texts given to constructors: a literal list is a group's only if one was
        self.constructed: set[str] = set()

    # ------------------------------------------------------------ scopes and bindings

    def enter_scope(self) -> None:
        self.scopes.append({})

    def leave_scope(self) -> None:
        self.scopes.pop()

    def _origins(self, text: str) -> frozenset[str]:
        if "." in text or "[" in text:
            return self.attributes.get(text, frozenset())
        for scope in (self.scopes[-1], self.scopes[0]):
            if text in scope:
                return scope[text]
        return frozenset()

    def _set(self, target: cst.BaseExpression, origins: frozenset[str]) -> None:
        if isinstance(target, cst.Name):
            scope = self.scopes[-1]
        elif isinstance(target, (cst.Attribute, cst.Subscript)):
            scope = self.attributes
        else:
            return
        if not origins and not scope:
            return  # nothing to forget: the common case, without rendering the target
        text = _text(self.module, target)
        if origins:
            scope[text] = origins
        else:
            scope.pop(text, None)

    def _qualified_attr(self, func: cst.BaseExpression) -> str | None:
        """``new_group`` for ``dist.new_group``/``torch.distributed.new_group``, else None."""
        dotted = dotted_name(func)
        if dotted is None:
            return None
        module, _, attr = self.qualify(dotted).rpartition(".")
        return attr if module.startswith(TORCH_DISTRIBUTED) else None

    def note_assignment(self, target: cst.BaseExpression, value: cst.BaseExpression) -> None:
        """``G = new_group(R)``, ``G, _ = new_subgroups_by_enumeration(L)``, ``R = ranks_of(G)``."""
        if isinstance(target, (cst.Tuple, cst.List)):
            if isinstance(value, (cst.Tuple, cst.List)) and len(value.elements) == len(
                target.elements
            ):
                for element, part in zip(target.elements, value.elements, strict=True):
                    self.note_assignment(element.value, part.value)
                return
            created = self._created_origins(value)
            for index, element in enumerate(target.elements):
                first = index == 0 and created
                self._set(
                    element.value, self._own(element.value, created) if first else frozenset()
                )
            return
        created = self._created_origins(value)
        if created:
            self._set(target, self._own(target, created))
            return
        ranks_of = self._ranks_of_group(value) or self._element_containing_rank(value)
        if ranks_of:
            self._set(target, ranks_of)
            return
        if isinstance(value, (cst.Name, cst.Attribute)):
            # `self.pp_group = group`, `self.dp_ranks = dp_ranks`: the alias stands for the value
            text = _text(self.module, value)
            self._set(target, self._origins(text) | {f"ranks:{text}", f"group:{text}"})
            return
        self._set(target, self._derived_origins(value))

    def _derived_origins(self, value: cst.BaseExpression) -> frozenset[str]:
        """``boundary_ranks(self.grid, ...)``: a value computed from a grid or ranks list by a
        call derives from each attribute chain it is given (``from:self.grid``)."""
        if not isinstance(value, cst.Call):
            return frozenset()
        origins: set[str] = set()
        for arg in value.args:
            text = dotted_name(arg.value)
            if text is not None and "." in text:
                origins |= self._origins(text) | {f"from:{text}"}
        return frozenset(origins)

    def _own(self, target: cst.BaseExpression, origins: frozenset[str]) -> frozenset[str]:
        return origins | {f"group:{_text(self.module, target)}", MADE}

    def _created_origins(self, value: cst.BaseExpression) -> frozenset[str]:
        """The origins of a group a ``new_group``/``new_subgroups_by_enumeration`` call creates."""
        if isinstance(value, cst.Subscript) and len(value.slice) == 1:
            index = value.slice[0].slice
            if isinstance(index, cst.Index) and isinstance(index.value, cst.Integer):
                if index.value.value == "0":
                    return self._created_origins(value.value)
            return frozenset()
        if not isinstance(value, cst.Call):
            return frozenset()
        name = self._qualified_attr(value.func)
        if name == "new_group":
            ranks = _argument(value, "ranks", 0)
            if ranks is not None:
                self.constructed.add(self._ranks_text(ranks))
                return self._derived(ranks) | {f"ranks:{self._ranks_text(ranks)}"}
        if name == "new_subgroups_by_enumeration":
            nested = _argument(value, "ranks_per_subgroup_list", 0)
            if nested is not None:
                return self._derived(nested) | {f"enum:{self._ranks_text(nested)}"}
        return frozenset()

    def _derived(self, ranks: cst.BaseExpression) -> frozenset[str]:
        """What a ranks list given to a constructor derives from (its ``from:`` origins)."""
        origins = self._origins(self._ranks_text(ranks))
        return frozenset(key for key in origins if key.startswith("from:"))

    def _ranks_of_group(self, value: cst.BaseExpression) -> frozenset[str]:
        """``get_process_group_ranks(G)`` (possibly wrapped in ``list()``): G's origins."""
        value = self._unwrap(value)
        if not isinstance(value, cst.Call) or final_name(value.func) not in GROUP_RANKS_CALLS:
            return frozenset()
        group = _argument(value, "group", 0)
        if group is None:
            return frozenset()
        text = _text(self.module, group)
        return self._origins(text) | {f"group:{text}"}

    def _element_containing_rank(self, value: cst.BaseExpression) -> frozenset[str]:
        """``next((r for r in L if rank in r), default)``: the element of L holding this rank."""
        if not (isinstance(value, cst.Call) and final_name(value.func) == "next" and value.args):
            return frozenset()
        generator = value.args[0].value
        if not isinstance(generator, cst.GeneratorExp):
            return frozenset()
        clause = generator.for_in
        if clause.inner_for_in is not None or not isinstance(clause.target, cst.Name):
            return frozenset()
        if not (isinstance(generator.elt, cst.Name) and generator.elt.value == clause.target.value):
            return frozenset()
        return frozenset({f"enum:{self._ranks_text(clause.iter)}"})

    def note_loop(self, target: cst.BaseExpression, iterable: cst.BaseExpression) -> None:
        """``for ranks in L`` (or ``enumerate(L)``): ``ranks`` is an element of L."""
        if (
            isinstance(iterable, cst.Call)
            and final_name(iterable.func) == "enumerate"
            and iterable.args
            and isinstance(target, cst.Tuple)
            and len(target.elements) == 2
        ):
            iterable, target = iterable.args[0].value, target.elements[1].value
        if isinstance(target, cst.Name):
            self._set(target, frozenset({f"enum:{self._ranks_text(iterable)}"}))

    @staticmethod
    def _unwrap(node: cst.BaseExpression) -> cst.BaseExpression:
        while (
            isinstance(node, cst.Call)
            and final_name(node.func) in RANKS_WRAPPERS
            and len(node.args) == 1
        ):
            node = node.args[0].value
        return node

    def _ranks_text(self, node: cst.BaseExpression) -> str:
        return _text(self.module, self._unwrap(node))

    # ------------------------------------------------------------ collectives

    def group_of(self, call: cst.Call) -> Group:
        """The group a collective call runs on (the world for everything but torch's subgroups)."""
        name = self._qualified_attr(call.func)
        if name is None:
            return WORLD
        if name in GROUP_CREATORS:
            return self._created_group(call, name)
        position = GROUP_PARAMETER.get(name)
        if position is None:
            return WORLD
        group = _argument(call, "group", position)
        if group is None:
            return WORLD
        text = _text(self.module, group)
        if text in WORLD_SPELLINGS or text.endswith(".WORLD"):
            return WORLD
        return Group(text, self._origins(text) | {f"group:{text}"})

    def arguments_of(self, call: cst.Call) -> tuple[tuple[int | str, Group], ...]:
        """The groups a helper call passes, if its arguments are groups (a chain of names)."""
        passed: list[tuple[int | str, Group]] = []
        position = 0
        for arg in call.args:
            if arg.star:
                break
            where: int | str = arg.keyword.value if arg.keyword is not None else position
            if arg.keyword is None:
                position += 1
            text = dotted_name(arg.value)
            if text is None:
                continue
            if text in WORLD_SPELLINGS or text.endswith(".WORLD"):
                passed.append((where, WORLD))
            else:
                passed.append((where, Group(text, self._origins(text) | {f"group:{text}"})))
        return tuple(passed)

    def _created_group(self, call: cst.Call, name: str) -> Group:
        if not _is_true(_argument(call, LOCAL_SYNCHRONIZATION, None)):
            return WORLD
        keyword = RANKS_PARAMETER.get(name)
        ranks = _argument(call, keyword, 0) if keyword is not None else None
        if ranks is None:
            return WORLD
        kind = "enum" if name == "new_subgroups_by_enumeration" else "ranks"
        text = self._ranks_text(ranks)
        return Group(f"{name}({text})", frozenset({f"{kind}:{text}"}))

    # ------------------------------------------------------------ membership tests

    def membership(
        self, test: cst.BaseExpression, is_rank: Callable[[cst.BaseExpression], bool]
    ) -> Membership | None:
        """The group ``test`` tests membership of, if it is one of the membership forms."""
        if isinstance(test, cst.Call):
            return self._membership_predicate(test)
        if not isinstance(test, cst.Comparison) or len(test.comparisons) != 1:
            return None
        left, target = test.left, test.comparisons[0]
        operator, right = target.operator, target.comparator
        if isinstance(operator, (cst.In, cst.NotIn)):
            if not is_rank(left) or is_rank(right):
                return None
            literal = isinstance(self._unwrap(right), (cst.Tuple, cst.List, cst.Set))
            if literal and self._ranks_text(right) not in self.constructed:
                return None  # `local_rank in (-1, 0)` selects ranks; it names no group
            origins = self._ranks_origins(right)
            return Membership(_text(self.module, test), origins, isinstance(operator, cst.In))
        group = self._group_rank_subject(left)
        if group is not None:
            member = _rank_is_member(operator, right)
            if member is None:
                return None
            origins = self._origins(group) | {f"group:{group}"}
            return Membership(_text(self.module, test), origins, member)
        return self._non_member_comparison(test, left, operator, right)

    def _membership_predicate(self, test: cst.Call) -> Membership | None:
        """``self.is_current_rank_in_grid(self.grid)``: membership of what derives from the grid."""
        name = final_name(test.func)
        if name is None or not MEMBERSHIP_PREDICATE.search(name) or len(test.args) != 1:
            return None
        tested = dotted_name(test.args[0].value)
        if tested is None:
            return None
        text = _text(self.module, test)
        origins = self._origins(tested) | {f"from:{tested}", f"ranks:{tested}", f"group:{tested}"}
        return Membership(text, frozenset(origins), not NEGATED_PREDICATE.search(name), False)

    def _ranks_origins(self, ranks: cst.BaseExpression) -> frozenset[str]:
        of_group = self._ranks_of_group(ranks)
        if of_group:
            return of_group
        text = self._ranks_text(ranks)
        return self._origins(text) | {f"ranks:{text}"}

    def _group_rank_subject(self, node: cst.BaseExpression) -> str | None:
        """G of ``dist.get_rank(group=G)``, ``dist.get_rank(G)`` or ``G.rank()``."""
        if not isinstance(node, cst.Call):
            return None
        if isinstance(node.func, cst.Attribute) and node.func.attr.value == "rank":
            receiver = _text(self.module, node.func.value)
            if not node.args and receiver not in ("self", "cls"):
                return receiver
            return None
        if self._qualified_attr(node.func) == "get_rank":
            group = _argument(node, "group", 0)
            if group is not None:
                return _text(self.module, group)
        return None

    def _non_member_comparison(
        self,
        test: cst.Comparison,
        left: cst.BaseExpression,
        operator: cst.BaseCompOp,
        right: cst.BaseExpression,
    ) -> Membership | None:
        """``G is not None`` / ``G != GroupMember.NON_GROUP_MEMBER`` for G made by new_group."""
        is_none = isinstance(right, cst.Name) and right.value == "None"
        is_marker = final_name(right) == NON_MEMBER
        if not (is_none or is_marker):
            return None
        if isinstance(operator, (cst.IsNot, cst.NotEqual)):
            member = True
        elif isinstance(operator, (cst.Is, cst.Equal)):
            member = False
        else:
            return None
        group = _text(self.module, left)
        origins = self._origins(group)
        if MADE not in origins:
            return None  # a group of unknown making: `is not None` may just mean "distributed"
        return Membership(_text(self.module, test), origins | {f"group:{group}"}, member)


def _rank_is_member(operator: cst.BaseCompOp, right: cst.BaseExpression) -> bool | None:
    """``>= 0``, ``!= -1``, ``> -1``: member; ``< 0``, ``== -1``: not; anything else: None."""
    zero = isinstance(right, cst.Integer) and right.value == "0"
    if zero and isinstance(operator, cst.GreaterThanEqual):
        return True
    if zero and isinstance(operator, cst.LessThan):
        return False
    if is_minus_one(right):
        if isinstance(operator, (cst.NotEqual, cst.GreaterThan, cst.IsNot)):
            return True
        if isinstance(operator, (cst.Equal, cst.Is)):
            return False
    return None

"""The code-bearing children of a libcst node, fast.

libcst's ``node.children`` runs a visitor over every field, whitespace and punctuation included:
measured, it was a third of the analysis's time on the benchmark corpus. ``child_nodes`` reads
the node's dataclass fields directly, skipping the layout fields (whitespace, brackets, commas),
with a field order read once per node type. It returns the same nodes, in the same (lexical)
order, as ``node.children`` without its layout nodes; ``tests/test_analysis_tree.py`` checks
that on every node of the fixtures.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import libcst as cst

# Fields that only hold layout: whitespace, comments, brackets and separators.
_LAYOUT_FIELDS = frozenset(
    {
        "asynchronous",
        "colon",
        "comment",
        "comma",
        "dot",
        "empty_lines",
        "equal",
        "first_colon",
        "first_line",
        "footer",
        "header",
        "lbrace",
        "last_line",
        "lbracket",
        "leading_lines",
        "lines_after_decorators",
        "lpar",
        "newline",
        "posonly_ind",
        "rbrace",
        "rbracket",
        "relative",
        "rpar",
        "second_colon",
        "semicolon",
        "trailing_comma",
        "trailing_whitespace",
    }
)

# Node types whose code-bearing fields are declared in another order than they appear in the
# source (libcst's ``_visit_and_replace_children`` is the reference).
_LEXICAL_ORDER: dict[type[cst.CSTNode], tuple[str, ...]] = {
    cst.Arg: ("keyword", "value"),
    cst.ClassDef: ("decorators", "name", "type_parameters", "bases", "keywords", "body"),
    cst.ExceptHandler: ("type", "name", "body"),
    cst.ExceptStarHandler: ("type", "name", "body"),
    cst.FunctionDef: ("decorators", "name", "type_parameters", "params", "returns", "body"),
    cst.IfExp: ("body", "test", "orelse"),
    cst.MatchCase: ("pattern", "guard", "body"),
    cst.Parameters: ("posonly_params", "params", "star_arg", "kwonly_params", "star_kwarg"),
}

_SEQUENCES = (tuple, list)
_NOT_NODES = (str, bool, int, float, cst.MaybeSentinel)

_fields_by_type: dict[type[cst.CSTNode], tuple[str, ...]] = {}


def _code_fields(node_type: type[cst.CSTNode]) -> tuple[str, ...]:
    fields = _fields_by_type.get(node_type)
    if fields is None:
        declared = [
            field.name
            for field in dataclasses.fields(node_type)
            if field.name not in _LAYOUT_FIELDS and not field.name.startswith("whitespace")
        ]
        ordered = _LEXICAL_ORDER.get(node_type)
        if ordered is not None:
            declared = [name for name in ordered if name in declared] + [
                name for name in declared if name not in ordered
            ]
        fields = tuple(declared)
        _fields_by_type[node_type] = fields
    return fields


def child_nodes(node: cst.CSTNode) -> list[cst.CSTNode]:
    """The node's direct children that hold code, in source order."""
    found: list[cst.CSTNode] = []
    for name in _code_fields(type(node)):
        value = getattr(node, name)
        # libcst fields hold a node, a sequence of nodes, None, a sentinel or a string; nodes
        # are told apart from the rest without isinstance(..., CSTNode), an ABC check that
        # costs several times a type test
        if type(value) in _SEQUENCES:
            found.extend(value)
        elif value is not None and type(value) not in _NOT_NODES:
            found.append(value)
    return found


def descendants(node: cst.CSTNode) -> Iterator[cst.CSTNode]:
    """``node`` and every code-bearing node under it, in no particular order."""
    pending = [node]
    while pending:
        current = pending.pop()
        yield current
        pending.extend(child_nodes(current))

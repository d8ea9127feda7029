"""Blank, before libcst parses a candidate, the top-level definitions that cannot matter.

libcst's parse is most of a cold run, and a candidate file is often a long module of which a
few functions make a symmetric call. CPython's tree, which the depth check builds anyway, says
where each top-level statement starts and ends; this module decides which top-level ``def`` and
``class`` statements the analysis of the file could not miss, and replaces the others by empty
lines, so that libcst parses less and every position stays where it was.

A top-level definition is kept when

- **it could make or name a symmetric call itself:** its text (comments and strings included)
  names a symmetric call, a rank source or an implicit collective (``contribution_words``), an
  ``import``, or a name that an import from the project binds (its summary may offer a call);
- **it refers to something that does:** a name that a kept definition of that first kind, or a
  top-level statement naming such words, binds (a caller of a helper that makes a collective);
- **kept code refers to it:** a name it binds (its own name, an attribute it assigns, a
  ``global``) appears as a word in kept code, so every helper, base class, decorator and value
  the kept code reads is still there.

Every other top-level statement (imports, assignments, ``if __name__ == "__main__":``, loops) is
kept. A blanked definition holds no symmetric call, reads no project summary and is read by no
kept code, so it can neither be reported nor change what is reported; its ``# noqa`` comments
are read from the original bytes. ``tests/test_partial.py`` checks identical results with and
without this on every fixture, on generated programs and on the benchmark corpora.

The tree of a partly blanked file is not a summary of its module: the engine parses such a file
whole when another candidate imports it, and the checker neither keeps its tree nor remembers
its summary.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache

from esper_lint.config import Config

# Blank only when it removes at least this share of the bytes: below it, the smaller parse does
# not pay for giving up the tree as a summary for importers.
MIN_BLANKED_SHARE = 0.05

_DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
_WORD = re.compile(rb"[A-Za-z_][A-Za-z0-9_]*")
_IMPORT = re.compile(rb"\bimport\b")
# Receivers whose attributes name the object itself, not something a reader could look up.
_SELF_NAMES = frozenset({"self", "cls"})


@dataclass
class _Unit:
    """One top-level statement: its lines (1-based, decorators included) and its names."""

    statement: ast.stmt
    text: bytes
    first: int
    last: int
    is_definition: bool
    effectful: bool
    kept: bool
    names: frozenset[str] = frozenset()  # module-level names it binds: what callers name
    binds: frozenset[str] = frozenset()  # every name through which code could read what it sets
    words: frozenset[str] = frozenset()

    @property
    def size(self) -> int:
        return len(self.text)

    def read_names(self) -> None:
        self.words = frozenset(word.decode("ascii") for word in _WORD.findall(self.text))
        self.names = frozenset(_module_names(self.statement))
        self.binds = self.names | frozenset(_read_back_names(self.statement))


def contribution_words(config: Config) -> Callable[[bytes], bool]:
    """``names_one(text)``: does ``text`` name a symmetric call, a rank source, or a name an
    implicit collective is recognised by (without its receiver, unlike the prefilter)?"""
    from esper_lint.analysis.names import receiver_call_names, symmetric_call_names
    from esper_lint.analysis.rank import RANK_CALLS, RANK_ENV_VARS, RANK_FLAG_CALLS, RANK_NAMES

    words = (
        symmetric_call_names(config)
        | RANK_NAMES
        | RANK_CALLS
        | RANK_FLAG_CALLS
        | RANK_ENV_VARS
        | frozenset(config.extend_rank_sources)
        | frozenset(word for word, _receiver in receiver_call_names(config))
    )
    return _search(frozenset(words))


@lru_cache(maxsize=8)
def _search(words: frozenset[str]) -> Callable[[bytes], bool]:
    from esper_lint.prefilter import names_pattern

    search = names_pattern(words).search
    return lambda text: search(text) is not None


def blank_unrelated(
    source: bytes,
    tree: ast.Module,
    names_one: Callable[[bytes], bool],
    is_project_module: Callable[[int, str], bool],
) -> bytes | None:
    """``source`` with the top-level definitions that cannot matter replaced by empty lines, or
    None when that would remove too little, when the file's line breaks are not plain ``\\n`` /
    ``\\r\\n`` (CPython's line numbers and a byte split could disagree), or when its code holds
    non-ASCII characters (identifiers are matched as ASCII words).

    ``is_project_module(level, module)`` says whether an import names a project module.
    """
    if b"\r" in source and source.count(b"\r") != source.count(b"\r\n"):
        return None
    if not source.isascii() and not _code_is_ascii(source):
        return None  # names are matched as ASCII words; `größe` or `ﬁnd` (NFKC: find) are not
    lines = source.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))
    units = list(_units(source, tree, offsets, names_one, is_project_module))
    least = MIN_BLANKED_SHARE * len(source)
    # what could go at most: most files stop here, before any name is read
    if sum(unit.size for unit in units if unit.is_definition and not unit.effectful) < least:
        return None
    for unit in units:
        unit.read_names()
    _spread_effects(units)
    _keep_what_is_read(units)
    blanked = [unit for unit in units if not unit.kept]
    if not blanked or sum(unit.size for unit in blanked) < least:
        return None
    for unit in blanked:
        for index in range(unit.first - 1, unit.last):
            line = lines[index]
            lines[index] = b"\r\n" if line.endswith(b"\r\n") else b"\n"
    return b"".join(lines)


def _code_is_ascii(source: bytes) -> bool:
    from esper_lint.prefilter import code_only

    return code_only(source).isascii()


def _units(
    source: bytes,
    tree: ast.Module,
    offsets: list[int],
    names_one: Callable[[bytes], bool],
    is_project_module: Callable[[int, str], bool],
) -> Iterator[_Unit]:
    for statement in tree.body:
        first = min([statement.lineno, *(d.lineno for d in _decorators(statement))])
        last = statement.end_lineno or statement.lineno
        text = source[offsets[first - 1] : offsets[min(last, len(offsets) - 1)]]
        is_definition = isinstance(statement, _DEFINITIONS) and not text.rstrip().endswith(b"\\")
        if not isinstance(statement, _DEFINITIONS):
            # `try: from .helpers import sync`: an import in a top-level block counts too
            effectful = names_one(text) or any(
                _imports_project(inner, is_project_module)
                for inner in _nested(statement)
                if isinstance(inner, (ast.Import, ast.ImportFrom))
            )
        elif is_definition:
            effectful = names_one(text) or _IMPORT.search(text) is not None
        else:
            effectful = names_one(text)
        yield _Unit(statement, text, first, last, is_definition, effectful, not is_definition)


def _decorators(statement: ast.stmt) -> list[ast.expr]:
    return statement.decorator_list if isinstance(statement, _DEFINITIONS) else []


def _imports_project(
    statement: ast.Import | ast.ImportFrom, is_project_module: Callable[[int, str], bool]
) -> bool:
    if isinstance(statement, ast.ImportFrom):
        module = statement.module or ""
        return is_project_module(statement.level, module) or any(
            is_project_module(statement.level, f"{module}.{alias.name}".lstrip("."))
            for alias in statement.names
        )
    return any(is_project_module(0, alias.name) for alias in statement.names)


def _spread_effects(units: list[_Unit]) -> None:
    """Mark effectful every statement that names what an effectful statement binds at module
    level (a caller of a helper that makes a collective, transitively)."""
    effectful_names: set[str] = set()
    pending = [unit for unit in units if unit.effectful]
    while pending:
        for unit in pending:
            effectful_names.update(unit.names)
        pending = [
            unit
            for unit in units
            if not unit.effectful and not unit.words.isdisjoint(effectful_names)
        ]
        for unit in pending:
            unit.effectful = True
    for unit in units:
        unit.kept = unit.kept or unit.effectful


def _keep_what_is_read(units: list[_Unit]) -> None:
    """Keep every definition that binds a name some kept statement mentions, transitively."""
    binders: dict[str, list[_Unit]] = {}
    for unit in units:
        if not unit.kept:
            for name in unit.binds:
                binders.setdefault(name, []).append(unit)
    pending = [unit for unit in units if unit.kept]
    while pending:
        unit = pending.pop()
        for word in unit.words:
            for binder in binders.pop(word, ()):
                if not binder.kept:
                    binder.kept = True
                    pending.append(binder)


def _module_names(statement: ast.stmt) -> Iterator[str]:
    """The module-level names a top-level statement binds: a definition's own name; for any
    other statement, the names it assigns, imports or defines, at any depth of its blocks."""
    if isinstance(statement, _DEFINITIONS):
        yield statement.name
        return
    stack = [statement]
    while stack:
        current = stack.pop()
        if isinstance(current, (ast.Import, ast.ImportFrom)):
            for alias in current.names:
                yield (alias.asname or alias.name).partition(".")[0]
        elif isinstance(current, _DEFINITIONS):
            yield current.name
            continue
        for target in _targets(current):
            yield from _target_names(target, plain=True)
        stack.extend(_children(current))


def _read_back_names(statement: ast.stmt) -> Iterator[str]:
    """The names through which code elsewhere could read what a statement sets: its module
    names, ``global`` names, and every attribute and subscripted name it assigns anywhere
    (``state.group = ...`` is seen by any code that names ``group``)."""
    yield from _module_names(statement)
    for current in _nested(statement):
        if isinstance(current, (ast.Global, ast.Nonlocal)):
            yield from current.names
        for target in _targets(current):
            yield from _target_names(target, plain=False)


def _nested(statement: ast.stmt) -> Iterator[ast.stmt]:
    """The statement and every statement in its blocks, at any depth."""
    stack = [statement]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(_children(current))


def _children(statement: ast.stmt) -> Iterator[ast.stmt]:
    """The statements nested directly in one (not expressions: cheaper than ast.walk)."""
    for field in ("body", "orelse", "finalbody"):
        yield from getattr(statement, field, ())
    for handler in getattr(statement, "handlers", ()):
        yield from handler.body
    for case in getattr(statement, "cases", ()):
        yield from case.body


def _targets(statement: ast.stmt) -> list[ast.expr]:
    if isinstance(statement, ast.Assign):
        return statement.targets
    if isinstance(statement, (ast.AugAssign, ast.AnnAssign, ast.For, ast.AsyncFor)):
        return [statement.target]
    if isinstance(statement, (ast.With, ast.AsyncWith)):
        return [item.optional_vars for item in statement.items if item.optional_vars is not None]
    return []


def _target_names(target: ast.expr, plain: bool) -> Iterator[str]:
    """With ``plain``, the plain names a target binds; else its attribute and subscript names."""
    if isinstance(target, ast.Name):
        if plain:
            yield target.id
    elif isinstance(target, (ast.Tuple, ast.List)):
        for element in target.elts:
            yield from _target_names(element, plain)
    elif isinstance(target, ast.Starred):
        yield from _target_names(target.value, plain)
    elif not plain and isinstance(target, (ast.Attribute, ast.Subscript)):
        # `state.group = ...`, `groups["dp"] = ...`: readers name the attribute or the base
        node: ast.expr = target
        while isinstance(node, (ast.Attribute, ast.Subscript)):
            if isinstance(node, ast.Attribute):
                yield node.attr
            node = node.value
        if isinstance(node, ast.Name) and node.id not in _SELF_NAMES:
            yield node.id

"""Shared helpers of the analysis tests: lint a snippet, get (line, code) pairs or messages;
compare the parse without node validation with libcst's own."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable

import libcst

from esper_lint.checker import _TOO_DEEP, _cpython_verdict, check_source, parse_unvalidated
from esper_lint.config import Config
from esper_lint.diagnostics import Diagnostic


def diagnostics(source: str, config: Config | None = None) -> list[Diagnostic]:
    code = textwrap.dedent(source).lstrip("\n")
    return check_source(code.encode(), "snippet.py", config or Config())


def found(source: str, config: Config | None = None) -> set[tuple[int, str]]:
    return {(d.line, d.code) for d in diagnostics(source, config)}


def messages(source: str, config: Config | None = None) -> list[str]:
    return [f"{d.code} {d.message}" for d in diagnostics(source, config)]


def _tree_or_error(parse: Callable[[bytes], libcst.Module], source: bytes) -> object:
    try:
        return parse(source)
    except Exception as error:  # noqa: BLE001 - compared, not hidden
        return type(error)


def assert_same_parse(source: bytes) -> None:
    """``parse_unvalidated`` builds libcst's own tree, or fails as libcst does.

    Not asked of nesting that CPython refuses as too deep: esper-lint never hands that to libcst,
    whose native parser may overflow the C stack on it (a crash, not an exception).
    """
    if _cpython_verdict(source)[0] is _TOO_DEEP:
        return
    mine = _tree_or_error(parse_unvalidated, source)
    libcsts = _tree_or_error(libcst.parse_module, source)
    if not isinstance(libcsts, libcst.Module):
        assert mine is libcsts, source
        return
    assert isinstance(mine, libcst.Module), (mine, source)
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 20_000))  # deep_equals recurses as deep as the tree
    try:
        assert mine.deep_equals(libcsts), source
    finally:
        sys.setrecursionlimit(limit)

"""``analysis.tree.child_nodes`` against libcst's own ``children``, on every fixture node."""

from __future__ import annotations

from pathlib import Path

import libcst as cst
import pytest

from esper_lint.analysis.tree import child_nodes, descendants

FIXTURES = Path(__file__).parent / "fixtures"

# libcst nodes that hold only layout (whitespace, comments, brackets, separators)
LAYOUT = (
    cst.BaseParenthesizableWhitespace,
    cst.EmptyLine,
    cst.TrailingWhitespace,
    cst.Newline,
    cst.Comment,
    cst.Comma,
    cst.Dot,
    cst.Colon,
    cst.Semicolon,
    cst.AssignEqual,
    cst.LeftParen,
    cst.RightParen,
    cst.LeftSquareBracket,
    cst.RightSquareBracket,
    cst.LeftCurlyBrace,
    cst.RightCurlyBrace,
    cst.Asynchronous,
    cst.ParamSlash,
)

EXTRA = """
async def f[T](a, /, b: int = 1, *c, d, **e) -> T:
    @dec
    class C(B, metaclass=M):
        x: int = 1
    try:
        pass
    except (ValueError, KeyError) as err:
        y = a if b else c
    try:
        pass
    except* OSError:
        pass
    match a:
        case [1, *rest] if rest:
            pass
        case {"k": v, **kw}:
            pass
        case P(x, y=z) | None:
            pass
    async with g() as (h, i):
        await j
    z = [k async for k in l if k]
    w = {m: n for m, n in o.items()}
    s = f"{a!r:>{b}}" "tail"
    t = x[1:2:3, ...]
    lam = lambda p, *q, r=1: p
    del z[0], w.a
    global gg
    return (yield from it)
"""


def _sources() -> list[tuple[str, str]]:
    found = []
    for path in sorted(FIXTURES.rglob("*.py")):
        try:
            found.append((str(path.relative_to(FIXTURES)), path.read_bytes().decode("utf-8")))
        except (OSError, UnicodeDecodeError):
            continue  # the fixtures of unreadable files
    return [*found, ("extra", EXTRA)]


SOURCES = _sources()


@pytest.mark.parametrize(("name", "text"), SOURCES, ids=[name for name, _ in SOURCES])
def test_child_nodes_are_libcsts_children_without_layout(name: str, text: str) -> None:
    try:
        module = cst.parse_module(text)
    except (cst.ParserSyntaxError, RecursionError):
        pytest.skip("a fixture of an unparsable file")
    pending: list[cst.CSTNode] = [module]
    while pending:
        node = pending.pop()
        expected = [child for child in node.children if not isinstance(child, LAYOUT)]
        assert child_nodes(node) == expected, (name, type(node).__name__)
        pending.extend(node.children)


def test_descendants_reach_every_code_node_once() -> None:
    module = cst.parse_module(EXTRA)
    found = list(descendants(module))
    assert len(found) == len({id(node) for node in found})
    names = {node.value for node in found if isinstance(node, cst.Name)}
    assert {"f", "T", "C", "err", "rest", "kw", "lam", "gg", "it"} <= names

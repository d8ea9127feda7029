"""``groups.quick_text`` (text without codegen) against libcst's codegen, on fixture expressions."""

from __future__ import annotations

from pathlib import Path

import libcst as cst
import pytest

from esper_lint.analysis.groups import quick_text, source_text
from esper_lint.analysis.tree import descendants

FIXTURES = Path(__file__).parent / "fixtures"


def _modules() -> list[cst.Module]:
    modules = []
    for path in sorted(FIXTURES.rglob("*.py")):
        try:
            text = path.read_bytes().decode("utf-8")
            modules.append(cst.parse_module(text))
        except (OSError, cst.ParserSyntaxError, RecursionError, UnicodeDecodeError):
            continue
    return modules


def test_quick_text_is_the_codegen_of_every_expression_it_renders() -> None:
    rendered = 0
    for module in _modules():
        for node in descendants(module):
            quick = quick_text(node)
            if quick is None:
                continue
            raw = module.code_for_node(node)
            if "\n" in raw.strip() and not isinstance(node, cst.SimpleString):
                continue  # split over lines: the quick text is the one-line form
            code = " ".join(raw.split())
            assert " ".join(quick.split()) == code  # strings keep their own spacing
            rendered += 1
    assert rendered > 1000


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("x.shape[0] == 7", "x.shape[0] == 7"),
        ("range(self.num_stages)", "range(self.num_stages)"),
        ("args.local_rank in (-1, 0)", "args.local_rank in (-1, 0)"),
        ("f(a,b=1)", "f(a, b=1)"),
        ("(1,)", "(1,)"),
        ("(a).b", None),
        ("f(*args)", None),
        ("a + b", None),
        ("x[1:2]", None),
    ],
)
def test_quick_text_forms(code: str, expected: str | None) -> None:
    assert quick_text(cst.parse_expression(code)) == expected


def test_source_text_falls_back_to_codegen() -> None:
    module = cst.parse_module("y = a  +  b\n")
    assign = module.body[0].body[0]
    assert isinstance(assign, cst.Assign)
    assert source_text(module, assign.value) == "a + b"

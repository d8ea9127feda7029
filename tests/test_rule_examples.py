"""Every rule's documented examples do what the documentation says."""

from __future__ import annotations

import pytest

from esper_lint.checker import check_source
from esper_lint.config import Config
from esper_lint.rules import ALL_RULES, Rule

# These codes describe files that cannot be read or analysed; their examples are prose.
DOCS_ONLY = {"ESP901", "ESP902"}

BAD = [
    pytest.param(rule, example, id=f"{rule.code}-bad{index}")
    for rule in ALL_RULES
    if rule.code not in DOCS_ONLY
    for index, example in enumerate(rule.bad_examples())
]
GOOD = [
    pytest.param(rule, example, id=f"{rule.code}-good{index}")
    for rule in ALL_RULES
    for index, example in enumerate(rule.good_examples())
]


def _codes(source: str) -> list[str]:
    return [d.code for d in check_source(source.encode(), "example.py", Config())]


@pytest.mark.parametrize(("rule", "example"), BAD)
def test_bad_example_triggers_its_rule(rule: type[Rule], example: str) -> None:
    assert rule.code in _codes(example)


@pytest.mark.parametrize(("rule", "example"), GOOD)
def test_good_example_triggers_no_rule(rule: type[Rule], example: str) -> None:
    assert _codes(example) == []


def test_every_finding_rule_has_several_examples() -> None:
    for rule in ALL_RULES:
        if rule.code.startswith("ESP00"):
            assert len(rule.bad_examples()) >= 3, rule.code
            assert len(rule.good_examples()) >= 3, rule.code


def test_registry_is_sorted_and_complete() -> None:
    codes = [rule.code for rule in ALL_RULES]
    assert codes == sorted(codes)
    assert codes == [
        "ESP001",
        "ESP002",
        "ESP003",
        "ESP004",
        "ESP005",
        "ESP006",
        "ESP100",
        "ESP900",
        "ESP901",
        "ESP902",
    ]


@pytest.mark.parametrize("rule", ALL_RULES, ids=lambda rule: rule.code)
def test_documentation_has_every_section(rule: type[Rule]) -> None:
    page = rule.markdown()
    for heading in ("## What it does", "## Why is this bad?", "## Example", "## Use instead"):
        assert heading in page
    assert rule.summary and rule.name

"""Fixes over every fixture that has a fixable finding: each kept fix leaves a file that parses,
and linting it again reports what was reported before less the fixed findings, nothing new."""

from __future__ import annotations

import re
import textwrap
from collections import Counter
from pathlib import Path

import libcst as cst
import pytest

from esper_lint.config import Config
from esper_lint.fixes.apply import fix_source, reported
from esper_lint.rules import ALL_RULES
from esper_lint.rules.base import Rule

FIXTURES = Path(__file__).parent / "fixtures"
FIXABLE = tuple(rule.code for rule in ALL_RULES if rule.fixable() and rule.code != "ESP100")
CANDIDATES = sorted(
    path
    for path in FIXTURES.rglob("*.py")
    if path.is_file()
    and any(f"expect: {code}" in path.read_text("utf-8", errors="replace") for code in FIXABLE)
)
LINE = re.compile(r"\bline \d+")


def key(code: str, message: str) -> tuple[str, str]:
    return code, LINE.sub("line N", message)


@pytest.mark.parametrize("path", CANDIDATES, ids=lambda p: p.name)
def test_every_kept_fix_removes_its_finding_and_adds_none(path: Path) -> None:
    source = path.read_bytes()
    config = Config(root=FIXTURES)
    before = reported(source, str(path), config)

    outcome = fix_source(source, str(path), config, unsafe=True)

    if outcome.applied:
        cst.parse_module(outcome.source)
        compile(outcome.source, str(path), "exec", dont_inherit=True)
    after = reported(outcome.source, str(path), config)
    old = Counter(key(d.code, d.message) for d in before)
    new = Counter(key(d.code, d.message) for d in after)
    assert not (new - old), f"new findings: {new - old}"
    assert sum(old.values()) - sum(new.values()) == len(outcome.applied)
    assert all(fix.code in FIXABLE for fix in outcome.applied)
    if not outcome.applied:
        assert outcome.source == source


def test_the_fixtures_hold_fixable_findings_and_most_get_fixed() -> None:
    config = Config(root=FIXTURES)
    fixed = [
        path
        for path in CANDIDATES
        if fix_source(path.read_bytes(), str(path), config, unsafe=True).applied
    ]
    assert len(CANDIDATES) >= 10
    assert len(fixed) >= 5, fixed


@pytest.mark.parametrize("rule", [r for r in ALL_RULES if r.fix_example], ids=lambda r: r.code)
def test_the_documented_fix_is_what_fix_does(rule: type[Rule]) -> None:
    assert rule.fix_example is not None
    before, after = (textwrap.dedent(text).strip("\n") + "\n" for text in rule.fix_example)

    outcome = fix_source(before.encode(), "example.py", Config(), unsafe=True)

    assert outcome.source.decode() == after
    assert f"```python\n{after}```" in rule.markdown()


def test_without_unsafe_fixes_nothing_unsafe_is_applied() -> None:
    source = b"import torch.distributed as dist\nif dist.get_rank() == 0:\n    dist.barrier()\n"

    outcome = fix_source(source, "x.py", Config(), unsafe=False)

    assert outcome.applied == [] and outcome.source == source
    assert outcome.hidden_unsafe == 1
    unsafe = fix_source(source, "x.py", Config(), unsafe=True)
    assert unsafe.source == (
        b"import torch.distributed as dist\nif dist.get_rank() == 0:\n    pass\ndist.barrier()\n"
    )

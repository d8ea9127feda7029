"""Apply fixes to one file's source, one at a time, each verified before it is kept.

A fix is kept only when the fixed file still parses (libcst and CPython) and linting it again
reports exactly what was reported before, less the one finding it fixed: no new finding, and no
other finding gone. Messages are compared without their line numbers, which a move may shift.
After each kept fix the file is analysed afresh, so later fixes see the earlier ones, as ruff
iterates; a fix that fails the check is dropped and the next one is tried.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import libcst as cst

from esper_lint.checker import check_source
from esper_lint.config import Config
from esper_lint.diagnostics import Diagnostic
from esper_lint.fixes.types import Applicability
from esper_lint.lines import split_lines
from esper_lint.noqa import UNUSED_NOQA, without_codes

MAX_ROUNDS = 100
_LINE_NUMBER = re.compile(r"\bline \d+")
_UNUSED_CODES = re.compile(r"\(unused: ([^)]*)\)")


@dataclass(frozen=True)
class AppliedFix:
    code: str
    line: int  # in the file as it was before this fix
    description: str


@dataclass
class FixOutcome:
    source: bytes
    applied: list[AppliedFix] = field(default_factory=list)
    # fixes that --unsafe-fixes would have tried (not counted when it is on)
    hidden_unsafe: int = 0
    refused: list[AppliedFix] = field(default_factory=list)


def reported(source: bytes, path: str, config: Config) -> list[Diagnostic]:
    return [d for d in check_source(source, path, config) if config.enabled(d.code, path)]


def fix_source(source: bytes, path: str, config: Config, *, unsafe: bool) -> FixOutcome:
    outcome = FixOutcome(source)
    tried: set[tuple[str, int, str]] = set()
    for _ in range(MAX_ROUNDS):
        before = reported(outcome.source, path, config)
        if not before:
            break
        candidate = _next_fix(outcome, before, path, config, unsafe, tried)
        if candidate is None:
            break
    outcome.hidden_unsafe = 0 if unsafe else _count_unsafe(outcome.source, path, config)
    return outcome


def _key(d: Diagnostic) -> tuple[str, str]:
    return d.code, _LINE_NUMBER.sub("line N", d.message)


def _next_fix(
    outcome: FixOutcome,
    before: list[Diagnostic],
    path: str,
    config: Config,
    unsafe: bool,
    tried: set[tuple[str, int, str]],
) -> AppliedFix | None:
    for diagnostic, description, fixed in _candidates(outcome.source, before, path, config, unsafe):
        identity = (diagnostic.code, diagnostic.line, description)
        if identity in tried:
            continue
        tried.add(identity)
        applied = AppliedFix(diagnostic.code, diagnostic.line, description)
        if fixed is not None and _verified(fixed, diagnostic, before, path, config):
            outcome.source = fixed
            outcome.applied.append(applied)
            return applied
        outcome.refused.append(applied)
    return None


def _verified(
    fixed: bytes, diagnostic: Diagnostic, before: list[Diagnostic], path: str, config: Config
) -> bool:
    try:
        cst.parse_module(fixed)
        compile(fixed, path, "exec", dont_inherit=True)
    except (cst.ParserSyntaxError, SyntaxError, ValueError):
        return False
    expected = Counter(_key(d) for d in before)
    expected[_key(diagnostic)] -= 1
    after = Counter(_key(d) for d in reported(fixed, path, config))
    return after == +expected


Candidate = tuple[Diagnostic, str, "bytes | None"]


def _candidates(
    source: bytes, before: list[Diagnostic], path: str, config: Config, unsafe: bool
) -> Iterator[Candidate]:
    yield from _noqa_candidates(source, before)
    yield from _rule_candidates(source, before, config, unsafe)


def _noqa_candidates(source: bytes, before: list[Diagnostic]) -> Iterator[Candidate]:
    """ESP100's fix (safe): take the unused codes out of the comment."""
    for diagnostic in before:
        if diagnostic.code != UNUSED_NOQA:
            continue
        listed = _UNUSED_CODES.search(diagnostic.message)
        codes = re.findall(r"ESP\d+", listed.group(1)) if listed else []
        if not codes:
            continue
        yield (
            diagnostic,
            f"Remove unused `noqa` codes {', '.join(codes)}",
            _edit_line(
                source, diagnostic.line, lambda line, codes=codes: without_codes(line, codes)
            ),
        )


def _edit_line(source: bytes, number: int, edit: object) -> bytes | None:
    assert callable(edit)
    try:
        text = source.decode("utf-8")
    except UnicodeDecodeError:
        return None
    lines = text.splitlines(keepends=True)
    if not 1 <= number <= len(lines):
        return None
    line = lines[number - 1]
    body = line.rstrip("\r\n")
    ending = line[len(body) :]
    new = edit(body)
    lines[number - 1] = new + ending if new.strip() or not body.strip() else ""
    return "".join(lines).encode("utf-8")


def _rule_candidates(
    source: bytes, before: list[Diagnostic], config: Config, unsafe: bool
) -> Iterator[Candidate]:
    from esper_lint.analysis.facts import build_facts
    from esper_lint.rules import ALL_RULES

    wanted = {(d.code, d.line, d.column): d for d in before}
    if not any(rule.fixable() and rule.code != UNUSED_NOQA for rule in ALL_RULES):
        return
    try:
        module = cst.parse_module(source)
    except (cst.ParserSyntaxError, SyntaxError, ValueError):
        return
    facts = build_facts(module, config)
    for rule in ALL_RULES:
        if not rule.fixable():
            continue
        for finding in rule.check(facts):
            where = facts.range_of(finding.node)
            diagnostic = wanted.get((finding.code, where.start.line, where.start.column + 1))
            if diagnostic is None:
                continue  # suppressed or not selected
            fix = rule.fix(facts, finding)
            if fix is None:
                continue
            if fix.applicability is Applicability.UNSAFE and not unsafe:
                continue
            fixed = fix.transform(module)
            yield diagnostic, fix.description, fixed.bytes


def _count_unsafe(source: bytes, path: str, config: Config) -> int:
    """How many of the remaining findings an unsafe fix is offered for."""
    from esper_lint.analysis.facts import build_facts
    from esper_lint.rules import ALL_RULES

    before = reported(source, path, config)
    wanted = {(d.code, d.line, d.column) for d in before}
    try:
        module = cst.parse_module(source)
    except (cst.ParserSyntaxError, SyntaxError, ValueError):
        return 0
    facts = build_facts(module, config)
    count = 0
    for rule in ALL_RULES:
        if not rule.fixable():
            continue
        for finding in rule.check(facts):
            where = facts.range_of(finding.node)
            if (finding.code, where.start.line, where.start.column + 1) not in wanted:
                continue
            fix = rule.fix(facts, finding)
            if fix is not None and fix.applicability is Applicability.UNSAFE:
                count += 1
    return count


def line_count(source: bytes) -> int:
    return len(split_lines(source.decode("utf-8", errors="replace")))

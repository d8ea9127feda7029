"""Lint one file's bytes: parse, analyse, run the rules, apply ``# noqa``."""

from __future__ import annotations

from itertools import accumulate

from esper_lint.config import Config
from esper_lint.diagnostics import Diagnostic

# libcst's native parser crashes the interpreter (SIGSEGV) somewhere past 1000 nested brackets.
MAX_BRACKET_DEPTH = 1000
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"()[]{}")
TOO_DEEP = "file could not be analysed: nesting is too deep"


def check_source(source: bytes, path: str, config: Config) -> list[Diagnostic]:
    """Every code's diagnostics for one file, sorted. Never raises."""
    try:
        return _check(source, path, config)
    except RecursionError:
        return [_file_level(path, "ESP901", TOO_DEEP)]
    except Exception as error:  # a file must never crash the run
        message = f"file could not be analysed: {type(error).__name__}: {error}"
        return [_file_level(path, "ESP901", message)]


def _check(source: bytes, path: str, config: Config) -> list[Diagnostic]:
    import libcst

    from esper_lint.analysis.facts import build_facts
    from esper_lint.noqa import is_suppressed
    from esper_lint.rules import ALL_RULES

    if _bracket_depth(source) > MAX_BRACKET_DEPTH:
        return [_file_level(path, "ESP901", TOO_DEEP)]
    try:
        module = libcst.parse_module(source)
    except libcst.ParserSyntaxError as error:
        line, column = error.raw_line, error.raw_column + 1
        message = f"file could not be parsed: {error.message}"
        return [Diagnostic(path, line, column, line, column, "ESP900", message)]
    except (SyntaxError, UnicodeDecodeError, ValueError, LookupError) as error:
        return [_file_level(path, "ESP900", f"file could not be parsed: {error}")]

    facts = build_facts(module, config)
    findings = [finding for rule in ALL_RULES for finding in rule.check(facts)]
    if not findings:
        return []
    lines = module.code.splitlines()
    diagnostics = []
    for finding in findings:
        where = facts.range_of(finding.node)
        text = lines[where.start.line - 1] if where.start.line <= len(lines) else ""
        if is_suppressed(text, finding.code):
            continue
        diagnostics.append(
            Diagnostic(
                path,
                where.start.line,
                where.start.column + 1,
                where.end.line,
                where.end.column + 1,
                finding.code,
                finding.message,
            )
        )
    return sorted(diagnostics)


def _bracket_depth(source: bytes) -> int:
    """An upper bound of the bracket nesting (brackets in strings count too)."""
    brackets = source.translate(None, _NOT_BRACKETS)
    if len(brackets) <= 2 * MAX_BRACKET_DEPTH:
        return len(brackets) // 2
    return max(accumulate(1 if b in b"([{" else -1 for b in brackets))


def _file_level(path: str, code: str, message: str) -> Diagnostic:
    return Diagnostic(path, 1, 1, 1, 1, code, message)

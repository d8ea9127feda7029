"""Lint one file's bytes: parse, analyse, run the rules, apply ``# noqa``."""

from __future__ import annotations

import ast
import re
import warnings
from typing import TYPE_CHECKING

from esper_lint.config import Config
from esper_lint.diagnostics import Diagnostic
from esper_lint.lines import split_lines

if TYPE_CHECKING:
    import libcst

    from esper_lint.analysis.summaries import ModuleContext

TOO_DEEP = "file could not be analysed: nesting is too deep"


def check_source(
    source: bytes, path: str, config: Config, project: ModuleContext | None = None
) -> list[Diagnostic]:
    """Every code's diagnostics for one file, sorted. Never raises.

    With ``project`` (the file's view of its project), calls into the project's other modules
    are followed through their summaries.
    """
    try:
        return _check(source, path, config, project)
    except RecursionError:
        return [_file_level(path, "ESP901", TOO_DEEP)]
    except Exception as error:  # a file must never crash the run
        message = f"file could not be analysed: {type(error).__name__}: {error}"
        return [_file_level(path, "ESP901", message)]


def parse_for_analysis(source: bytes) -> libcst.Module | None:
    """The tree of a module another file imports, or None when it can't be had (syntax error,
    nesting too deep): such a module contributes nothing to its importers' analysis."""
    import libcst

    if _cpython_verdict(source) is not None:
        return None
    try:
        return libcst.parse_module(source)
    except Exception:  # any parse failure: the importer is analysed without this module
        return None


def _check(
    source: bytes, path: str, config: Config, project: ModuleContext | None
) -> list[Diagnostic]:
    import libcst

    kept = project.project.cached_tree(project.real_path, source) if project is not None else None
    if kept is not None:  # parsed for the summary of this module: it parses and is not too deep
        return _diagnose(source, path, config, project, kept)
    verdict = _cpython_verdict(source)
    if verdict is _TOO_DEEP:
        return [_file_level(path, "ESP901", TOO_DEEP)]
    try:
        module = libcst.parse_module(source)
    except libcst.ParserSyntaxError as error:
        if isinstance(verdict, SyntaxError) and verdict.lineno is not None:
            return [_syntax_error(path, verdict, error.message)]
        # libcst's own position is a line late at times (Instagram/LibCST#1028)
        line, column = error.raw_line, error.raw_column + 1
        message = f"file could not be parsed: {error.message}"
        return [Diagnostic(path, line, column, line, column, "ESP900", message)]
    except (SyntaxError, UnicodeDecodeError, ValueError, LookupError) as error:
        return [_file_level(path, "ESP900", f"file could not be parsed: {error}")]

    if project is not None:
        project.project.keep_tree(project.real_path, source, module)
    return _diagnose(source, path, config, project, module)


def _diagnose(
    source: bytes,
    path: str,
    config: Config,
    project: ModuleContext | None,
    module: libcst.Module,
) -> list[Diagnostic]:
    from esper_lint.analysis.facts import build_facts
    from esper_lint.noqa import is_suppressed
    from esper_lint.rules import ALL_RULES

    facts = build_facts(module, config, project)
    findings = [finding for rule in ALL_RULES for finding in rule.check(facts)]
    if not findings:
        return []
    # from the bytes: ``module.code`` would regenerate the whole file
    lines = split_lines(source.decode(module.encoding, errors="replace"))
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


_TOO_DEEP = object()


def _cpython_verdict(source: bytes) -> SyntaxError | object | None:
    """Ask CPython's parser first: ``_TOO_DEEP``, its SyntaxError, or None when it parses.

    libcst's native parser overflows the C stack (SIGSEGV, killing the whole run) on nesting that
    CPython refuses cleanly: thousands of chained unary operators, `lambda:`, `not`, brackets.
    CPython's SyntaxError is also better placed than libcst's. It is not final, though: a file in
    syntax newer than this interpreter fails here and is still libcst's to judge.
    """
    try:
        with warnings.catch_warnings():  # `"\d"`, `"str"()`: the user's linters say so, not us
            warnings.simplefilter("ignore")
            compile(source, "<esper-lint>", "exec", ast.PyCF_ONLY_AST, dont_inherit=True)
    except (RecursionError, MemoryError):
        return _TOO_DEEP
    except SyntaxError as error:
        if "too many nested" in str(error.msg) or "too complex" in str(error.msg):
            return _TOO_DEEP
        return error
    except ValueError:  # NUL bytes on Python 3.11: libcst reports them
        return None
    return None


def _syntax_error(path: str, error: SyntaxError, libcst_message: str) -> Diagnostic:
    """CPython's position and message, with libcst's list of expected tokens when it has one."""
    line = error.lineno or 1
    column = max(error.offset or 1, 1)
    message = f"file could not be parsed: {error.msg}"
    expected = _EXPECTED.search(libcst_message)
    if error.msg == "invalid syntax" and expected is not None:
        message += f" ({expected.group(0)})"
    return Diagnostic(path, line, column, line, column, "ESP900", message)


_EXPECTED = re.compile(r"expected .+")


def _file_level(path: str, code: str, message: str) -> Diagnostic:
    return Diagnostic(path, 1, 1, 1, 1, code, message)

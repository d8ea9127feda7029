"""Lint one file's bytes: parse, analyse, run the rules, apply ``# noqa``."""

from __future__ import annotations

import ast
import re
import warnings
from typing import TYPE_CHECKING

from esper_lint.config import Config
from esper_lint.diagnostics import Diagnostic
from esper_lint.lines import split_lines
from esper_lint.noqa import UNUSED_NOQA, Suppressions, unused_message

if TYPE_CHECKING:
    import libcst

    from esper_lint.analysis.summaries import ModuleContext

TOO_DEEP = "file could not be analysed: nesting is too deep"


def check_source(
    source: bytes,
    path: str,
    config: Config,
    project: ModuleContext | None = None,
    *,
    partial: bool = False,
) -> list[Diagnostic]:
    """Every code's diagnostics for one file, sorted. Never raises.

    With ``project`` (the file's view of its project), calls into the project's other modules
    are followed through their summaries. With ``partial``, top-level definitions that cannot
    matter are blanked before libcst parses the file (``esper_lint.partial``); the diagnostics
    are the same, and the tree is then not kept as the module's summary.
    """
    try:
        return _check(source, path, config, project, partial)
    except RecursionError:
        return [_file_level(path, "ESP901", TOO_DEEP)]
    except Exception as error:  # a file must never crash the run
        message = f"file could not be analysed: {type(error).__name__}: {error}"
        return [_file_level(path, "ESP901", message)]


def parse_for_analysis(source: bytes) -> libcst.Module | None:
    """The tree of a module another file imports, or None when it can't be had (syntax error,
    nesting too deep): such a module contributes nothing to its importers' analysis."""
    if _cpython_verdict(source)[0] is not None:
        return None
    try:
        return parse_unvalidated(source)
    except Exception:  # any parse failure: the importer is analysed without this module
        return None


def parse_unvalidated(source: bytes) -> libcst.Module:
    """``libcst.parse_module``, without the checks each node runs on itself when it is built.

    Every libcst node's ``__post_init__`` runs its ``_validate()``: checks for trees built by
    hand (a codemod's), which a tree the parser built from source passes by construction, as
    libcst's own comment on ``CSTNode.__post_init__`` notes. They are 11 to 12 % of a parse
    (docs/performance.md). Only the parse skips them: nodes built afterwards, and the fixes,
    which parse on their own, are validated as usual. (A thread building libcst nodes in the same
    process during the parse would skip them too; esper-lint runs no such thread.) The tests
    compare the trees with libcst's own parse on every fixture and on generated programs.
    """
    import libcst
    from libcst._nodes.base import CSTNode

    validate = CSTNode.__dict__.get("__post_init__")
    if validate is None:  # another libcst: parse as it does
        return libcst.parse_module(source)
    CSTNode.__post_init__ = _built_by_the_parser  # type: ignore[method-assign,assignment]
    try:
        return libcst.parse_module(source)
    finally:
        CSTNode.__post_init__ = validate  # type: ignore[method-assign]


def _built_by_the_parser(node: object) -> None:
    return None


def _check(
    source: bytes, path: str, config: Config, project: ModuleContext | None, partial: bool
) -> list[Diagnostic]:
    import libcst

    kept = project.project.cached_tree(project.real_path, source) if project is not None else None
    if kept is not None:  # parsed for the summary of this module: it parses and is not too deep
        return _diagnose(source, path, config, project, kept)
    verdict, tree = _cpython_verdict(source)
    if verdict is _TOO_DEEP:
        return [_file_level(path, "ESP901", TOO_DEEP)]
    blanked = _blanked(source, tree, config, project) if partial and tree is not None else None
    try:
        module = parse_unvalidated(source if blanked is None else blanked)
    except libcst.ParserSyntaxError as error:
        if isinstance(verdict, SyntaxError) and verdict.lineno is not None:
            return [_syntax_error(path, verdict, error.message)]
        # libcst's own position is a line late at times (Instagram/LibCST#1028)
        line, column = error.raw_line, error.raw_column + 1
        message = f"file could not be parsed: {error.message}"
        return [Diagnostic(path, line, column, line, column, "ESP900", message)]
    except (SyntaxError, UnicodeDecodeError, ValueError, LookupError) as error:
        return [_file_level(path, "ESP900", f"file could not be parsed: {error}")]

    if project is not None and blanked is None:
        project.project.keep_tree(project.real_path, source, module)
    return _diagnose(source, path, config, project, module, whole=blanked is None)


def _blanked(
    source: bytes, tree: ast.Module, config: Config, project: ModuleContext | None
) -> bytes | None:
    from esper_lint.partial import blank_unrelated, contribution_words

    def is_project_module(level: int, module: str) -> bool:
        if level:
            return True
        if project is None:
            return False
        index = project.project.index
        return any(
            index.module_file(".".join(module.split(".")[: depth + 1])) is not None
            for depth in range(module.count(".") + 1)
        )

    return blank_unrelated(source, tree, contribution_words(config), is_project_module)


def _diagnose(
    source: bytes,
    path: str,
    config: Config,
    project: ModuleContext | None,
    module: libcst.Module,
    whole: bool = True,
) -> list[Diagnostic]:
    from esper_lint.analysis.facts import build_facts
    from esper_lint.rules import ALL_RULES

    facts = build_facts(module, config, project, remember=whole)
    findings = [finding for rule in ALL_RULES for finding in rule.check(facts)]
    text = source.decode(module.encoding, errors="replace")
    if not findings and "noqa" not in text.lower():
        return []
    # from the bytes: ``module.code`` would regenerate the whole file
    suppressions = Suppressions(text, split_lines(text))
    diagnostics = []
    for finding in findings:
        where = facts.range_of(finding.node)
        if suppressions.suppress(finding.code, where.start.line, where.end.line):
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
    diagnostics.extend(_unused_noqa(path, suppressions))
    return sorted(diagnostics)


def _unused_noqa(path: str, suppressions: Suppressions) -> list[Diagnostic]:
    """ESP100 for each coded noqa naming an ESP code that silenced nothing (the engine drops
    them unless ESP100 is selected)."""
    found = []
    for directive in suppressions.unused():
        column = directive.column + 1
        end = column + len(directive.comment)
        message = unused_message(directive.unused_codes())
        found.append(
            Diagnostic(path, directive.line, column, directive.line, end, UNUSED_NOQA, message)
        )
    return found


_TOO_DEEP = object()


def _cpython_verdict(source: bytes) -> tuple[SyntaxError | object | None, ast.Module | None]:
    """Ask CPython's parser first: ``_TOO_DEEP``, its SyntaxError, or None when it parses, with
    its tree when it parses (``esper_lint.partial`` reads it).

    libcst's native parser overflows the C stack (SIGSEGV, killing the whole run) on nesting that
    CPython refuses cleanly: thousands of chained unary operators, `lambda:`, `not`, brackets.
    CPython's SyntaxError is also better placed than libcst's. It is not final, though: a file in
    syntax newer than this interpreter fails here and is still libcst's to judge.
    """
    try:
        with warnings.catch_warnings():  # `"\d"`, `"str"()`: the user's linters say so, not us
            warnings.simplefilter("ignore")
            tree = ast.parse(source, "<esper-lint>")
    except (RecursionError, MemoryError):
        return _TOO_DEEP, None
    except SyntaxError as error:
        if "too many nested" in str(error.msg) or "too complex" in str(error.msg):
            return _TOO_DEEP, None
        return error, None
    except ValueError:  # NUL bytes on Python 3.11: libcst reports them
        return None, None
    return None, tree


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

"""The command's adoption tools: standard input, --show-settings/--show-files, --add-noqa and
--fix/--diff. Imported only when one of them is asked for."""

from __future__ import annotations

import argparse
import difflib
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path

from esper_lint.config import Config, ConfigResolver
from esper_lint.diagnostics import Diagnostic
from esper_lint.noqa import UNUSED_NOQA, noqa_row, string_spans, with_codes

# --- standard input ---------------------------------------------------------------------------


def lint_stdin(options: argparse.Namespace, resolver: ConfigResolver) -> int:
    """``esper-lint - --stdin-filename PATH``: lint the buffer as PATH would be linted (its
    configuration, its project for cross-file facts, and per-file-ignores). With ``--fix``, the
    fixed buffer goes to stdout and the remaining findings to stderr, as ruff does for editors."""
    from esper_lint import cli
    from esper_lint.checker import check_source

    name = options.stdin_filename or Path("-")
    config = resolver.for_path(name) if options.stdin_filename else resolver.default
    if (
        options.stdin_filename is not None
        and config.force_exclude
        and _excluded_explicitly(name, resolver)
    ):
        return cli.EXIT_CLEAN
    source = sys.stdin.buffer.read()
    display = str(name)
    fixed_count = 0
    if options.fix or options.diff:
        from esper_lint.fixes.apply import fix_source

        outcome = fix_source(source, display, config, unsafe=bool(options.unsafe_fixes))
        fixed_count = len(outcome.applied)
        if options.diff:
            cli.write_stdout(_unified(display, source, outcome.source))
            return cli.EXIT_FINDINGS if fixed_count and not options.exit_zero else cli.EXIT_CLEAN
        sys.stdout.buffer.write(outcome.source)
        sys.stdout.flush()
        source = outcome.source
    from esper_lint.engine import LintResult, project_context

    context = project_context(name, config) if options.stdin_filename is not None else None
    diagnostics = check_source(source, display, config, context)
    found = [d for d in diagnostics if config.enabled(d.code, display)]

    result = LintResult(found, [], 1)
    text = cli._report(options, config, result)
    if options.fix:
        cli._write(sys.stderr, text)
    else:
        cli._write_output(text, options.output_file)
    failed = bool(found) or (fixed_count and options.exit_non_zero_on_fix)
    return cli.EXIT_FINDINGS if failed and not options.exit_zero else cli.EXIT_CLEAN


def _excluded_explicitly(path: Path, resolver: ConfigResolver) -> bool:
    from esper_lint.discovery import is_excluded

    return is_excluded(path, resolver.for_path)


# --- --show-settings / --show-files -----------------------------------------------------------


def show_settings(resolver: ConfigResolver, path: Path) -> str:
    config = resolver.for_path(path)
    source = config.source or "(defaults: no configuration file governs this path)"
    lines = [f"Settings for {path}", f"  configuration file: {source}"]
    if config.extends:
        lines.append(f"  extends: {' -> '.join(str(p) for p in config.extends)}")
    lines.append(f"  root (globs are relative to it): {config.root}")
    for item in fields(Config):
        if item.name in ("source", "extends", "root"):
            continue
        value = getattr(config, item.name)
        shown = _table(value) if item.name == "per_file_ignores" else _toml_value(value)
        lines.append(f"  {item.name.replace('_', '-')} = {shown}")
    return "\n".join(lines) + "\n"


def _table(entries: tuple[tuple[str, tuple[str, ...]], ...]) -> str:
    if not entries:
        return "{}"
    return "{ " + ", ".join(f'"{glob}" = {_toml_value(codes)}' for glob, codes in entries) + " }"


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return "[" + ", ".join(f'"{item}"' for item in value) + "]"
    return repr(value)


def show_files(resolver: ConfigResolver, paths: Sequence[Path]) -> str:
    from esper_lint.discovery import discover

    default = resolver.default
    found = discover(
        paths,
        default.all_excludes,
        default.root,
        config_for=resolver.for_path,
        force_exclude=default.force_exclude,
        respect_gitignore=default.respect_gitignore,
    )
    return "".join(f"{f.path}\n" for f in sorted(found.files, key=lambda f: str(f.path)))


# --- --add-noqa ---------------------------------------------------------------------------------


def add_noqa(diagnostics: Sequence[Diagnostic]) -> int:
    """Add ``# noqa: CODE`` for every diagnostic, at its noqa row; nothing else changes (line
    endings, encoding and the other lines are kept byte for byte). Returns how many lines
    changed. A second run finds nothing to add."""
    by_path: dict[str, list[Diagnostic]] = {}
    for d in diagnostics:
        # a file that can't be parsed gets no comment, nor does an unused noqa (ESP100)
        if not d.code.startswith("ESP9") and d.code != UNUSED_NOQA:
            by_path.setdefault(d.path, []).append(d)
    changed = 0
    for path, found in by_path.items():
        changed += _add_noqa_to(path, found)
    return changed


def _add_noqa_to(path: str, found: Sequence[Diagnostic]) -> int:
    try:
        data = Path(path).read_bytes()
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return 0
    lines = text.splitlines(keepends=True)
    spans = string_spans(text)
    wanted: dict[int, set[str]] = {}
    for d in found:
        row = noqa_row(spans, d.line, d.end_line)
        wanted.setdefault(row, set()).add(d.code)
    changed = 0
    for row, codes in wanted.items():
        if not 1 <= row <= len(lines):
            continue
        line = lines[row - 1]
        body = line.rstrip("\r\n")
        new = with_codes(body, codes)
        if new != body:
            lines[row - 1] = new + line[len(body) :]
            changed += 1
    if changed:
        _write_same_mode(Path(path), "".join(lines).encode("utf-8"))
    return changed


def _write_same_mode(path: Path, data: bytes) -> None:
    with open(path, "r+b") as stream:  # in place: keeps the file's mode, owner and links
        stream.write(data)
        stream.truncate()


# --- --fix / --diff -----------------------------------------------------------------------------


@dataclass
class FixSummary:
    count: int = 0
    hidden_unsafe: int = 0
    diff: str = ""
    listing: str = ""


def apply_fixes(
    diagnostics: Sequence[Diagnostic], resolver: ConfigResolver, options: argparse.Namespace
) -> FixSummary:
    from esper_lint.fixes.apply import fix_source
    from esper_lint.rules import rule_by_code

    summary = FixSummary()
    paths = sorted({d.path for d in diagnostics})
    listing: list[str] = []
    for path in paths:
        codes = {d.code for d in diagnostics if d.path == path}
        if not any((rule := rule_by_code(code)) is not None and rule.fixable() for code in codes):
            continue
        try:
            source = Path(path).read_bytes()
        except OSError:
            continue
        config = resolver.for_path(Path(path))
        outcome = fix_source(source, path, config, unsafe=bool(options.unsafe_fixes))
        summary.hidden_unsafe += outcome.hidden_unsafe
        if not outcome.applied:
            continue
        summary.count += len(outcome.applied)
        if options.diff:
            summary.diff += _unified(path, source, outcome.source)
        else:
            _write_same_mode(Path(path), outcome.source)
        listing += [f"  {path}:{fix.line}: {fix.code} {fix.description}" for fix in outcome.applied]
    if listing:
        summary.listing = f"Fixed {summary.count} error(s):\n" + "\n".join(listing) + "\n\n"
    return summary


def _unified(path: str, before: bytes, after: bytes) -> str:
    old = before.decode("utf-8", errors="replace").splitlines(keepends=True)
    new = after.decode("utf-8", errors="replace").splitlines(keepends=True)
    shown = path.replace(os.sep, "/")
    return "".join(difflib.unified_diff(old, new, f"a/{shown}", f"b/{shown}"))

"""The ``esper-lint`` command.

Kept cheap to import: libcst, the engine and the report formats are imported only when used,
so that a one-file pre-commit run costs little more than starting the interpreter.

Exit codes: 0 nothing found, 1 findings, 2 usage or configuration error (or an internal error:
never a traceback; set ``ESPER_LINT_DEBUG=1`` to see one), 130 interrupted.

``esper-lint rule CODE`` / ``esper-lint rule --all`` is the documentation command: a first
argument ``rule`` is never a path (lint a file or directory named ``rule`` as ``./rule``).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from esper_lint import __version__
from esper_lint.config import Config, ConfigError, ConfigResolver, Overrides, parse_code_list
from esper_lint.report import HUMAN_FORMATS, OUTPUT_FORMATS

if TYPE_CHECKING:
    from esper_lint.adoption import FixSummary
    from esper_lint.diagnostics import Diagnostic
    from esper_lint.engine import LintResult

PROG = "esper-lint"
EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 130


class UsageError(Exception):
    """A bad command line the argument parser cannot catch by itself."""


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    try:
        return _run(arguments)
    except (UsageError, ConfigError) as error:
        _print_error(str(error))
        return EXIT_ERROR
    except KeyboardInterrupt:
        _print_error("interrupted")
        return EXIT_INTERRUPTED
    except Exception as error:  # the promise is: never a traceback
        if os.environ.get("ESPER_LINT_DEBUG"):
            import traceback

            traceback.print_exc()
        _print_error(f"internal error: {type(error).__name__}: {error}")
        return EXIT_ERROR


def _run(arguments: list[str]) -> int:
    if arguments[:1] == ["rule"]:
        return _rule_command(arguments[1:])
    options = _parse(build_parser(), arguments)
    if isinstance(options, int):
        return options
    if options.explain is not None:
        return _print_rule(options.explain)
    return _lint(options, _resolver(options))


class _HelpFormatter(argparse.HelpFormatter):
    """argparse's own, with the terminal width read through ``os`` as ``shutil`` reads it:
    argparse makes one for every ``add_argument`` (to check the metavar), and importing ``shutil``
    (with ``bz2``, ``lzma`` and ``zlib``) for it cost every run about 1 ms."""

    def __init__(
        self,
        prog: str,
        indent_increment: int = 2,
        max_help_position: int = 24,
        width: int | None = None,
    ) -> None:
        if width is None:
            width = _terminal_columns() - 2
        super().__init__(prog, indent_increment, max_help_position, width)


def _terminal_columns() -> int:
    """``shutil.get_terminal_size().columns``: ``COLUMNS``, else the terminal's, else 80."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0 and sys.__stdout__ is not None:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns if columns > 0 else 80


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        formatter_class=_HelpFormatter,
        description=(
            "Find lifecycle calls and collectives that may not run on every DDP rank. "
            f"'{PROG} rule CODE' explains a rule, '{PROG} rule --all' lists them. "
            f"'{PROG} -' lints standard input (name it with --stdin-filename)."
        ),
    )
    parser.add_argument("paths", nargs="*", type=Path, metavar="PATH", help="default: .")
    rules = parser.add_argument_group("rule selection")
    rules.add_argument("--select", metavar="CODES", help="comma-separated code prefixes")
    rules.add_argument("--extend-select", metavar="CODES", help="add to the selection")
    rules.add_argument("--ignore", metavar="CODES", help="comma-separated code prefixes")
    rules.add_argument(
        "--per-file-ignores",
        action="append",
        metavar="GLOB:CODES",
        help="ignore CODES in files matching GLOB (relative to the current directory); repeatable",
    )
    files = parser.add_argument_group("file selection")
    files.add_argument("--config", type=Path, metavar="FILE", help=_CONFIG_HELP)
    files.add_argument("--exclude", metavar="GLOBS", help="replace the configured exclude")
    files.add_argument("--extend-exclude", metavar="GLOBS", help="exclude these as well")
    _flag_pair(
        files, "force-exclude", "apply the excludes to paths given explicitly too (pre-commit)"
    )
    _flag_pair(files, "respect-gitignore", "skip what .gitignore ignores (default: on)")
    files.add_argument(
        "--stdin-filename", type=Path, metavar="PATH", help="the file standard input stands for"
    )
    files.add_argument("--show-files", action="store_true", help="list the files to lint, exit")
    files.add_argument(
        "--show-settings",
        action="store_true",
        help="print the settings of the first PATH (default: .) and where they come from",
    )
    fixes = parser.add_argument_group("fixes and suppressions")
    _flag_pair(fixes, "fix", "apply the safe fixes")
    _flag_pair(fixes, "unsafe-fixes", "apply the unsafe fixes too (every ESP00x fix is unsafe)")
    fixes.add_argument(
        "--diff", action="store_true", help="print the fixes as a diff, write nothing"
    )
    fixes.add_argument("--show-fixes", action="store_true", help="list the fixes applied")
    fixes.add_argument(
        "--exit-non-zero-on-fix",
        action="store_true",
        help="exit 1 when something was fixed, even if nothing is left",
    )
    fixes.add_argument(
        "--add-noqa", action="store_true", help="add a coded # noqa to every current finding"
    )
    output = parser.add_argument_group("output")
    output.add_argument(
        "--output-format",
        choices=OUTPUT_FORMATS,
        help="default: full on a terminal, concise otherwise (text = concise)",
    )
    output.add_argument("-o", "--output-file", type=Path, metavar="FILE")
    output.add_argument(
        "--color", choices=("auto", "always", "never"), default="auto", help="default: auto"
    )
    output.add_argument(
        "-e", "--exit-zero", action="store_true", help="exit 0 even when something is found"
    )
    output.add_argument(
        "-q", "--quiet", action="store_true", help="print diagnostics only, no summary"
    )
    output.add_argument(
        "--statistics", action="store_true", help="count diagnostics per code instead"
    )
    output.add_argument("--explain", metavar="CODE", help="print a rule's documentation")
    run = parser.add_argument_group("running")
    run.add_argument(
        "-n", "--no-cache", action="store_true", help="neither read nor write the cache"
    )
    run.add_argument("--cache-dir", type=Path, metavar="DIR", help="default: .esper_lint_cache")
    run.add_argument("-j", "--jobs", type=_positive_int, metavar="N", help="worker processes")
    run.add_argument("--no-prefilter", action="store_true", help="parse every file (debugging aid)")
    run.add_argument(
        "--no-partial-parse",
        action="store_true",
        help="parse candidates whole, unrelated definitions included (debugging aid)",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    return parser


def _flag_pair(group: argparse._ArgumentGroup, name: str, help_text: str) -> None:
    """``--NAME`` / ``--no-NAME``, as ruff spells its switches; None when neither is given."""
    dest = name.replace("-", "_")
    group.add_argument(f"--{name}", dest=dest, action="store_true", default=None, help=help_text)
    group.add_argument(f"--no-{name}", dest=dest, action="store_false", help=argparse.SUPPRESS)


_CONFIG_HELP = (
    "a pyproject.toml (its [tool.esper-lint] table) or a dedicated TOML file whose top level "
    "holds the keys; default: the nearest pyproject.toml"
)


def _parse(parser: argparse.ArgumentParser, arguments: list[str]) -> argparse.Namespace | int:
    try:
        return parser.parse_args(arguments)
    except SystemExit as exit_:  # --help, --version, or a usage error already printed
        return exit_.code if isinstance(exit_.code, int) else EXIT_ERROR


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _rule_command(arguments: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog=f"{PROG} rule",
        description="Print a rule's documentation, or list every rule.",
        formatter_class=_HelpFormatter,
    )
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("code", nargs="?", metavar="CODE")
    group.add_argument("--all", action="store_true", help="list every rule")
    options = _parse(parser, arguments)
    if isinstance(options, int):
        return options
    if options.all:
        return _list_rules()
    return _print_rule(options.code)


def _print_rule(code: str) -> int:
    from esper_lint.rules import known_codes, rule_by_code

    rule = rule_by_code(code)
    if rule is None:
        raise UsageError(f"unknown rule code '{code}' (known codes: {', '.join(known_codes())})")
    _write_stdout(rule.markdown())
    return EXIT_CLEAN


def _list_rules() -> int:
    from esper_lint.rules import ALL_RULES

    name_width = max((len(rule.name) for rule in ALL_RULES), default=0)
    lines = (f"{rule.code}  {rule.name:<{name_width}}  {rule.summary}" for rule in ALL_RULES)
    _write_stdout("".join(line.rstrip() + "\n" for line in lines))
    return EXIT_CLEAN


def _resolver(options: argparse.Namespace) -> ConfigResolver:
    cwd = Path.cwd()
    select = None if options.select is None else parse_code_list("--select", options.select)
    ignore = None if options.ignore is None else parse_code_list("--ignore", options.ignore)
    extend_select = (
        ()
        if options.extend_select is None
        else parse_code_list("--extend-select", options.extend_select)
    )
    overrides = Overrides(
        cwd=cwd.resolve(),
        extend_select=extend_select,
        exclude=None if options.exclude is None else _globs(options.exclude),
        extend_exclude=() if options.extend_exclude is None else _globs(options.extend_exclude),
        per_file_ignores=tuple(_per_file_ignore(v) for v in options.per_file_ignores or ()),
        respect_gitignore=options.respect_gitignore,
        force_exclude=options.force_exclude,
    )
    return ConfigResolver(
        options.config, cwd, lambda config: config.with_overrides(select, ignore, overrides)
    )


def _globs(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _per_file_ignore(value: str) -> tuple[str, tuple[str, ...]]:
    pattern, colon, codes = value.rpartition(":")
    if not colon or not pattern.strip():
        raise UsageError(f"--per-file-ignores: expected GLOB:CODES, got {value!r}")
    return pattern.strip(), parse_code_list(f"--per-file-ignores {pattern}", codes)


def _effective_config(options: argparse.Namespace) -> Config:
    return _resolver(options).default


def _lint(options: argparse.Namespace, resolver: ConfigResolver) -> int:
    from esper_lint.engine import lint_paths

    paths: list[Path] = options.paths or [Path(".")]
    if paths == [Path("-")]:
        from esper_lint.adoption import lint_stdin

        return lint_stdin(options, resolver)
    if Path("-") in paths:
        raise UsageError("'-' (standard input) cannot be combined with other paths")
    if options.stdin_filename is not None:
        raise UsageError("--stdin-filename needs '-' as the path")
    if options.show_settings:
        from esper_lint.adoption import show_settings

        _write_stdout(show_settings(resolver, paths[0]))
        return EXIT_CLEAN
    if options.show_files:
        from esper_lint.adoption import show_files

        _write_stdout(show_files(resolver, paths))
        return EXIT_CLEAN
    config = resolver.default

    def run() -> LintResult:
        return lint_paths(
            paths,
            config,
            jobs=options.jobs,
            use_cache=not options.no_cache,
            cache_dir=options.cache_dir,
            prefilter=not options.no_prefilter,
            partial=not options.no_partial_parse,
            config_for=resolver.for_path if options.config is None else None,
        )

    result = run()
    for warning in result.warnings:
        _print_warning(warning)
    if result.files_checked == 0 and not result.diagnostics:
        _print_warning("no Python files found under the given paths")
    if options.add_noqa:
        from esper_lint.adoption import add_noqa

        count = add_noqa(result.diagnostics)
        _write(sys.stderr, f"Added {count} noqa {_plural(count, 'directive')}.\n")
        return EXIT_CLEAN
    fixing = bool(options.fix or options.diff)
    summary = None
    if fixing:
        from esper_lint.adoption import apply_fixes

        fixed = apply_fixes(result.diagnostics, resolver, options)
        if options.diff:
            _write_stdout(fixed.diff)
            return EXIT_FINDINGS if fixed.count and not options.exit_zero else EXIT_CLEAN
        if fixed.count:
            result = run()
        summary = fixed
    _write_output(_report(options, config, result, summary), options.output_file)
    found = bool(result.diagnostics)
    if summary is not None and summary.count and options.exit_non_zero_on_fix:
        found = True
    return EXIT_FINDINGS if found and not options.exit_zero else EXIT_CLEAN


def _report(
    options: argparse.Namespace,
    config: Config,
    result: LintResult,
    fixed: FixSummary | None = None,
) -> str:
    output_format = options.output_format or _default_format(options.output_file)
    if options.statistics:
        from esper_lint.report.statistics import render_statistics

        return render_statistics(result.diagnostics, as_json=output_format == "json")
    from esper_lint.report import render

    human = output_format in HUMAN_FORMATS
    color = human and _color(options)
    text = render(output_format, result.diagnostics, root=config.root, color=color)
    if human and not options.quiet:
        if text and output_format == "full":
            text += "\n"
        if fixed is not None and options.show_fixes:
            text += fixed.listing
        text += _summary(result.diagnostics, result.files_checked, fixed)
    return text


def _color(options: argparse.Namespace) -> bool:
    from esper_lint.report.terminal import use_color

    if options.color == "always":
        return True
    if options.color == "never" or options.output_file is not None:
        return False
    return use_color(_stdout_is_tty(), os.environ)


def _default_format(output_file: Path | None) -> str:
    return "full" if output_file is None and _stdout_is_tty() else "concise"


def _summary(
    diagnostics: Sequence[Diagnostic], files_checked: int, fixed: FixSummary | None = None
) -> str:
    checked = f"{files_checked} {_plural(files_checked, 'file')} checked"
    hidden = ""
    if fixed is not None and fixed.hidden_unsafe:
        hidden = (
            f"No fixes applied ({fixed.hidden_unsafe} hidden "
            f"{_fixes(fixed.hidden_unsafe)} can be enabled with --unsafe-fixes).\n"
        )
        if fixed.count:
            hidden = (
                f"{fixed.hidden_unsafe} hidden {_fixes(fixed.hidden_unsafe)} "
                "can be enabled with --unsafe-fixes.\n"
            )
    if not diagnostics:
        done = (
            f"Fixed {fixed.count} {_plural(fixed.count, 'error')}. "
            if fixed and fixed.count
            else ""
        )
        return f"{done}All checks passed! ({checked})\n"
    remaining = len(diagnostics)
    files = len({d.path for d in diagnostics})
    fixes = ""
    count = remaining
    if fixed is not None and fixed.count:
        count += fixed.count
        fixes = f", {fixed.count} fixed, {remaining} remaining"
    return (
        f"Found {count} {_plural(count, 'error')} in {files} {_plural(files, 'file')} "
        f"({checked}{fixes}).\n{hidden}"
    )


def _plural(count: int, word: str) -> str:
    return word if count == 1 else word + "s"


def _fixes(count: int) -> str:
    return "fix" if count == 1 else "fixes"


def write_stdout(text: str) -> None:
    _write_stdout(text)


def _stdout_is_tty() -> bool:
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def _write_output(text: str, output_file: Path | None) -> None:
    if output_file is None:
        _write_stdout(text)
        return
    try:
        output_file.parent.mkdir(parents=True, exist_ok=True)
        output_file.write_text(text, encoding="utf-8")
    except OSError as error:
        raise UsageError(f"cannot write {output_file}: {error.strerror or error}") from None


def _write_stdout(text: str) -> None:
    _write(sys.stdout, text)


def _write(stream: TextIO, text: str) -> None:
    try:
        stream.write(text)
        stream.flush()
    except UnicodeEncodeError:
        encoding = stream.encoding or "ascii"
        stream.write(text.encode(encoding, "backslashreplace").decode(encoding))
        stream.flush()
    except BrokenPipeError:
        # The reader (`| head`) went away: stop writing, and keep Python's shutdown from
        # complaining about the unflushed stream.
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())
        except (OSError, ValueError):
            pass


def _print_error(message: str) -> None:
    _write(sys.stderr, f"{PROG}: error: {message}\n")


def _print_warning(message: str) -> None:
    _write(sys.stderr, f"{PROG}: warning: {message}\n")

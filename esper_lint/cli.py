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
from esper_lint.config import Config, ConfigError, load_config, parse_code_list
from esper_lint.report import HUMAN_FORMATS, OUTPUT_FORMATS

if TYPE_CHECKING:
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
    config = _effective_config(options)
    return _lint(options, config)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "Find lifecycle calls and collectives that may not run on every DDP rank. "
            f"'{PROG} rule CODE' explains a rule, '{PROG} rule --all' lists them."
        ),
    )
    parser.add_argument("paths", nargs="*", type=Path, metavar="PATH", help="default: .")
    parser.add_argument("--select", metavar="CODES", help="comma-separated code prefixes")
    parser.add_argument("--ignore", metavar="CODES", help="comma-separated code prefixes")
    parser.add_argument("--config", type=Path, metavar="FILE", help=_CONFIG_HELP)
    parser.add_argument(
        "--output-format",
        choices=OUTPUT_FORMATS,
        help="default: full on a terminal, concise otherwise (text = concise)",
    )
    parser.add_argument("-o", "--output-file", type=Path, metavar="FILE")
    parser.add_argument(
        "-e", "--exit-zero", action="store_true", help="exit 0 even when something is found"
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="print diagnostics only, no summary"
    )
    parser.add_argument(
        "--statistics", action="store_true", help="count diagnostics per code instead"
    )
    parser.add_argument("--explain", metavar="CODE", help="print a rule's documentation")
    parser.add_argument("--no-cache", action="store_true", help="neither read nor write the cache")
    parser.add_argument("-j", "--jobs", type=_positive_int, metavar="N", help="worker processes")
    parser.add_argument(
        "--no-prefilter", action="store_true", help="parse every file (debugging aid)"
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    return parser


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
        prog=f"{PROG} rule", description="Print a rule's documentation, or list every rule."
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


def _effective_config(options: argparse.Namespace) -> Config:
    config = load_config(options.config)
    select = None if options.select is None else parse_code_list("--select", options.select)
    ignore = None if options.ignore is None else parse_code_list("--ignore", options.ignore)
    return config.with_overrides(select, ignore)


def _lint(options: argparse.Namespace, config: Config) -> int:
    from esper_lint.engine import lint_paths

    paths: list[Path] = options.paths or [Path(".")]
    result = lint_paths(
        paths,
        config,
        jobs=options.jobs,
        use_cache=not options.no_cache,
        prefilter=not options.no_prefilter,
    )
    for warning in result.warnings:
        _print_warning(warning)
    if result.files_checked == 0 and not result.diagnostics:
        _print_warning("no Python files found under the given paths")
    _write_output(_report(options, config, result), options.output_file)
    found = bool(result.diagnostics)
    return EXIT_FINDINGS if found and not options.exit_zero else EXIT_CLEAN


def _report(options: argparse.Namespace, config: Config, result: LintResult) -> str:
    output_format = options.output_format or _default_format(options.output_file)
    if options.statistics:
        from esper_lint.report.statistics import render_statistics

        return render_statistics(result.diagnostics, as_json=output_format == "json")
    from esper_lint.report import render
    from esper_lint.report.terminal import use_color

    human = output_format in HUMAN_FORMATS
    color = human and options.output_file is None and use_color(_stdout_is_tty(), os.environ)
    text = render(output_format, result.diagnostics, root=config.root, color=color)
    if human and not options.quiet:
        if text and output_format == "full":
            text += "\n"
        text += _summary(result.diagnostics, result.files_checked)
    return text


def _default_format(output_file: Path | None) -> str:
    return "full" if output_file is None and _stdout_is_tty() else "concise"


def _summary(diagnostics: Sequence[Diagnostic], files_checked: int) -> str:
    checked = f"{files_checked} {_plural(files_checked, 'file')} checked"
    if not diagnostics:
        return f"All checks passed! ({checked})\n"
    count = len(diagnostics)
    files = len({d.path for d in diagnostics})
    return (
        f"Found {count} {_plural(count, 'error')} in {files} {_plural(files, 'file')} "
        f"({checked}).\n"
    )


def _plural(count: int, word: str) -> str:
    return word if count == 1 else word + "s"


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

"""The human formats: ``concise`` (one line each), ``full`` (plus the source line and a caret)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from esper_lint.diagnostics import Diagnostic
from esper_lint.lines import split_lines
from esper_lint.report.terminal import BLUE, BOLD, CYAN, RED, style


def render_concise(diagnostics: Sequence[Diagnostic], *, color: bool) -> str:
    return "".join(f"{_headline(d, color)}\n" for d in diagnostics)


def render_full(diagnostics: Sequence[Diagnostic], *, color: bool) -> str:
    """Like rustc and ruff: the headline, the flagged line with carets, each line the message
    cites (the controlling condition, the exit, the loop) as a second, labelled span, then a
    ``help:`` line (the rule's "use instead") and the rule's page."""
    sources = _SourceLines()
    blocks = []
    for diagnostic in diagnostics:
        block = _headline(diagnostic, color) + "\n"
        line = sources.line(diagnostic.path, diagnostic.line)
        if line is not None:
            related = [
                (number, label, text)
                for number, label in cited_lines(diagnostic)
                if (text := sources.line(diagnostic.path, number))
            ]
            block += _snippet(diagnostic, line, color, related)
        block += _help(diagnostic, color)
        blocks.append(block)
    return "\n".join(blocks)


# "the rank-dependent condition at line 24", "the loop at line 12", "the break at line 14"
_CITED = re.compile(r"\bthe ((?:rank-dependent |rank-only )?[\w-]+(?: [\w-]+)?) at line (\d+)")


def cited_lines(d: Diagnostic) -> list[tuple[int, str]]:
    """The other lines a message names, with what they are (rules/messages.py's phrasing)."""
    cited: list[tuple[int, str]] = []
    for match in _CITED.finditer(d.message):
        number = int(match.group(2))
        if number != d.line and all(number != seen for seen, _ in cited):
            cited.append((number, match.group(1)))
    return cited


def _help(d: Diagnostic, color: bool) -> str:
    from esper_lint.rules import rule_by_code

    rule = rule_by_code(d.code)
    if rule is None:
        return ""
    bar = style("=", BLUE, enabled=color)
    lines = f"  {bar} {style('help', BOLD, enabled=color)}: {rule.help}\n" if rule.help else ""
    return lines + f"  {bar} {style('see', BOLD, enabled=color)}: {rule.url()}\n"


def _headline(d: Diagnostic, color: bool) -> str:
    location = style(f"{d.path}:{d.line}:{d.column}:", BOLD, enabled=color)
    code = style(d.code, BOLD, RED, enabled=color)
    return f"{location} {code} {d.message}"


def _snippet(
    d: Diagnostic, line: str, color: bool, related: Sequence[tuple[int, str, str]] = ()
) -> str:
    width = len(str(max([d.line, *(number for number, _, _ in related)])))
    gutter = " " * width
    bar = style("|", BLUE, enabled=color)
    column = min(max(d.column, 1), len(line) + 1)
    carets_width = 1
    if d.end_line == d.line and d.end_column > column:
        carets_width = min(d.end_column, len(line) + 1) - column
    carets = style("^" * max(carets_width, 1), BOLD, RED, enabled=color)
    spans = [(d.line, line, _indent(line, column) + carets)]
    for number, label, text in related:
        start = len(text) - len(text.lstrip())
        underline = "-" * max(len(text.rstrip()) - start, 1)
        spans.append(
            (
                number,
                text,
                _indent(text, start + 1) + style(f"{underline} {label}", BLUE, enabled=color),
            )
        )
    out = [f"{gutter} {bar}\n"]
    previous = None
    for number, text, marks in sorted(spans):
        if previous is not None and number > previous + 1:
            out.append(f"{style('...', BLUE, enabled=color)}\n")
        out.append(f"{style(str(number).rjust(width), CYAN, enabled=color)} {bar} {text}\n")
        out.append(f"{gutter} {bar} {marks}\n")
        previous = number
    return "".join(out)


def _indent(line: str, column: int) -> str:
    # Copy tabs from the source so that the marks line up however the terminal expands them.
    return "".join(char if char == "\t" else " " for char in line[: column - 1])


class _SourceLines:
    """Source lines read lazily, once per file; a file that cannot be read shows no snippet."""

    def __init__(self) -> None:
        self._files: dict[str, list[str] | None] = {}

    def line(self, path: str, number: int) -> str | None:
        if path not in self._files:
            self._files[path] = _read_lines(path)
        lines = self._files[path]
        if lines is None or not 1 <= number <= len(lines):
            return None
        return lines[number - 1]


def _read_lines(path: str) -> list[str] | None:
    try:
        with open(path, "rb") as file:
            data = file.read()
    except (OSError, ValueError):
        return None
    import io
    import tokenize  # only to show a finding's source line

    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        text = data.decode(encoding, errors="replace")
    except (SyntaxError, LookupError):
        text = data.decode("utf-8", errors="replace")
    text = text.removeprefix("\ufeff").replace("\0", "\ufffd")
    return [_printable(line) for line in split_lines(text)]


def _printable(line: str) -> str:
    # A stray control character (form feed, escape...) must not corrupt the terminal.
    return "".join(char if char == "\t" or char.isprintable() else "\ufffd" for char in line)

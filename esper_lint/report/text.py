"""The human formats: ``concise`` (one line each), ``full`` (plus the source line and a caret)."""

from __future__ import annotations

import io
import tokenize
from collections.abc import Sequence

from esper_lint.diagnostics import Diagnostic
from esper_lint.lines import split_lines
from esper_lint.report.terminal import BLUE, BOLD, CYAN, RED, style


def render_concise(diagnostics: Sequence[Diagnostic], *, color: bool) -> str:
    return "".join(f"{_headline(d, color)}\n" for d in diagnostics)


def render_full(diagnostics: Sequence[Diagnostic], *, color: bool) -> str:
    sources = _SourceLines()
    blocks = []
    for diagnostic in diagnostics:
        block = _headline(diagnostic, color) + "\n"
        line = sources.line(diagnostic.path, diagnostic.line)
        if line is not None:
            block += _snippet(diagnostic, line, color)
        blocks.append(block)
    return "\n".join(blocks)


def _headline(d: Diagnostic, color: bool) -> str:
    location = style(f"{d.path}:{d.line}:{d.column}:", BOLD, enabled=color)
    code = style(d.code, BOLD, RED, enabled=color)
    return f"{location} {code} {d.message}"


def _snippet(d: Diagnostic, line: str, color: bool) -> str:
    number = str(d.line)
    gutter = " " * len(number)
    column = min(max(d.column, 1), len(line) + 1)
    # Copy tabs from the source so that the caret lines up however the terminal expands them.
    indent = "".join(char if char == "\t" else " " for char in line[: column - 1])
    width = 1
    if d.end_line == d.line and d.end_column > column:
        width = min(d.end_column, len(line) + 1) - column
    carets = style("^" * max(width, 1), BOLD, RED, enabled=color)
    bar = style("|", BLUE, enabled=color)
    return (
        f"{gutter} {bar}\n"
        f"{style(number, CYAN, enabled=color)} {bar} {line}\n"
        f"{gutter} {bar} {indent}{carets}\n"
    )


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

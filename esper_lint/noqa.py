"""``# noqa`` comments, with ruff's and flake8's meaning, on any physical line of a finding.

A bare noqa comment silences every code; ``# noqa: ESP001, ESP002`` (codes separated by commas
or spaces, any case for ``noqa``) only those codes. A comment on any line of the flagged call
counts (its first line, a continuation line or its closing line), so a suppression survives a
formatter that splits the call. Comments are found with ``tokenize`` (so ``# noqa`` inside a
string is text, not a comment), falling back to a line scan when the file does not tokenize.

Codes other than ``ESP...`` belong to other tools and are left alone; a coded noqa naming an
``ESP`` code that suppressed nothing is reported as ESP100 (when selected).
"""

from __future__ import annotations

import io
import re
import tokenize
from collections.abc import Iterable
from dataclasses import dataclass, field

_NOQA = re.compile(
    r"#\s*noqa(?::\s*(?P<codes>[A-Z]+[0-9]+(?:[,\s]+[A-Z]+[0-9]+)*))?",
    re.IGNORECASE,
)
_CODE = re.compile(r"[A-Z]+[0-9]+", re.IGNORECASE)
OWN_PREFIX = "ESP"
UNUSED_NOQA = "ESP100"


def comment_of(line: str) -> str | None:
    """The comment part of one physical line (a ``#`` outside string literals), if any."""
    quote: str | None = None
    index = 0
    while index < len(line):
        char = line[index]
        if quote is not None:
            if char == "\\":
                index += 1
            elif line.startswith(quote, index):
                index += len(quote) - 1
                quote = None
        elif char == "#":
            return line[index:]
        elif char in "\"'":
            quote = line[index : index + 3] if line.startswith(char * 3, index) else char
            index += len(quote) - 1
        index += 1
    return None


def codes_of_comment(comment: str) -> frozenset[str] | None:
    """The codes a comment's noqa silences: empty for none, None for a bare noqa."""
    match = _NOQA.search(comment)
    if match is None:
        return frozenset()
    codes = match.group("codes")
    if codes is None:
        return None
    return frozenset(code.upper() for code in _CODE.findall(codes))


def suppressed_codes(line: str) -> frozenset[str] | None:
    """The codes a line's noqa comment silences: empty for none, None for a bare noqa."""
    comment = comment_of(line)
    return frozenset() if comment is None else codes_of_comment(comment)


def is_suppressed(line: str, code: str) -> bool:
    codes = suppressed_codes(line)
    return codes is None or code in codes


@dataclass
class Directive:
    """One noqa comment: its line (1-based), where the comment starts, and its codes."""

    line: int
    column: int  # 0-based offset of the ``#`` in the line
    comment: str
    codes: frozenset[str] | None
    written: tuple[str, ...] = ()  # the codes in the order written
    used: set[str] = field(default_factory=set)

    def suppresses(self, code: str) -> bool:
        return self.codes is None or code in self.codes

    def unused_codes(self) -> list[str]:
        """The ``ESP`` codes it names that silenced nothing, in the order written."""
        if self.codes is None:
            return []
        return [c for c in self.written if c.startswith(OWN_PREFIX) and c not in self.used]


def _comments(text: str, lines: list[str]) -> list[tuple[int, int, str]]:
    """(line, column, text) of every comment; a line scan if the file does not tokenize."""
    found: list[tuple[int, int, str]] = []
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type == tokenize.COMMENT:
                found.append((token.start[0], token.start[1], token.string))
        return found
    except (tokenize.TokenError, SyntaxError, IndentationError):
        found = []
    for number, line in enumerate(lines, start=1):
        comment = comment_of(line)
        if comment is not None:
            found.append((number, len(line) - len(comment), comment))
    return found


class Suppressions:
    """The noqa directives of one file, and which of their codes silenced something."""

    def __init__(self, text: str, lines: list[str]) -> None:
        self.by_line: dict[int, Directive] = {}
        if "noqa" not in text.lower():
            return
        for line, column, comment in _comments(text, lines):
            match = _NOQA.search(comment)
            if match is not None:
                listed = match.group("codes") or ""
                written = tuple(dict.fromkeys(c.upper() for c in _CODE.findall(listed)))
                codes = codes_of_comment(comment)
                self.by_line[line] = Directive(line, column, comment, codes, written)

    def suppress(self, code: str, start_line: int, end_line: int) -> bool:
        """Whether a noqa on a line of ``start_line..end_line`` silences ``code`` (noted)."""
        for line in range(start_line, end_line + 1):
            directive = self.by_line.get(line)
            if directive is not None and directive.suppresses(code):
                directive.used.add(code)
                return True
        return False

    def unused(self) -> Iterable[Directive]:
        return (d for d in self.by_line.values() if d.unused_codes())


def unused_message(codes: Iterable[str]) -> str:
    listed = ", ".join(codes)
    return f"unused noqa directive (unused: {listed}): nothing on this line reports it"


# --- writing comments (--add-noqa, the ESP100 fix) ----------------------------------------------


def string_spans(text: str) -> list[tuple[int, int]]:
    """(first, last) lines of every string token that spans several lines: no comment can be
    added at the end of a line before ``last``."""
    spans: list[tuple[int, int]] = []
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.start[0] != token.end[0] and token.type not in (
                tokenize.NL,
                tokenize.NEWLINE,
            ):
                spans.append((token.start[0], token.end[0]))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        pass
    return spans


def noqa_row(spans: list[tuple[int, int]], start_line: int, end_line: int) -> int:
    """The line of a finding where a ``# noqa`` comment goes: its first line whose end is not
    inside a multi-line string (``esper-lint --add-noqa`` writes it there)."""
    for line in range(start_line, end_line + 1):
        if not any(first <= line < last for first, last in spans):
            return line
    return end_line


def with_codes(line: str, codes: Iterable[str]) -> str:
    """``line`` (without its line break) with a noqa comment naming ``codes`` as well."""
    comment = comment_of(line)
    wanted = sorted(set(codes))
    if comment is not None:
        present = codes_of_comment(comment)
        if present is None:
            return line
        match = _NOQA.search(comment)
        if match is not None:
            merged = sorted({*present, *wanted})
            start = len(line) - len(comment) + match.start()
            end = len(line) - len(comment) + match.end()
            return f"{line[:start]}# noqa: {', '.join(merged)}{line[end:]}"
    body = line.rstrip()
    return f"{body}  # noqa: {', '.join(wanted)}"


def without_codes(line: str, codes: Iterable[str]) -> str:
    """``line`` with ``codes`` taken out of its noqa comment, the comment gone if none remain."""
    comment = comment_of(line)
    if comment is None:
        return line
    match = _NOQA.search(comment)
    if match is None or match.group("codes") is None:
        return line
    drop = {code.upper() for code in codes}
    written = [c.upper() for c in _CODE.findall(match.group("codes"))]
    kept = [c for c in dict.fromkeys(written) if c not in drop]
    offset = len(line) - len(comment)
    start, end = offset + match.start(), offset + match.end()
    if kept:
        return f"{line[:start]}# noqa: {', '.join(kept)}{line[end:]}"
    rest = line[end:].strip()
    before = line[:start].rstrip()
    if rest.startswith("#"):
        return f"{before}  {rest}" if before else f"{line[:start]}{rest}"
    if not before:
        return ""
    return before + (f"  # {rest}" if rest else "")

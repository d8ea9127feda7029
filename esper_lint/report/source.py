"""What the reports read back from the linted files: noqa rows and stable fingerprints."""

from __future__ import annotations

import hashlib
import re

from esper_lint.diagnostics import Diagnostic
from esper_lint.noqa import noqa_row, string_spans

_LINE_NUMBER = re.compile(r"\bline \d+")


def _read_text(path: str) -> str | None:
    try:
        with open(path, "rb") as stream:
            return stream.read().decode("utf-8", errors="replace")
    except (OSError, ValueError):
        return None


class NoqaRows:
    """Each diagnostic's noqa row; each file is read and tokenized once."""

    def __init__(self) -> None:
        self._spans: dict[str, list[tuple[int, int]]] = {}
        self._lines: dict[str, list[str]] = {}

    def row(self, d: Diagnostic) -> int:
        if d.end_line <= d.line:
            return d.line
        if d.path not in self._spans:
            text = _read_text(d.path)
            self._spans[d.path] = string_spans(text) if text is not None else []
        return noqa_row(self._spans[d.path], d.line, d.end_line)

    def line_text(self, d: Diagnostic) -> str:
        if d.path not in self._lines:
            text = _read_text(d.path)
            self._lines[d.path] = text.splitlines() if text is not None else []
        lines = self._lines[d.path]
        return lines[d.line - 1].strip() if 1 <= d.line <= len(lines) else ""


def fingerprint(d: Diagnostic, relative_path: str, rows: NoqaRows) -> str:
    """Stable across unrelated edits: the code, the file, the message without its line numbers
    and the flagged line's text, not where the line now is."""
    material = "\0".join(
        (d.code, relative_path, _LINE_NUMBER.sub("line N", d.message), rows.line_text(d))
    )
    return hashlib.blake2b(material.encode("utf-8"), digest_size=16).hexdigest()

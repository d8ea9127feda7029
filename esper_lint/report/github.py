"""GitHub Actions workflow commands: one ``::error`` annotation per diagnostic."""

from __future__ import annotations

from collections.abc import Sequence

from esper_lint.diagnostics import Diagnostic


def render_github(diagnostics: Sequence[Diagnostic]) -> str:
    return "".join(_annotation(d) + "\n" for d in diagnostics)


def _annotation(d: Diagnostic) -> str:
    properties = {
        "file": d.path,
        "line": str(d.line),
        "col": str(d.column),
        "endLine": str(d.end_line),
        "endColumn": str(d.end_column),
        "title": d.code,
    }
    rendered = ",".join(f"{key}={escape_property(value)}" for key, value in properties.items())
    return f"::error {rendered}::{escape_data(f'{d.code} {d.message}')}"


def escape_data(value: str) -> str:
    """Escape a command's message, as the Actions runner's ``escapeData`` does."""
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(value: str) -> str:
    """Escape a property value, as the runner's ``escapeProperty`` does."""
    return escape_data(value).replace(":", "%3A").replace(",", "%2C")

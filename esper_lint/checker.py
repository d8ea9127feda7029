"""Lint one file's bytes: parse, analyse, run the rules, apply ``# noqa``.

Placeholder until the analysis lands: it only reports parse failures (ESP900).
"""

from __future__ import annotations

from esper_lint.config import Config
from esper_lint.diagnostics import Diagnostic


def check_source(source: bytes, path: str, config: Config) -> list[Diagnostic]:
    import libcst

    try:
        libcst.parse_module(source)
    except libcst.ParserSyntaxError as error:
        line, column = error.raw_line, error.raw_column + 1
        message = f"file could not be parsed: {error.message}"
        return [Diagnostic(path, line, column, line, column, "ESP900", message)]
    return []

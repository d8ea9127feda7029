"""Shared helper of the analysis tests: lint a snippet, get (line, code) pairs or messages."""

from __future__ import annotations

import textwrap

from esper_lint.checker import check_source
from esper_lint.config import Config
from esper_lint.diagnostics import Diagnostic


def diagnostics(source: str, config: Config | None = None) -> list[Diagnostic]:
    code = textwrap.dedent(source).lstrip("\n")
    return check_source(code.encode(), "snippet.py", config or Config())


def found(source: str, config: Config | None = None) -> set[tuple[int, str]]:
    return {(d.line, d.code) for d in diagnostics(source, config)}


def messages(source: str, config: Config | None = None) -> list[str]:
    return [f"{d.code} {d.message}" for d in diagnostics(source, config)]

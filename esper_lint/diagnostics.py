"""The one record every part of the linter passes around."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Diagnostic:
    """One finding. Lines and columns are 1-based, like ruff's and flake8's."""

    path: str
    line: int
    column: int
    end_line: int
    end_column: int
    code: str
    message: str

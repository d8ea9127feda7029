"""``json`` (ruff's shape: one list) and ``json-lines`` (one object per line)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from esper_lint import rule_url
from esper_lint.diagnostics import Diagnostic


def diagnostic_to_json(d: Diagnostic) -> dict[str, Any]:
    return {
        "code": d.code,
        "message": d.message,
        "filename": d.path,
        "location": {"row": d.line, "column": d.column},
        "end_location": {"row": d.end_line, "column": d.end_column},
        "url": rule_url(d.code),
        "fix": None,
        "noqa_row": d.line,
    }


def render_json(diagnostics: Sequence[Diagnostic]) -> str:
    ordered = sorted(diagnostics, key=lambda d: (d.path, d.line, d.column))
    return json.dumps([diagnostic_to_json(d) for d in ordered], indent=2) + "\n"


def render_json_lines(diagnostics: Sequence[Diagnostic]) -> str:
    ordered = sorted(diagnostics, key=lambda d: (d.path, d.line, d.column))
    return "".join(json.dumps(diagnostic_to_json(d)) + "\n" for d in ordered)

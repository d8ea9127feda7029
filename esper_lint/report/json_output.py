"""``json`` (ruff's shape: one list) and ``json-lines`` (one object per line).

Each object has ruff's keys: ``code``, ``name`` (the rule's name), ``message``, ``filename``,
``location``/``end_location`` (1-based row and column), ``url``, ``fix`` (always null: fixes
are applied with ``--fix``, not described here) and ``noqa_row``: the line where a
``# noqa: CODE`` comment suppresses the finding, the one ``esper-lint --add-noqa`` writes to (the
first line of the flagged call whose end is not inside a multi-line string; a comment on any
other line of the call works too).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from esper_lint import rule_url
from esper_lint.diagnostics import Diagnostic
from esper_lint.report.source import NoqaRows


def diagnostic_to_json(d: Diagnostic, rows: NoqaRows | None = None) -> dict[str, Any]:
    from esper_lint.rules import rule_by_code

    rule = rule_by_code(d.code)
    return {
        "code": d.code,
        "name": rule.name if rule is not None else None,
        "message": d.message,
        "filename": d.path,
        "location": {"row": d.line, "column": d.column},
        "end_location": {"row": d.end_line, "column": d.end_column},
        "url": rule_url(d.code),
        "fix": None,
        "noqa_row": (rows or NoqaRows()).row(d),
    }


def render_json(diagnostics: Sequence[Diagnostic]) -> str:
    ordered = sorted(diagnostics, key=lambda d: (d.path, d.line, d.column))
    rows = NoqaRows()
    return json.dumps([diagnostic_to_json(d, rows) for d in ordered], indent=2) + "\n"


def render_json_lines(diagnostics: Sequence[Diagnostic]) -> str:
    ordered = sorted(diagnostics, key=lambda d: (d.path, d.line, d.column))
    rows = NoqaRows()
    return "".join(json.dumps(diagnostic_to_json(d, rows)) + "\n" for d in ordered)

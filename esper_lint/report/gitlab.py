"""GitLab's code quality report: a JSON array of issues (a subset of the Code Climate spec).

https://docs.gitlab.com/ci/testing/code_quality/#code-quality-report-format: each issue has a
``description``, a ``check_name``, a ``fingerprint`` unique in the report, a ``severity``
(info, minor, major, critical, blocker) and a ``location`` with a ``path`` relative to the
repository root and ``lines.begin``. Paths are made relative to the project root (GitLab runs
jobs at the repository root). Identical findings get distinct fingerprints by their order.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from esper_lint.diagnostics import Diagnostic
from esper_lint.report.source import NoqaRows, fingerprint

# A rank that skips a collective hangs the job: as bad as a failing build.
SEVERITY = "critical"
FILE_SEVERITY = "major"  # a file esper-lint could not check


def render_gitlab(diagnostics: Sequence[Diagnostic], *, root: Path) -> str:
    rows = NoqaRows()
    seen: Counter[str] = Counter()
    issues = []
    for d in diagnostics:
        path = _relative(d.path, root)
        base = fingerprint(d, path, rows)
        seen[base] += 1
        unique = base if seen[base] == 1 else f"{base}-{seen[base]}"
        issues.append(_issue(d, path, unique))
    return json.dumps(issues, indent=2) + "\n"


def _issue(d: Diagnostic, path: str, unique: str) -> dict[str, Any]:
    return {
        "type": "issue",
        "check_name": d.code,
        "description": f"{d.code} {d.message}",
        "categories": ["Bug Risk"],
        "fingerprint": unique,
        "severity": FILE_SEVERITY if d.code.startswith("ESP9") else SEVERITY,
        "location": {
            "path": path,
            "lines": {"begin": d.line, "end": max(d.end_line, d.line)},
        },
    }


def _relative(path: str, root: Path) -> str:
    absolute = Path(os.path.abspath(path))
    try:
        return absolute.relative_to(root.resolve()).as_posix()
    except ValueError:
        return absolute.as_posix()

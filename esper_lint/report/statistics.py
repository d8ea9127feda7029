"""``--statistics``: how many diagnostics of each code, most frequent first (like ruff)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence

from esper_lint.diagnostics import Diagnostic


def count_by_code(diagnostics: Sequence[Diagnostic]) -> list[tuple[str, int]]:
    counts = Counter(d.code for d in diagnostics)
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


def render_statistics(diagnostics: Sequence[Diagnostic], *, as_json: bool) -> str:
    rows = [(code, count, _rule_name(code)) for code, count in count_by_code(diagnostics)]
    if as_json:
        entries = [{"code": code, "name": name, "count": count} for code, count, name in rows]
        return json.dumps(entries, indent=2) + "\n"
    if not rows:
        return ""
    total = sum(count for _, count, _ in rows)
    count_width = max(len(str(total)), *(len(str(count)) for _, count, _ in rows))
    code_width = max(len(code) for code, _, _ in rows)
    table = "".join(
        f"{count:>{count_width}}\t{code:<{code_width}}\t{name}".rstrip() + "\n"
        for code, count, name in rows
    )
    return table + f"Found {total} {'error' if total == 1 else 'errors'}.\n"


def _rule_name(code: str) -> str:
    from esper_lint.rules import rule_by_code

    rule = rule_by_code(code)
    return rule.name if rule is not None else ""

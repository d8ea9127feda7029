"""Every output format: one function from diagnostics to the text written out."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from esper_lint.diagnostics import Diagnostic

OUTPUT_FORMATS = (
    "full",
    "concise",
    "text",
    "json",
    "json-lines",
    "sarif",
    "github",
    "gitlab",
    "junit",
)
# Formats meant for people: they get colour, a summary line and the statistics table.
HUMAN_FORMATS = frozenset({"full", "concise", "text"})


def render(
    output_format: str, diagnostics: Sequence[Diagnostic], *, root: Path, color: bool = False
) -> str:
    """The whole output of one run in ``output_format`` (``text`` is ``concise``)."""
    ordered = sorted(diagnostics, key=lambda d: (d.path, d.line, d.column, d.code, d.message))
    if output_format == "full":
        from esper_lint.report.text import render_full

        return render_full(ordered, color=color)
    if output_format in ("concise", "text"):
        from esper_lint.report.text import render_concise

        return render_concise(ordered, color=color)
    if output_format == "json":
        from esper_lint.report.json_output import render_json

        return render_json(ordered)
    if output_format == "json-lines":
        from esper_lint.report.json_output import render_json_lines

        return render_json_lines(ordered)
    if output_format == "sarif":
        from esper_lint.report.sarif import render_sarif

        return render_sarif(ordered, root=root)
    if output_format == "github":
        from esper_lint.report.github import render_github

        return render_github(ordered)
    if output_format == "gitlab":
        from esper_lint.report.gitlab import render_gitlab

        return render_gitlab(ordered, root=root)
    if output_format == "junit":
        from esper_lint.report.junit import render_junit

        return render_junit(ordered)
    raise ValueError(f"unknown output format {output_format!r}")

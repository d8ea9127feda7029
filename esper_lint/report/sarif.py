"""SARIF 2.1.0, as GitHub code scanning reads it.

Artifact locations are relative POSIX URIs resolved against ``%SRCROOT%`` (the project root,
declared in ``originalUriBaseIds``), so the log does not depend on where the checkout lives.
A file outside the project root keeps an absolute ``file:`` URI.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from esper_lint import DOCS_URL, __version__
from esper_lint.diagnostics import Diagnostic
from esper_lint.report.source import NoqaRows, fingerprint

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_VERSION = "2.1.0"
SRCROOT = "%SRCROOT%"


def render_sarif(diagnostics: Sequence[Diagnostic], *, root: Path) -> str:
    return json.dumps(sarif_log(diagnostics, root=root), indent=2) + "\n"


FINGERPRINT_KEY = "esperLint/v1"


def sarif_log(diagnostics: Sequence[Diagnostic], *, root: Path) -> dict[str, Any]:
    from esper_lint.rules import ALL_RULES

    rows = NoqaRows()

    rules = [_rule_descriptor(rule) for rule in ALL_RULES]
    rule_index = {rule.code: index for index, rule in enumerate(ALL_RULES)}
    resolved_root = root.resolve()
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "esper-lint",
                "version": __version__,
                "semanticVersion": __version__,
                "informationUri": DOCS_URL,
                "rules": rules,
            }
        },
        "originalUriBaseIds": {SRCROOT: {"uri": resolved_root.as_uri().rstrip("/") + "/"}},
        "columnKind": "unicodeCodePoints",
        "invocations": [_invocation()],
        "results": [_result(d, rule_index, resolved_root, rows) for d in diagnostics],
    }
    return {"$schema": SARIF_SCHEMA, "version": SARIF_VERSION, "runs": [run]}


def _rule_descriptor(rule: Any) -> dict[str, Any]:
    return {
        "id": rule.code,
        "name": rule.name,
        "shortDescription": {"text": rule.summary},
        "fullDescription": {"text": _plain(rule.what_it_does)},
        "helpUri": rule.url(),
        "help": {
            "text": f"{rule.summary.rstrip('.')}. See {rule.url()}",
            "markdown": rule.markdown(),
        },
        "defaultConfiguration": {"level": "error"},
        "properties": {"tags": list(rule.tags), "precision": rule.precision},
    }


def _invocation() -> dict[str, Any]:
    """The run itself: a log with results came from a run that completed."""
    return {
        "executionSuccessful": True,
        "commandLine": shlex.join([os.path.basename(sys.argv[0] or "esper-lint"), *sys.argv[1:]]),
        "workingDirectory": {"uri": Path.cwd().resolve().as_uri().rstrip("/") + "/"},
    }


def _result(
    d: Diagnostic, rule_index: dict[str, int], root: Path, rows: NoqaRows
) -> dict[str, Any]:
    location = _artifact_location(d.path, root)
    result: dict[str, Any] = {
        "ruleId": d.code,
        "level": "error",
        "message": {"text": d.message},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": location,
                    "region": _region(d),
                }
            }
        ],
        "partialFingerprints": {FINGERPRINT_KEY: fingerprint(d, location["uri"], rows)},
    }
    if d.code in rule_index:
        result["ruleIndex"] = rule_index[d.code]
    return result


def _artifact_location(path: str, root: Path) -> dict[str, str]:
    absolute = Path(os.path.abspath(path))
    try:
        relative = absolute.relative_to(root)
    except ValueError:
        return {"uri": absolute.as_uri()}
    return {"uri": quote(relative.as_posix()), "uriBaseId": SRCROOT}


def _region(d: Diagnostic) -> dict[str, int]:
    start_line, start_column = max(d.line, 1), max(d.column, 1)
    end_line = max(d.end_line, start_line)
    end_column = max(d.end_column, 1)
    if end_line == start_line:
        end_column = max(end_column, start_column)
    return {
        "startLine": start_line,
        "startColumn": start_column,
        "endLine": end_line,
        "endColumn": end_column,
    }


def _plain(text: str) -> str:
    """Source-wrapped prose as plain paragraphs: viewers wrap lines themselves."""
    paragraphs = textwrap.dedent(text).strip().split("\n\n")
    return "\n\n".join(" ".join(paragraph.split("\n")) for paragraph in paragraphs)

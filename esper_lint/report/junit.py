"""JUnit XML, as CI systems read test reports: one test suite per file, one failed test case
per finding (ruff's shape), and a passing ``esper-lint`` case when nothing was found."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from itertools import groupby

from esper_lint.diagnostics import Diagnostic

SUITES_NAME = "esper-lint"


def render_junit(diagnostics: Sequence[Diagnostic]) -> str:
    suites = ET.Element("testsuites", name=SUITES_NAME, tests=str(max(len(diagnostics), 1)))
    suites.set("failures", str(len(diagnostics)))
    if not diagnostics:
        suite = ET.SubElement(suites, "testsuite", name=SUITES_NAME, tests="1", failures="0")
        ET.SubElement(suite, "testcase", name="no findings", classname=SUITES_NAME)
    for path, group in groupby(diagnostics, key=lambda d: d.path):
        found = list(group)
        suite = ET.SubElement(
            suites, "testsuite", name=path, tests=str(len(found)), failures=str(len(found))
        )
        for d in found:
            case = ET.SubElement(
                suite,
                "testcase",
                name=f"{d.code} at {d.line}:{d.column}",
                classname=path,
                file=path,
                line=str(d.line),
            )
            failure = ET.SubElement(case, "failure", message=d.message, type=d.code)
            failure.text = f"line {d.line}, col {d.column}, {d.message}"
    ET.indent(suites)
    body = ET.tostring(suites, encoding="unicode")
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{body}\n'

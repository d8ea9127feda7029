"""Lint every annotated fixture in tests/fixtures/ and compare with its `# expect:` comments.

A fixture line ending in `# expect: ESP001` (or `# expect: ESP001, ESP003`) must get exactly those
codes on that line (the line where the offending call starts); every other line must get nothing.

Single files (tests/fixtures/*.py) are checked alone, with ``check_source``. Each project
(tests/fixtures/projects/NAME/, a pyproject.toml plus packages) is linted from its root through
the engine, as the CLI does, and must yield exactly the (file, line, code) its files announce.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

import pytest

from esper_lint.checker import check_source
from esper_lint.config import Config, load_config
from esper_lint.diagnostics import Diagnostic
from esper_lint.engine import lint_paths

FIXTURES_DIR = Path(__file__).parent / "fixtures"
FIXTURES = sorted(FIXTURES_DIR.glob("*.py"))
PROJECTS = sorted(path.parent for path in (FIXTURES_DIR / "projects").glob("*/pyproject.toml"))
MIN_PROJECTS = 15

RULE_CODES = frozenset({"ESP001", "ESP002", "ESP003", "ESP004", "ESP005", "ESP006"})
CLEAN_PREFIX = "clean_"
VIOLATING_PREFIX = "esp00"
MIN_FIXTURES = 60
MAX_EXPECTS_IN_CLEAN_FIXTURE = 2

ANNOTATION = re.compile(r"#\s*expect:\s*(?P<codes>ESP\d{3}(?:\s*,\s*ESP\d{3})*)\s*$")

Finding = tuple[int, str]


def expected_findings(source: bytes) -> set[Finding]:
    """(line, code) pairs announced by `# expect:` comments; strings are never read as comments."""
    expected: set[Finding] = set()
    for token in tokenize.tokenize(io.BytesIO(source).readline):
        if token.type != tokenize.COMMENT or "expect" not in token.string.lower():
            continue
        match = ANNOTATION.search(token.string)
        if match is None:
            # A typo such as "# expected: ESP001" would otherwise silently expect nothing.
            raise ValueError(f"line {token.start[0]}: malformed annotation {token.string!r}")
        line = token.start[0]
        expected.update((line, code.strip()) for code in match["codes"].split(","))
    return expected


def describe(findings: set[Finding], diagnostics: list[Diagnostic]) -> str:
    messages = {(d.line, d.code): d.message for d in diagnostics}
    return "\n".join(
        f"  line {line}: {code} {messages.get((line, code), '')}".rstrip()
        for line, code in sorted(findings)
    )


@pytest.mark.parametrize("fixture", FIXTURES, ids=[path.name for path in FIXTURES])
def test_fixture_reports_exactly_the_marked_lines(fixture: Path) -> None:
    source = fixture.read_bytes()
    diagnostics = check_source(source, str(fixture), Config())
    found = {(diagnostic.line, diagnostic.code) for diagnostic in diagnostics}
    expected = expected_findings(source)
    assert found == expected, (
        f"{fixture.name}\nreported but not marked:\n{describe(found - expected, diagnostics)}"
        f"\nmarked but not reported:\n{describe(expected - found, diagnostics)}"
    )


def test_fixture_set_covers_every_rule_with_enough_clean_files() -> None:
    assert len(FIXTURES) >= MIN_FIXTURES
    expected = {path.name: expected_findings(path.read_bytes()) for path in FIXTURES}
    clean = {name for name in expected if name.startswith(CLEAN_PREFIX)}
    violating = {name for name in expected if name.startswith(VIOLATING_PREFIX)}
    assert clean | violating == set(expected), "fixture names start with clean_ or esp00x_"
    assert 2 * len(clean) >= len(FIXTURES), "at least half of the fixtures are clean-but-tricky"
    too_many = {name for name in clean if len(expected[name]) > MAX_EXPECTS_IN_CLEAN_FIXTURE}
    assert not too_many, f"clean fixtures with more than a contrast line or two: {too_many}"
    unmarked = {name for name in violating if not expected[name]}
    assert not unmarked, f"violating fixtures without any `# expect:`: {unmarked}"
    codes = {code for findings in expected.values() for _, code in findings}
    assert codes == RULE_CODES


def test_every_fixture_is_python_310_with_a_docstring() -> None:
    undocumented = [
        path.name
        for path in FIXTURES
        if not ast.get_docstring(ast.parse(path.read_bytes(), feature_version=(3, 10)))
    ]
    assert not undocumented


def test_annotations_are_read_from_comments_only() -> None:
    source = b'MARKER = "# expect: ESP001"\nslot.step_epoch()  # expect: ESP002, ESP003\n'
    assert expected_findings(source) == {(2, "ESP002"), (2, "ESP003")}
    with pytest.raises(ValueError, match="malformed annotation"):
        expected_findings(b"slot.step_epoch()  # expected: ESP001\n")


ProjectFinding = tuple[str, int, str]


def expected_project_findings(root: Path) -> set[ProjectFinding]:
    return {
        (path.relative_to(root).as_posix(), line, code)
        for path in sorted(root.rglob("*.py"))
        for line, code in expected_findings(path.read_bytes())
    }


@pytest.mark.parametrize("root", PROJECTS, ids=[path.name for path in PROJECTS])
def test_project_reports_exactly_the_marked_lines(root: Path) -> None:
    config = load_config(cwd=root)
    result = lint_paths([root], config, jobs=1, use_cache=False)
    found = {
        (Path(d.path).resolve().relative_to(root.resolve()).as_posix(), d.line, d.code)
        for d in result.diagnostics
    }
    expected = expected_project_findings(root)
    messages = {(Path(d.path).name, d.line, d.code): d.message for d in result.diagnostics}
    extra = "\n".join(
        f"  {f} {messages.get((Path(f[0]).name, f[1], f[2]), '')}" for f in sorted(found - expected)
    )
    missing = "\n".join(f"  {f}" for f in sorted(expected - found))
    assert found == expected, (
        f"{root.name}\nreported but not marked:\n{extra}\nmarked but not reported:\n{missing}"
    )


def test_project_set_is_large_enough_and_has_clean_projects() -> None:
    assert len(PROJECTS) >= MIN_PROJECTS
    findings = {root.name: expected_project_findings(root) for root in PROJECTS}
    assert all(len(list(root.rglob("*.py"))) >= 2 for root in PROJECTS), "projects span files"
    assert sum(1 for found in findings.values() if not found) >= 3, "clean look-alikes"
    codes = {code for found in findings.values() for _, _, code in found}
    assert codes == RULE_CODES

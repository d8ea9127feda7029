"""The output formats, fed with hand-made diagnostics (SARIF has its own file)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from esper_lint import rule_url
from esper_lint.diagnostics import Diagnostic
from esper_lint.report import render
from esper_lint.report.github import escape_data, escape_property
from esper_lint.report.statistics import render_statistics
from esper_lint.report.terminal import use_color

MESSAGE = (
    "slot.step_epoch() may not run on every rank: it is controlled by the rank-dependent "
    "condition at line 2 (rank == 0)"
)


def diag(path: str, line: int, column: int, code: str = "ESP001", **kw: object) -> Diagnostic:
    end_line = int(str(kw.get("end_line", line)))
    end_column = int(str(kw.get("end_column", column + 17)))
    message = str(kw.get("message", MESSAGE))
    return Diagnostic(path, line, column, end_line, end_column, code, message)


@pytest.fixture
def source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.chdir(tmp_path)
    Path("train.py").write_text(
        "def train(slot, rank):\n    if rank == 0:\n        slot.step_epoch()\n", encoding="utf-8"
    )
    return "train.py"


# --- concise / full --------------------------------------------------------------------------


def test_concise_is_one_line_per_diagnostic_sorted(source: str) -> None:
    diagnostics = [diag("b.py", 1, 1), diag(source, 3, 9), diag(source, 2, 5, "ESP004")]

    lines = render("concise", diagnostics, root=Path.cwd()).splitlines()

    assert lines == [
        f"b.py:1:1: ESP001 {MESSAGE}",
        f"train.py:2:5: ESP004 {MESSAGE}",
        f"train.py:3:9: ESP001 {MESSAGE}",
    ]


def test_text_is_an_alias_of_concise(source: str) -> None:
    diagnostics = [diag(source, 3, 9)]

    assert render("text", diagnostics, root=Path.cwd()) == render(
        "concise", diagnostics, root=Path.cwd()
    )


def test_full_shows_the_call_the_condition_as_a_labelled_span_help_and_url(source: str) -> None:
    output = render("full", [diag(source, 3, 9, end_column=26)], root=Path.cwd())

    assert output.splitlines() == [
        f"train.py:3:9: ESP001 {MESSAGE}",
        "  |",
        "2 |     if rank == 0:",
        "  |     ------------- rank-dependent condition",
        "3 |         slot.step_epoch()",
        "  |         ^^^^^^^^^^^^^^^^^",
        "  = help: Move the call out of the rank-dependent branch so that every rank makes it",
        f"  = see: {rule_url('ESP001')}",
    ]


def test_full_labels_every_cited_line_and_elides_the_gap(tmp_path: Path) -> None:
    path = tmp_path / "loop.py"
    path.write_text(
        "for b in loader:\n    x = 1\n    if loss > 1:\n        break\n    slot.step_epoch()\n",
        encoding="utf-8",
    )
    message = (
        "slot.step_epoch() may not run the same number of times on every rank: it is inside the "
        "loop at line 1, whose trip count depends on the break at line 4 (if loss)"
    )
    d = Diagnostic(str(path), 5, 5, 5, 22, "ESP002", message)

    lines = render("full", [d], root=tmp_path).splitlines()

    assert lines[2:9] == [
        "1 | for b in loader:",
        "  | ---------------- loop",
        "...",
        "4 |         break",
        "  |         ----- break",
        "5 |     slot.step_epoch()",
        "  |     ^^^^^^^^^^^^^^^^^",
    ]


def test_full_caret_follows_tabs_and_a_multiline_call_gets_one_caret(tmp_path: Path) -> None:
    path = tmp_path / "tabs.py"
    path.write_text("if rank == 0:\n\tslot.step_epoch(\n\t)\n", encoding="utf-8")

    output = render("full", [diag(str(path), 2, 2, end_line=3, end_column=3)], root=tmp_path)

    assert output.splitlines()[2:4] == ["2 | \tslot.step_epoch(", "  | \t^"]


def test_full_tolerates_missing_undecodable_and_short_files(tmp_path: Path) -> None:
    (tmp_path / "latin.py").write_bytes(b"x = '\xe9t\xe9'  # not UTF-8\n")
    (tmp_path / "short.py").write_text("x = 1\n", encoding="utf-8")
    diagnostics = [
        diag(str(tmp_path / "gone.py"), 1, 1, "ESP902"),
        diag(str(tmp_path / "latin.py"), 1, 40, "ESP900"),
        diag(str(tmp_path / "short.py"), 7, 1),
    ]

    output = render("full", diagnostics, root=tmp_path)

    assert "gone.py:1:1: ESP902" in output
    # The undecodable byte is replaced; the caret is clamped to the end of the line.
    assert "1 | x = '\ufffdt\ufffd'  # not UTF-8" in output
    line = "x = '\ufffdt\ufffd'  # not UTF-8"
    assert f"  | {' ' * len(line)}^" in output.splitlines()
    assert "short.py:7:1: ESP001" in output
    assert [text for text in output.splitlines() if text[:1].isdigit()] == [f"1 | {line}"]


def test_full_neutralises_control_characters_from_the_source(tmp_path: Path) -> None:
    path = tmp_path / "esc.py"
    path.write_bytes(b"x = '\x1b[2J'; slot.step_epoch()\n")

    output = render("full", [diag(str(path), 1, 15)], root=tmp_path)

    assert "\x1b" not in output


def test_colour_only_when_asked(source: str) -> None:
    plain = render("full", [diag(source, 3, 9)], root=Path.cwd(), color=False)
    coloured = render("full", [diag(source, 3, 9)], root=Path.cwd(), color=True)

    assert "\x1b[" not in plain
    assert "\x1b[31m" in coloured
    assert "\x1b[" in render("concise", [diag(source, 3, 9)], root=Path.cwd(), color=True)


@pytest.mark.parametrize(
    ("is_tty", "environ", "expected"),
    [
        (True, {}, True),
        (False, {}, False),
        (True, {"NO_COLOR": "1"}, False),
        (True, {"NO_COLOR": ""}, True),  # an empty NO_COLOR does not count
        (False, {"FORCE_COLOR": "1"}, True),
        (False, {"FORCE_COLOR": ""}, False),
        (True, {"NO_COLOR": "1", "FORCE_COLOR": "1"}, False),  # NO_COLOR wins
        (True, {"TERM": "dumb"}, False),
    ],
)
def test_use_color_follows_no_color_and_force_color(
    is_tty: bool, environ: dict[str, str], expected: bool
) -> None:
    assert use_color(is_tty, environ) is expected


# --- json / json-lines -----------------------------------------------------------------------


def test_json_has_ruffs_shape_and_order() -> None:
    diagnostics = [diag("b.py", 2, 3), diag("a.py", 10, 1, "ESP004"), diag("a.py", 9, 5)]

    items = json.loads(render("json", diagnostics, root=Path.cwd()))

    assert [(i["filename"], i["location"]["row"]) for i in items] == [
        ("a.py", 9),
        ("a.py", 10),
        ("b.py", 2),
    ]
    assert items[0] == {
        "code": "ESP001",
        "name": "rank-conditional-lifecycle-call",
        "message": MESSAGE,
        "filename": "a.py",
        "location": {"row": 9, "column": 5},
        "end_location": {"row": 9, "column": 22},
        "url": rule_url("ESP001"),
        "fix": None,
        "noqa_row": 9,
    }


def test_json_noqa_row_is_the_first_line_of_the_call_outside_a_multiline_string(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.py"
    path.write_text('dist.broadcast_object_list(["""\nx""",\n    y])\nf(\n  1)\n', encoding="utf-8")
    diagnostics = [diag(str(path), 1, 1, "ESP004", end_line=3), diag(str(path), 4, 1, end_line=5)]

    items = json.loads(render("json", diagnostics, root=tmp_path))

    assert [item["noqa_row"] for item in items] == [2, 4]


def test_json_of_nothing_is_an_empty_list() -> None:
    assert json.loads(render("json", [], root=Path.cwd())) == []
    assert render("json-lines", [], root=Path.cwd()) == ""


def test_json_lines_is_one_object_per_line() -> None:
    diagnostics = [diag("b.py", 1, 1), diag("a.py", 1, 1, message="two\nlines")]

    lines = render("json-lines", diagnostics, root=Path.cwd()).splitlines()

    assert [json.loads(line)["filename"] for line in lines] == ["a.py", "b.py"]
    assert json.loads(lines[0])["message"] == "two\nlines"


# --- github ----------------------------------------------------------------------------------


def test_github_annotation() -> None:
    output = render("github", [diag("src/train.py", 3, 9, end_column=26)], root=Path.cwd())

    assert output == (
        "::error file=src/train.py,line=3,col=9,endLine=3,"
        f"endColumn=26,title=ESP001::ESP001 {MESSAGE}\n"
    )


def test_github_escapes_data_and_properties() -> None:
    assert escape_data("50% a:b,c\r\nd") == "50%25 a:b,c%0D%0Ad"
    assert escape_property("50% a:b,c\r\nd") == "50%25 a%3Ab%2Cc%0D%0Ad"

    output = render("github", [diag("odd,name:1.py", 1, 1, message="x\ny")], root=Path.cwd())

    assert "file=odd%2Cname%3A1.py," in output
    assert output.endswith("::ESP001 x%0Ay\n")
    assert output.count("\n") == 1


# --- statistics ------------------------------------------------------------------------------


def test_statistics_counts_per_code_most_frequent_first() -> None:
    diagnostics = [diag("a.py", 1, 1, "ESP004"), *(diag("a.py", n, 1) for n in range(2, 14))]

    lines = render_statistics(diagnostics, as_json=False).splitlines()

    assert [line.split("\t")[:2] for line in lines[:-1]] == [["12", "ESP001"], [" 1", "ESP004"]]
    assert lines[-1] == "Found 13 errors."


def test_statistics_as_json() -> None:
    entries = json.loads(render_statistics([diag("a.py", 1, 1, "ESP900")], as_json=True))

    assert [(e["code"], e["count"]) for e in entries] == [("ESP900", 1)]


def test_full_format_counts_lines_as_libcst_does(tmp_path: Path) -> None:
    # A form feed and U+2028 are not line breaks for Python; str.splitlines() says they are.
    source = 'x = 1\f\ny = "\u2028"\nslot.step_epoch()\n'
    path = tmp_path / "ff.py"
    path.write_text(source, encoding="utf-8")
    output = render("full", [diag(str(path), 3, 1, end_column=18)], root=tmp_path)
    assert "3 | slot.step_epoch()" in output

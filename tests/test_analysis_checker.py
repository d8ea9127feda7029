"""check_source end to end: positions, noqa, parse and analysis failures, the prefilter names."""

from __future__ import annotations

import warnings
from pathlib import Path

import hypothesmith
import libcst
import pytest
from analysis_helpers import assert_same_parse, diagnostics, found
from hypothesis import HealthCheck, given, settings

from esper_lint.analysis.symbols import symmetric_call_names
from esper_lint.checker import check_source, parse_unvalidated
from esper_lint.config import Config
from esper_lint.noqa import comment_of, suppressed_codes
from esper_lint.prefilter import candidate_predicate
from esper_lint.rules import ALL_RULES


def test_position_is_the_start_and_end_of_the_call() -> None:
    source = """
    def f(slot, rank):
        if rank == 0:
            x = foo(self.slots[0].step_epoch(
                1,
            ))
    """
    [d] = diagnostics(source)
    assert (d.line, d.column, d.end_line, d.end_column) == (3, 17, 5, 10)
    assert d.message.startswith("self.slots[0].step_epoch() may not run on every rank")


def test_diagnostics_are_sorted() -> None:
    source = """
    def f(slot, rank, loader):
        for b in loader:
            if rank == 0:
                slot.step_epoch(); slot.advance_stage()
    """
    result = diagnostics(source)
    assert result == sorted(result)
    assert [(d.column, d.code) for d in result] == [
        (13, "ESP001"),
        (13, "ESP002"),
        (32, "ESP001"),
        (32, "ESP002"),
    ]


NOQA_CASES = [
    ("slot.step_epoch()  # noqa", set()),
    ("slot.step_epoch()  # NOQA", set()),
    ("slot.step_epoch()  # noqa: ESP001", {(4, "ESP002")}),
    ("slot.step_epoch()  # noqa:ESP002", {(4, "ESP001")}),
    ("slot.step_epoch()  # noqa: ESP001, ESP002", set()),
    ("slot.step_epoch()  # noqa: ESP001 ESP002", set()),
    ("slot.step_epoch()  # noqa: E501", {(4, "ESP001"), (4, "ESP002")}),
    ('slot.step_epoch("# noqa")', {(4, "ESP001"), (4, "ESP002")}),
    ("slot.step_epoch()  # type: ignore  # noqa: ESP001,ESP002", set()),
]


@pytest.mark.parametrize(("line", "expected"), NOQA_CASES)
def test_noqa_on_the_call_line(line: str, expected: set[tuple[int, str]]) -> None:
    source = f"""
    def f(slot, rank, loader):
        for b in loader:
            if rank == 0:
                {line}
    """
    assert found(source) == expected


def test_noqa_applies_on_any_physical_line_of_a_multiline_call() -> None:
    source = """
    def f(slot, rank):
        if rank == 0:
            slot.step_epoch(  # noqa: ESP001
                1,
            )
        if rank == 0:
            slot.step_epoch(
                1,  # noqa: ESP001
            )
        if rank == 0:
            slot.step_epoch(
                1,
            )  # noqa: ESP001
        if rank == 0:
            slot.step_epoch(
                1,
            )
        x = 1  # noqa: ESP001
    """
    assert found(source) == {(15, "ESP001"), (18, "ESP100")}


def test_noqa_parsing_helpers() -> None:
    assert comment_of("x = '#'  # real") == "# real"
    assert comment_of('x = """# no"""') is None
    assert suppressed_codes("x  # noqa") is None
    assert suppressed_codes("x  # noqa: esp001") == frozenset({"ESP001"})
    assert suppressed_codes("x") == frozenset()


@pytest.mark.parametrize(
    "source",
    [
        b"def f(:\n    slot.step_epoch()\n",
        b"slot.step_epoch()\n\x00\n",
        b"\xff\xfe slot.step_epoch()\n",
        b"# -*- coding: nosuchcodec -*-\nslot.step_epoch()\n",
    ],
)
def test_unparseable_files_give_esp900(source: bytes) -> None:
    [d] = check_source(source, "bad.py", Config())
    assert d.code == "ESP900"
    assert d.message.startswith("file could not be parsed: ")
    assert d.line >= 1 and d.column >= 1


def test_syntax_error_is_positioned_and_carries_the_parser_message() -> None:
    [d] = check_source(b"x = 1\ndef f(:\n    pass\n", "bad.py", Config())
    assert d.code == "ESP900" and d.line >= 2
    assert "expected" in d.message


@pytest.mark.parametrize("depth", [500, 5000])
def test_deep_nesting_gives_esp901_not_a_crash(depth: int) -> None:
    source = ("x = " + "[" * depth + "1" + "]" * depth + "\nslot.step_epoch()\n").encode()
    result = check_source(source, "deep.py", Config())
    assert [(d.line, d.code) for d in result] == [(1, "ESP901")]


def test_deeply_nested_blocks_are_analysed() -> None:
    lines = ["def f(rank, slot):"]
    for level in range(1, 90):
        lines.append("    " * level + "if rank == 0:")
    lines.append("    " * 90 + "slot.step_epoch()")
    result = check_source("\n".join(lines).encode(), "deep.py", Config())
    assert [(d.line, d.code) for d in result] == [(91, "ESP001")]


def test_bom_and_coding_cookie_are_handled() -> None:
    source = "# -*- coding: latin-1 -*-\nif rank == 0:\n    slot.step_epoch()  # é\n"
    result = check_source(source.encode("latin-1"), "latin.py", Config())
    assert [(d.line, d.code) for d in result] == [(3, "ESP001")]
    bom = b"\xef\xbb\xbfif rank == 0:\n    slot.step_epoch()\n"
    assert [(d.line, d.column) for d in check_source(bom, "bom.py", Config())] == [(2, 5)]


def _examples() -> list[str]:
    return [e for rule in ALL_RULES for e in (*rule.bad_examples(), *rule.good_examples())]


@pytest.mark.parametrize(
    "config",
    [Config(), Config(extend_symmetric_calls=("sync_alpha",))],
)
def test_files_with_findings_contain_a_prefilter_name(config: Config) -> None:
    is_candidate = candidate_predicate(config)
    for example in _examples():
        result = check_source(example.encode(), "x.py", config)
        if any(d.code in {"ESP001", "ESP002", "ESP003", "ESP004", "ESP006"} for d in result):
            assert is_candidate(example.encode()), example


def test_prefilter_names_cover_every_family() -> None:
    names = symmetric_call_names(Config(extend_symmetric_calls=("sync_alpha",)))
    expected = {
        "step_epoch",
        "advance_stage",
        "sync_alpha",
        "barrier",
        "all_gather_into_tensor",
        "new_group",
        "wait_for_everyone",
        "gather_for_metrics",
        "reduce_boolean_decision",
        "broadcast_object_list",
    }
    assert expected <= names
    assert not {"send", "recv", "isend", "irecv", "get_rank"} & names


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(hypothesmith.from_grammar())
def test_check_source_never_raises_on_generated_programs(source: str) -> None:
    prefixed = "import torch.distributed as dist\nrank = dist.get_rank()\n" + source
    for code in (source, prefixed):
        result = check_source(code.encode("utf-8", "surrogatepass"), "gen.py", Config())
        assert all(d.code.startswith("ESP") for d in result)


def test_python_warnings_about_the_checked_file_are_not_printed() -> None:
    # CPython's parser (the depth oracle) warns about `"str"()` and invalid escapes.
    source = b'import torch.distributed as dist\nx = "str"()\ny = "\\d"\ndist.barrier()\n'
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert check_source(source, "warns.py", Config()) == []
    assert [str(warning.message) for warning in caught] == []


# --- the parse without node validation -------------------------------------------------------

FIXTURE_SOURCES = sorted(
    p for p in (Path(__file__).parent / "fixtures").rglob("*.py") if p.is_file()
)


@pytest.mark.parametrize("fixture", FIXTURE_SOURCES, ids=lambda path: path.name)
def test_the_unvalidated_parse_builds_libcsts_own_tree(fixture: Path) -> None:
    assert_same_parse(fixture.read_bytes())


def test_validation_is_back_after_the_parse_whether_or_not_it_failed() -> None:
    parse_unvalidated(b"x = 1\n")
    with pytest.raises(libcst.CSTValidationError):
        libcst.Name("")  # a node built by hand is still checked
    with pytest.raises(libcst.ParserSyntaxError):
        parse_unvalidated(b"def (:\n")
    with pytest.raises(libcst.CSTValidationError):
        libcst.Name("")

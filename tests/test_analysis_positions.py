"""The lean position pass agrees with libcst's PositionProvider on every node a message cites."""

from __future__ import annotations

from pathlib import Path

import libcst as cst
import pytest
from libcst.metadata import MetadataWrapper, PositionProvider

from esper_lint.analysis.positions import positions_of

FIXTURES = sorted((Path(__file__).parent / "fixtures").glob("*.py"))
CITED = (
    cst.Call,
    cst.Return,
    cst.Break,
    cst.Continue,
    cst.Raise,
    cst.Expr,
    cst.Decorator,
    cst.Comparison,
    cst.Name,
    cst.Attribute,
    cst.BooleanOperation,
    cst.UnaryOperation,
    cst.IfExp,
    cst.Subscript,
)
# Compound statements: only their start is cited (their end is hoisted from their body).
STARTS_ONLY = (cst.If, cst.For, cst.While, cst.Match)

SAMPLE = """\
# header comment
import torch.distributed as dist

@rank_zero_only
def f(slot, rank, loader):\r
    if rank == 0 and not (loader is None):
        x = [s.step_epoch(1,
                          2) for s in loader if rank]
    for b in loader:
        while rank:
            break
    return dist.barrier()
"""


@pytest.mark.parametrize(
    "source",
    [SAMPLE.encode(), *(path.read_bytes() for path in FIXTURES)],
    ids=["sample", *(path.name for path in FIXTURES)],
)
def test_lean_positions_match_position_provider(source: bytes) -> None:
    module = cst.parse_module(source)
    reference = MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)
    targets = {node for node in reference if isinstance(node, CITED + STARTS_ONLY)}
    found = positions_of(module, targets)
    for node in targets:
        assert found[node].start == reference[node].start, node
        if not isinstance(node, STARTS_ONLY):
            assert found[node].end == reference[node].end, node


def test_only_the_targets_are_recorded() -> None:
    module = cst.parse_module(b"a()\nb()\n")
    first = module.body[0]
    assert isinstance(first, cst.SimpleStatementLine)
    call = first.body[0]
    assert isinstance(call, cst.Expr)
    found = positions_of(module, {call.value})
    assert [(r.start.line, r.start.column) for r in found.values()] == [(1, 0)]

"""The benchmark's generated corpora: the Esper-shaped tree has Esper's candidate shares (by
esper-lint's own prefilter) and lints identically whatever the engine mode."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import pytest

from esper_lint.config import Config
from esper_lint.engine import MIN_CANDIDATES_FOR_POOL
from esper_lint.prefilter import candidate_predicate

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))
from corpus import generate, generate_esper_shaped  # noqa: E402
from test_engine import assert_all_identical, modes  # noqa: E402

# A smaller tree than the benchmark's 640 files, with the same shape parameters.
FILES = 80
LINES = 10_000


def candidate_sources(root: Path, written: list[Path]) -> tuple[list[bytes], list[bytes]]:
    is_candidate = candidate_predicate(Config(root=root))
    sources = [path.read_bytes() for path in written]
    return sources, [source for source in sources if is_candidate(source)]


def test_the_esper_shaped_tree_has_esper_candidate_shares(tmp_path: Path) -> None:
    root = tmp_path / "esper"
    written = generate_esper_shaped(root, files=FILES, lines=LINES)
    assert sorted(root.rglob("*.py")) == sorted(written) and len(written) == FILES
    sources, candidates = candidate_sources(root, written)
    file_share = len(candidates) / len(sources)
    byte_share = sum(map(len, candidates)) / sum(map(len, sources))
    assert 0.11 <= file_share <= 0.15, file_share
    assert 0.24 <= byte_share <= 0.32, byte_share
    # training code, not a stray word: lifecycle calls and collectives in the candidates
    text = b"".join(candidates)
    for call in (b".step_epoch()", b".advance_stage()", b"dist.all_reduce(", b"broadcast_object"):
        assert call in text, call
    assert any(b"import esperpkg." in source for source in candidates)  # they import the helpers


def test_the_worst_case_makes_every_module_a_candidate(tmp_path: Path) -> None:
    root = tmp_path / "worst"
    written = generate_esper_shaped(root, files=30, lines=3000, every_file_candidate=True)
    sources, candidates = candidate_sources(root, written)
    assert len(candidates) == sum(1 for source in sources if source)  # all but empty __init__s


def test_the_default_corpus_keeps_its_old_share(tmp_path: Path) -> None:
    """Older numbers stay reproducible: ``generate``'s default is still 6% candidates."""
    root = tmp_path / "default"
    written = generate(root, files=100, lines=3000)
    _, candidates = candidate_sources(root, written)
    assert len(candidates) == 6


@pytest.mark.slow
def test_the_esper_shaped_tree_lints_identically_in_every_mode(tmp_path: Path) -> None:
    root = tmp_path / "esper"
    written = generate_esper_shaped(root, files=FILES, lines=LINES)
    _, candidates = candidate_sources(root, written)
    assert len(candidates) >= MIN_CANDIDATES_FOR_POOL  # jobs=2 really uses the pool
    reference = assert_all_identical(modes(root, [root], Config(root=root), tmp_path / "cache"))
    assert reference.files_checked == FILES
    codes = Counter(d.code for d in reference.diagnostics)
    assert codes["ESP001"] and codes["ESP004"] and codes["ESP005"], codes  # real findings
    is_candidate = candidate_predicate(Config(root=root))
    flagged = {Path(d.path) for d in reference.diagnostics}
    assert all(is_candidate(path.read_bytes()) for path in flagged)

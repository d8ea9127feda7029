"""The text prefilter: which files are parsed. It may over-approximate, never under-approximate."""

from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path

import hypothesmith
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from esper_lint.analysis.names import (
    contextual_call_names,
    plain_call_names,
    receiver_call_names,
)
from esper_lint.analysis.symbols import symmetric_call_names
from esper_lint.config import Config
from esper_lint.prefilter import (
    candidate_predicate,
    code_only,
    core_substrings,
    names_pattern,
)

DEFAULT = Config()


def is_candidate(source: bytes, config: Config = DEFAULT) -> bool:
    return candidate_predicate(config)(source)


def test_names_come_from_the_analysis() -> None:
    config = Config(extend_symmetric_calls=("sync_alpha",))
    assert {"step_epoch", "advance_stage", "barrier", "sync_alpha"} <= symmetric_call_names(config)


def test_whole_words_only() -> None:
    assert is_candidate(b"for slot in slots:\n    slot.step_epoch()\n")
    assert is_candidate(b"import torch.distributed as dist\ndist.barrier()\n")
    assert is_candidate(b"from torch.distributed import all_reduce as ar\n")
    assert is_candidate(b"total = dist.reduce(t, 0)\n")  # `dist` unimported counts too
    assert is_candidate(b"import torch.distributed\nfunctools.reduce(add, xs)\n")  # too wide: fine
    assert not is_candidate(b"x = reduced_loss + pre_step_epoch + step_epochs\n")
    assert not is_candidate(b"barriers = gathered = scatter_ = 1\n")
    assert not is_candidate(b"")


def test_a_collective_name_counts_only_with_the_word_its_family_is_recognised_by() -> None:
    assert not is_candidate(b"total = functools.reduce(add, xs)\n")
    assert not is_candidate(b"picked = torch.gather(x, 1, index)\n")
    assert not is_candidate(b"out = torch.broadcast_to(x, shape).scatter(0, i, v)\n")
    assert is_candidate(b"picked = self.accelerator.gather(x)\n")
    assert is_candidate(b"from accelerate.utils import broadcast\nbroadcast(x)\n")
    assert is_candidate(b"loss = trainer.strategy.reduce(loss)\n")
    assert is_candidate(b"fabric.barrier()\n")
    assert is_candidate(b"from mpi4py import MPI\ncomm.Reduce(a, b)\n")
    assert is_candidate(b"from torch.distributed import gather as g\n")
    # a name recognised whatever its receiver needs no family word
    assert is_candidate(b"metrics = acc.gather_for_metrics(x)\n")
    assert is_candidate(b"x = self.all_gather(x)\n")
    # the family word must be code too: a comment or a plain string does not count
    assert not is_candidate(b"x = y.gather(0)  # not torch.distributed\n")


def test_names_only_in_comments_or_plain_strings_do_not_make_candidates() -> None:
    assert not is_candidate(b"x = 1  # dist.barrier() would deadlock here\n")
    assert not is_candidate(b'"""Call slot.step_epoch() on every rank."""\n')
    assert not is_candidate(b"log('waiting at the barrier')\n")
    assert not is_candidate(b"s = b'all_reduce' + r'\\gather'\n")
    # code after a string or comment that holds a quote or a hash still counts
    assert is_candidate(b"s = 'a # b'; dist.barrier()\n")
    assert is_candidate(b"# it's fine\ndist.barrier()\n")
    assert is_candidate(b'x = """\n"""; dist.barrier()\n')
    # an f-string's braces hold code
    assert is_candidate(b'print(f"loss {accelerator.reduce(loss)}")\n')
    assert is_candidate(b"print(rb'x', F'{dist.barrier()}')\n")


def _identifiers(source: str) -> set[str]:
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    return {token.string for token in tokens if token.type == tokenize.NAME}


def _words(source: bytes) -> set[str]:
    return set(re.findall(r"\w+", source.decode("utf-8")))


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(hypothesmith.from_grammar())
def test_code_only_keeps_every_identifier_of_valid_python(source: str) -> None:
    try:
        identifiers = _identifiers(source)
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return
    assert identifiers <= _words(code_only(source.encode("utf-8")))


FIXTURE_SOURCES = sorted(
    path for path in (Path(__file__).parent / "fixtures").rglob("*.py") if path.is_file()
)


@pytest.mark.parametrize("path", FIXTURE_SOURCES, ids=lambda path: path.name)
def test_code_only_keeps_every_identifier_of_the_fixtures(path: Path) -> None:
    try:
        text = path.read_bytes().decode("utf-8")
        identifiers = _identifiers(text)
    except (UnicodeDecodeError, tokenize.TokenError, SyntaxError, IndentationError):
        pytest.skip("not tokenizable")
    assert identifiers <= _words(code_only(text.encode("utf-8")))


def test_process_exits_make_candidates() -> None:
    # ESP005: an exit under a rank-only decorator needs no symmetric call in the file
    assert is_candidate(b"@rank_zero_only\ndef done():\n    sys.exit(0)\n")
    assert is_candidate(b"if rank != 0:\n    os._exit(0)\n")
    assert not is_candidate(b"exited = exit_code = quitting = 1\n")


def test_configured_names_make_candidates() -> None:
    source = b"trainer.sync_alpha()\n"
    assert not is_candidate(source)
    assert is_candidate(source, Config(extend_symmetric_calls=("sync_alpha",)))


def test_a_file_in_a_non_ascii_compatible_codec_is_always_a_candidate() -> None:
    assert is_candidate(b"# -*- coding: cp037 -*-\nx = 1\n")
    assert is_candidate(b"#!/usr/bin/env python\n# vim: set fileencoding=utf-16 :\n")
    assert not is_candidate(b"# -*- coding: latin-1 -*-\nx = '\xe9'\n")
    assert not is_candidate(b"# coding: utf-8\nx = 1\n")
    assert not is_candidate(b"x = 1\n\n# coding: cp037\n")  # only the first two lines count


def test_every_name_contains_a_core_substring() -> None:
    names = symmetric_call_names(Config(extend_symmetric_calls=("gather_all_the_things", "x")))
    cores = core_substrings(names)
    assert all(any(core in name.encode() for core in cores) for name in names)
    assert len(cores) < len(names)


ALPHABET = st.sampled_from(
    ["step_epoch", "advance_stage", "reduce", "all_reduce", "gather", "barrier", "_", "x", "1",
     ".", " ", "\n", "(", "#", "é", "a", "s", "step", "epoch", "all", "b", "dist", "Fabric"]
)  # fmt: skip


def _has_word(name: str, text: bytes) -> bool:
    return re.search(rb"\b" + re.escape(name.encode()) + rb"\b", text) is not None


@settings(max_examples=300, deadline=None)
@given(st.lists(ALPHABET, max_size=12).map("".join))
def test_matches_the_word_definition(text: str) -> None:
    source = text.encode("utf-8")
    names = symmetric_call_names(DEFAULT)
    assert bool(names_pattern(names).search(source)) == any(_has_word(n, source) for n in names)
    code = code_only(source)
    alone = plain_call_names(DEFAULT)
    pairs = contextual_call_names(DEFAULT) | receiver_call_names(DEFAULT)
    in_code = any(_has_word(n, code) for n in alone) or any(
        _has_word(n, code) and part.encode() in code.lower() for n, part in pairs
    )
    assert is_candidate(source) == in_code

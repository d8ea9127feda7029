"""The text prefilter: which files are parsed. It may over-approximate, never under-approximate."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from esper_lint.analysis.symbols import symmetric_call_names
from esper_lint.config import Config
from esper_lint.prefilter import (
    candidate_predicate,
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
    assert is_candidate(b"total = functools.reduce(add, xs)\n")  # over-approximation is fine
    assert not is_candidate(b"x = reduced_loss + pre_step_epoch + step_epochs\n")
    assert not is_candidate(b"barriers = gathered = scatter_ = 1\n")
    assert not is_candidate(b"")


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
     ".", " ", "\n", "(", "#", "é", "a", "s", "step", "epoch", "all", "b"]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(ALPHABET, max_size=12).map("".join))
def test_matches_the_word_definition(text: str) -> None:
    source = text.encode("utf-8")
    names = symmetric_call_names(DEFAULT)
    expected = any(re.search(rb"\b" + re.escape(n.encode()) + rb"\b", source) for n in names)
    assert is_candidate(source) == expected
    assert bool(names_pattern(names).search(source)) == expected

"""Decide, from a file's bytes alone, whether it could hold a symmetric call.

A file that mentions none of the symmetric names as a whole word cannot produce an ESP00x
finding (same-file helpers are found through the calls they make, which name them), so it is
not parsed, unless it calls a symmetric call through a project import (the engine asks
``summaries.Project.imports_offering``, which reads ``analysis.offers``). A project module
through which no importer can reach a symmetric call or a rank source is not parsed for its
summary either (``contribution_words``, ``offers``). Some implicit collectives are recognised by
their receiver (``accelerator.save_state``, ``trainer.evaluate``): their names count only in a
file that also contains the receiver part, in any case (``names.receiver_call_names``), so that
every ``evaluate`` or ``save`` does not make a file a candidate. The collectives do the same
with their family's word (``names.contextual_call_names``): ``gather``, ``reduce`` or
``broadcast`` count only in a file that also holds ``dist`` (an import of torch.distributed, or
``dist.``), ``accelerate``, ``accelerator``, ``strategy``, ``fabric`` or ``mpi4py``, the words
through which the analysis recognises them (``symbols._is_collective``); most of them elsewhere
are tensor operations (``torch.gather``, ``functools.reduce``).

A few substring tests (memory speed) and, on a hit, one compiled bytes regex cost about 5
microseconds per kilobyte, against about 2 milliseconds per kilobyte for
``libcst.parse_module``. A file that passes is read again without its comments and plain string
literals (``code_only``, one regex pass, about 15 microseconds per kilobyte): a name that appears
only in a docstring, a log message or a comment cannot be called, and on the public packages of
the benchmark such files are about a fifth of the word matches.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from functools import lru_cache

from esper_lint.analysis.names import (
    contextual_call_names,
    plain_call_names,
    receiver_call_names,
)
from esper_lint.config import Config

# Encodings under which an ASCII identifier is stored as the same ASCII bytes. A file declaring
# any other codec (cp037, utf-16...) can't be scanned as bytes, so it is always a candidate.
_ASCII_COMPATIBLE_CODEC = re.compile(
    rb"(?:utf[-_]?8(?:[-_]sig)?|ascii|us[-_]ascii|latin[-_]?1|iso[-_]?8859[-_]?\d+|l\d|"
    rb"cp125\d|windows[-_]125\d|iso[-_]?latin[-_]?\d)\Z",
    re.IGNORECASE,
)
# PEP 263: the cookie is only honoured on the first two lines.
_CODING_COOKIE = re.compile(rb"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)", re.MULTILINE)


class _Trie(dict[str, "_Trie"]):
    pass


def _trie_regex(words: Iterable[str]) -> str:
    """An alternation factored by common prefixes: sre tries alternatives one by one."""
    trie = _Trie()
    for word in words:
        node = trie
        for char in word:
            node = node.setdefault(char, _Trie())
        node[""] = _Trie()

    def emit(node: _Trie) -> str:
        branches = [re.escape(char) + emit(child) for char, child in sorted(node.items()) if char]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        return f"(?:{body})?" if "" in node else body

    return emit(trie)


def names_pattern(names: Iterable[str]) -> re.Pattern[bytes]:
    """One regex matching any of ``names`` as a whole (ASCII) word."""
    words = sorted({name for name in names if name})
    if not words:
        return re.compile(rb"(?!)")  # matches nothing
    return re.compile(rb"\b" + _trie_regex(words).encode("utf-8") + rb"\b")


def core_substrings(names: Iterable[str]) -> tuple[bytes, ...]:
    """The names that contain no other name: every name contains at least one of them."""
    words = {name.encode("utf-8") for name in names if name}
    return tuple(sorted(word for word in words if not any(o != word and o in word for o in words)))


def declares_foreign_codec(source: bytes) -> bool:
    second_newline = source.find(b"\n", source.find(b"\n") + 1)
    head = source if second_newline == -1 else source[:second_newline]
    if b"coding" not in head:
        return False
    match = _CODING_COOKIE.search(head)
    return match is not None and _ASCII_COMPATIBLE_CODEC.match(match.group(1)) is None


# Comments and string literals, except f-strings (whose braces hold code): a name that appears
# only there cannot be called. Leftmost-first, so a `#` inside a string or a quote inside a
# comment is consumed by the token that opened first.
_COMMENT_OR_STRING = re.compile(
    rb"#[^\r\n]*"
    rb'|"""[\s\S]*?"""'
    rb"|'''[\s\S]*?'''"
    rb'|"(?:\\[\s\S]|[^"\\\r\n])*"'
    rb"|'(?:\\[\s\S]|[^'\\\r\n])*'"
)
_PREFIX_LETTERS = frozenset(b"rRbBuUfF")


# A string literal whose text is one identifier: a rank source may be one (``"RANK"``).
_IDENTIFIER_STRING = re.compile(rb"""(["'])[A-Za-z_][A-Za-z0-9_]{0,63}\1\Z""")


def code_only(source: bytes, keep_identifier_strings: bool = False) -> bytes:
    """``source`` with its comments and non-f string literals replaced by a space (but for those
    whose text is one identifier, with ``keep_identifier_strings``)."""

    def blank(match: re.Match[bytes]) -> bytes:
        start = match.start()
        if source[start] != 0x23:  # a string: an f-string prefix keeps it
            prefix = start
            while prefix > 0 and source[prefix - 1] in _PREFIX_LETTERS:
                prefix -= 1
            if b"f" in source[prefix:start].lower():
                return match.group()
            if keep_identifier_strings and _IDENTIFIER_STRING.match(match.group()):
                return match.group()
        return b" "

    return _COMMENT_OR_STRING.sub(blank, source)


def _binary(source: bytes) -> bool:
    """A NUL byte is never in Python source: such a file has no comments or strings to tell
    apart, and a name in it keeps it a candidate, to be reported as unparsable (ESP900)."""
    return b"\0" in source


@lru_cache(maxsize=8)
def _predicate(
    names: frozenset[str],
    pairs: frozenset[tuple[str, str]] = frozenset(),
    in_code: bool = False,
) -> Callable[[bytes], bool]:
    search = names_pattern(names).search
    cores = core_substrings(names)
    by_receiver: dict[bytes, set[str]] = {}
    for word, receiver in pairs:
        by_receiver.setdefault(receiver.lower().encode("utf-8"), set()).add(word)
    receiver_searches = [(part, names_pattern(words).search) for part, words in by_receiver.items()]

    def names_in(text: bytes) -> bool:
        # Substring tests run at memory speed; the word-boundary regex confirms the few hits.
        if any(core in text for core in cores) and search(text) is not None:
            return True
        if receiver_searches:
            lowered = text.lower()
            return any(part in lowered and found(text) for part, found in receiver_searches)
        return False

    def is_candidate(source: bytes) -> bool:
        if names_in(source) and (not in_code or _binary(source) or names_in(code_only(source))):
            return True
        return declares_foreign_codec(source)

    return is_candidate


def contribution_words(config: Config) -> tuple[frozenset[str], frozenset[tuple[str, str]]]:
    """The words through which a module contributes: symmetric call names and rank sources (a
    rank-zero decorator tests the rank, so it names one too, or calls a module that does), and
    the (word, receiver part) pairs that count only in a text holding both."""
    from esper_lint.analysis.rank import RANK_CALLS, RANK_ENV_VARS, RANK_FLAG_CALLS, RANK_NAMES

    rank_words = RANK_NAMES | RANK_CALLS | RANK_FLAG_CALLS | RANK_ENV_VARS
    names = plain_call_names(config) | rank_words | frozenset(config.extend_rank_sources)
    return names, _pairs(config)


def symmetric_words(config: Config) -> tuple[frozenset[str], frozenset[tuple[str, str]]]:
    """The words of a symmetric call, and the pairs, as ``candidate_predicate`` reads them."""
    return plain_call_names(config), _pairs(config)


def candidate_predicate(config: Config) -> Callable[[bytes], bool]:
    """``is_candidate(source)``: could this file hold a symmetric call under ``config``? Only a
    name outside comments and plain strings counts (a rank source may be a string, ``"RANK"``:
    ``analysis.offers`` keeps those for ``contribution_words``)."""
    return _predicate(*symmetric_words(config), in_code=True)


def _pairs(config: Config) -> frozenset[tuple[str, str]]:
    return receiver_call_names(config) | contextual_call_names(config)

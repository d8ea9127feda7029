"""``# noqa`` comments, with ruff's and flake8's meaning.

A bare noqa comment silences every code on its line; ``# noqa: ESP001, ESP002`` (codes separated
by commas or spaces, any case for ``noqa``) only those codes.
"""

from __future__ import annotations

import re

_NOQA = re.compile(
    r"#\s*noqa(?::\s*(?P<codes>[A-Z]+[0-9]+(?:[,\s]+[A-Z]+[0-9]+)*))?",
    re.IGNORECASE,
)
_CODE = re.compile(r"[A-Z]+[0-9]+", re.IGNORECASE)


def comment_of(line: str) -> str | None:
    """The comment part of one physical line (a ``#`` outside string literals), if any."""
    quote: str | None = None
    index = 0
    while index < len(line):
        char = line[index]
        if quote is not None:
            if char == "\\":
                index += 1
            elif line.startswith(quote, index):
                index += len(quote) - 1
                quote = None
        elif char == "#":
            return line[index:]
        elif char in "\"'":
            quote = line[index : index + 3] if line.startswith(char * 3, index) else char
            index += len(quote) - 1
        index += 1
    return None


def suppressed_codes(line: str) -> frozenset[str] | None:
    """The codes a line's noqa comment silences: empty for none, None for a bare noqa."""
    comment = comment_of(line)
    if comment is None:
        return frozenset()
    match = _NOQA.search(comment)
    if match is None:
        return frozenset()
    codes = match.group("codes")
    if codes is None:
        return None
    return frozenset(code.upper() for code in _CODE.findall(codes))


def is_suppressed(line: str, code: str) -> bool:
    codes = suppressed_codes(line)
    return codes is None or code in codes

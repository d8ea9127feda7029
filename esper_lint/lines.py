"""A file's lines as libcst (and so every reported line number) counts them."""

from __future__ import annotations

import re

# Only these end a line: str.splitlines() would also split on form feeds, U+2028 and others.
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def split_lines(text: str) -> list[str]:
    return _LINE_BREAK.split(text)

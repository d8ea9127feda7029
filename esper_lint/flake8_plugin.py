"""flake8 plugin: ``flake8 --select ESP`` reports esper-lint's codes.

flake8 applies its own ``--select``/``--ignore``/``per-file-ignores`` and ``# noqa``; the
plugin reads only the analysis settings (``extend-*``) from ``[tool.esper-lint]``.
"""

from __future__ import annotations

import ast
import functools
import io
import sys
import tokenize
from collections.abc import Iterator, Sequence
from typing import Any

from esper_lint import __version__
from esper_lint.config import Config, ConfigError, load_config


class EsperLintPlugin:
    name = "esper-lint"
    version = __version__

    def __init__(self, tree: ast.AST, filename: str, lines: Sequence[str]) -> None:
        # flake8 picks the constructor arguments by name; the tree is unused (esper-lint
        # needs libcst's tree), but asking for it makes this an AST plugin run once per file.
        self._filename = filename
        self._lines = lines

    def run(self) -> Iterator[tuple[int, int, str, type[Any]]]:
        from esper_lint.checker import check_source

        for d in check_source(self._source(), self._filename, _analysis_config()):
            yield d.line, max(d.column - 1, 0), f"{d.code} {d.message}", type(self)

    def _source(self) -> bytes:
        return encode_lines(self._lines)


def encode_lines(lines: Sequence[str]) -> bytes:
    """flake8's decoded lines as bytes libcst decodes back to the same text: re-encoded with
    the encoding their coding cookie declares (it was decoded from it), else UTF-8."""
    text = "".join(lines)
    utf8 = text.encode("utf-8", errors="surrogateescape")
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(utf8).readline)
        return text.encode(encoding.removesuffix("-sig"))
    except (SyntaxError, LookupError, UnicodeError):
        return utf8


@functools.lru_cache(maxsize=1)
def _analysis_config() -> Config:
    """The ``[tool.esper-lint]`` settings; a broken configuration is reported once, and the
    defaults are used (a plugin can't end flake8's run with esper-lint's exit code 2)."""
    try:
        return load_config()
    except ConfigError as error:
        print(f"esper-lint: warning: {error}; using the default settings", file=sys.stderr)
        return Config()

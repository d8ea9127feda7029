"""flake8 plugin: ``flake8 --select ESP`` reports esper-lint's codes.

Each file uses the configuration the ``esper-lint`` command would use for it (the closest
``[tool.esper-lint]`` or ``esper-lint.toml``): its ``exclude``/``extend-exclude`` and
``.gitignore`` (with ``respect-gitignore``) drop the file, and its ``select``/``extend-select``/
``ignore``/``per-file-ignores`` filter the findings, so that both entry points report the same.
flake8's own ``--select``/``--extend-ignore``/``per-file-ignores`` and ``# noqa`` apply on top.
"""

from __future__ import annotations

import ast
import functools
import io
import sys
import tokenize
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from esper_lint import __version__
from esper_lint.config import Config, ConfigError, ConfigResolver


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
        from esper_lint.discovery import is_excluded

        resolver = _resolver()
        config = Config()
        if resolver is not None:
            try:
                if self._filename not in _STDIN_NAMES and is_excluded(
                    Path(self._filename), resolver.for_path
                ):
                    return
                config = resolver.for_path(Path(self._filename))
            except ConfigError as error:
                _warn(str(error))
        for d in check_source(self._source(), self._filename, config):
            if config.enabled(d.code, self._filename):
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


_STDIN_NAMES = frozenset({"-", "stdin"})


@functools.lru_cache(maxsize=1)
def _resolver() -> ConfigResolver | None:
    """Finds each file's ``[tool.esper-lint]``; None when the one of the current directory is
    broken (reported once: a plugin can't end flake8's run with esper-lint's exit code 2)."""
    resolver = ConfigResolver()
    try:
        resolver.default  # noqa: B018  (loads it now, to report a broken one once)
    except ConfigError as error:
        _warn(str(error))
        return None
    return resolver


@functools.lru_cache(maxsize=32)
def _warn(message: str) -> None:
    print(f"esper-lint: warning: {message}; using the default settings", file=sys.stderr)

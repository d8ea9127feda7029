"""Effective configuration: [tool.esper-lint] of the nearest pyproject.toml plus CLI overrides.

Where the configuration comes from:

- by default, ``[tool.esper-lint]`` of the nearest ``pyproject.toml`` found walking up from the
  current directory (the nearest one, even when it has no ``[tool.esper-lint]`` table: its
  directory is still the project root);
- ``--config FILE``: a file named ``pyproject.toml`` is read the same way (its
  ``[tool.esper-lint]`` table); any other file is a dedicated TOML file (say
  ``esper-lint.toml``) whose top level holds the keys directly.

The project root (``Config.root``) is the directory of that file, else the current directory.
``per-file-ignores`` globs are relative to it.

Code selection: a code is reported when a ``select`` prefix matches it (ESP9xx, the codes for
files that could not be read, parsed or analysed, always count as selected), no ``ignore``
prefix matches it, and no ``per-file-ignores`` entry for the file matches it.
"""

from __future__ import annotations

import functools
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

from esper_lint.analysis.implicit_collectives import BACKENDS
from esper_lint.globs import translate_glob

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised only on 3.10
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

TOOL_TABLE = "esper-lint"
ALWAYS_SELECTED_PREFIX = "ESP9"
LIST_KEYS = (
    "select",
    "ignore",
    "extend-symmetric-calls",
    "extend-rank-sources",
    "extend-data-sources",
    "extend-implicit-collectives",
    "extend-sanitizers",
    "backends",
    "exclude",
    "src",
)
CODE_LIST_KEYS = ("select", "ignore")
# Matched against the final name of a call, attribute or name: each entry must be one.
NAME_LIST_KEYS = (
    "extend-symmetric-calls",
    "extend-rank-sources",
    "extend-implicit-collectives",
    "extend-sanitizers",
)
# Matched as a substring of a name: an empty entry would match every loop.
NAME_PART_LIST_KEYS = ("extend-data-sources",)
VALID_KEYS = (*LIST_KEYS, "per-file-ignores")


class ConfigError(Exception):
    """A configuration problem the user must fix; the CLI prints it and exits 2."""


@dataclass(frozen=True)
class Config:
    """What the analysis and the engine need to know.

    The ``extend_*`` fields and ``backends`` change what the analysis finds, so they are part of
    the cache key.
    ``select``/``ignore``/``per_file_ignores`` only filter findings after the fact.
    """

    select: tuple[str, ...] = ("ESP",)
    ignore: tuple[str, ...] = ()
    extend_symmetric_calls: tuple[str, ...] = ()
    extend_rank_sources: tuple[str, ...] = ()
    extend_data_sources: tuple[str, ...] = ()
    extend_implicit_collectives: tuple[str, ...] = ()
    # functions whose result is the same on every rank (ESP005; see analysis/sanitizers.py)
    extend_sanitizers: tuple[str, ...] = ()
    # the training backends whose implicit collectives ESP006 checks
    backends: tuple[str, ...] = BACKENDS
    exclude: tuple[str, ...] = ()
    per_file_ignores: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # extra import roots of the project, relative to ``root`` (``src/`` is always one)
    src: tuple[str, ...] = ()
    root: Path = field(default_factory=Path.cwd)

    def enabled(self, code: str, path: str) -> bool:
        """Whether a diagnostic ``code`` found in ``path`` is reported."""
        selected = code.startswith(ALWAYS_SELECTED_PREFIX) or _matches_any(code, self.select)
        if not selected or _matches_any(code, self.ignore):
            return False
        if not self.per_file_ignores:
            return True
        relative = _relative_to_root(path, self.root)
        return not any(
            _matches_any(code, codes) and _glob_matches(pattern, relative)
            for pattern, codes in self.per_file_ignores
        )

    def with_overrides(
        self, select: tuple[str, ...] | None, ignore: tuple[str, ...] | None
    ) -> Config:
        """Apply ``--select``/``--ignore`` the way ruff layers its CLI over the config file.

        ``--select`` replaces the configured selection and drops the configured ignores (a new
        selection starts afresh); ``--ignore`` adds to whatever ignores remain. Validate the
        codes with :func:`parse_code_list` first.
        """
        new_select = self.select if select is None else select
        base_ignore = self.ignore if select is None else ()
        new_ignore = base_ignore + (ignore or ())
        return replace(self, select=new_select, ignore=new_ignore)


def load_config(config_file: Path | None = None, cwd: Path | None = None) -> Config:
    """The configuration for a run started in ``cwd`` (default: the current directory)."""
    start = (cwd or Path.cwd()).resolve()
    if config_file is not None:
        return _load_file(config_file, dedicated=config_file.name != "pyproject.toml")
    pyproject = find_pyproject(start)
    if pyproject is None:
        return Config(root=start)
    return _load_file(pyproject, dedicated=False)


def find_pyproject(start: Path) -> Path | None:
    """The nearest ``pyproject.toml`` in ``start`` or one of its parents."""
    for directory in (start, *start.parents):
        candidate = directory / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def parse_code_list(option: str, value: str) -> tuple[str, ...]:
    """A comma-separated ``--select``/``--ignore`` value, validated."""
    codes = tuple(part.strip().upper() for part in value.split(",") if part.strip())
    _check_codes(option, codes)
    return codes


def config_from_table(table: Mapping[str, Any], *, root: Path, where: str) -> Config:
    """Validate one ``[tool.esper-lint]``-shaped table; ``where`` prefixes every error."""
    for key in table:
        if key not in VALID_KEYS:
            raise ConfigError(f"{where}: unknown key '{key}'{_did_you_mean(key)}")
    lists = {key: _string_list(table, key, where) for key in LIST_KEYS if key in table}
    for key in CODE_LIST_KEYS:
        if key in lists:
            _check_codes(f"{where}: '{key}'", lists[key])
    for key in NAME_LIST_KEYS:
        _check_entries(where, key, lists.get(key, ()), str.isidentifier, "a Python identifier")
    for key in NAME_PART_LIST_KEYS:
        _check_entries(
            where,
            key,
            lists.get(key, ()),
            _is_name_part,
            "a non-empty part of a Python name (letters, digits, underscores)",
        )
    if "backends" in lists:
        _check_backends(where, lists["backends"])
    values: dict[str, Any] = {key.replace("-", "_"): value for key, value in lists.items()}
    if "per-file-ignores" in table:
        values["per_file_ignores"] = _per_file_ignores(table["per-file-ignores"], where)
    return Config(root=root, **values)


def _load_file(path: Path, *, dedicated: bool) -> Config:
    document = _read_toml(path)
    root = path.resolve().parent
    if dedicated:
        return config_from_table(document, root=root, where=str(path))
    tool = document.get("tool", {})
    table = tool.get(TOOL_TABLE, {}) if isinstance(tool, dict) else {}
    where = f"{path}: [tool.{TOOL_TABLE}]"
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table, got {_type_name(table)}")
    return config_from_table(table, root=root, where=where)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the configuration file: {error.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: invalid TOML: not UTF-8 ({error.reason})") from None
    try:
        document: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: invalid TOML: {_with_line(str(error), text)}") from None
    return document


def _with_line(message: str, text: str) -> str:
    """tomllib ends its messages with "(at line N, column M)", except at the end of the
    document: name that line too, so that every TOML error points somewhere."""
    end = "(at end of document)"
    if message.endswith(end):
        last_line = text.count("\n") + 1
        return f"{message.removesuffix(end)}(at end of document, line {last_line})"
    return message


def _string_list(table: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = table[key]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConfigError(f"{where}: '{key}' must be a list of strings, got {_describe(value)}")
    return tuple(value)


def _per_file_ignores(value: object, where: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    key = "per-file-ignores"
    if not isinstance(value, dict):
        raise ConfigError(
            f"{where}: '{key}' must be a table of glob = list of codes, got {_type_name(value)}"
        )
    entries: list[tuple[str, tuple[str, ...]]] = []
    for pattern, codes in value.items():
        entry = f'{key}."{pattern}"'
        if not isinstance(codes, list) or not all(isinstance(code, str) for code in codes):
            raise ConfigError(
                f"{where}: '{entry}' must be a list of strings, got {_describe(codes)}"
            )
        _check_codes(f"{where}: '{entry}'", codes)
        entries.append((pattern, tuple(codes)))
    return tuple(entries)


def _check_entries(
    where: str, key: str, entries: Iterable[str], valid: Callable[[str], bool], expected: str
) -> None:
    for entry in entries:
        if not valid(entry):
            raise ConfigError(f"{where}: '{key}': invalid entry {entry!r}: expected {expected}")


def _check_backends(where: str, backends: tuple[str, ...]) -> None:
    known = ", ".join(f"'{backend}'" for backend in BACKENDS)
    if not backends:
        raise ConfigError(
            f"{where}: 'backends' must name at least one of {known} "
            "(to turn ESP006 off, add it to 'ignore')"
        )
    for backend in backends:
        if backend not in BACKENDS:
            raise ConfigError(
                f"{where}: 'backends': unknown backend {backend!r}: expected one of {known}"
            )


def _is_name_part(entry: str) -> bool:
    """Whether ``entry`` could occur inside an identifier (letters, digits, underscores)."""
    return bool(entry) and f"_{entry}".isidentifier()


def _check_codes(where: str, codes: Iterable[str]) -> None:
    known = _known_codes()
    for code in codes:
        if not code or not any(known_code.startswith(code) for known_code in known):
            raise ConfigError(f"{where}: unknown code '{code}'{_known_codes_hint(known)}")


def _known_codes() -> tuple[str, ...]:
    from esper_lint.rules import known_codes

    return known_codes()


def _known_codes_hint(known: tuple[str, ...]) -> str:
    return f" (known codes: {', '.join(known)})" if known else ""


def _did_you_mean(key: str) -> str:
    import difflib

    close = difflib.get_close_matches(key, VALID_KEYS, n=1)
    if not close:
        close = difflib.get_close_matches(key.replace("_", "-"), VALID_KEYS, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _describe(value: object) -> str:
    if isinstance(value, list):
        kinds = sorted({_type_name(item) for item in value if not isinstance(item, str)})
        return f"a list containing {', '.join(kinds)}"
    return _type_name(value)


def _type_name(value: object) -> str:
    names = {
        str: "a string",
        bool: "a boolean",
        int: "an integer",
        float: "a float",
        dict: "a table",
        list: "a list",
    }
    return names.get(type(value), type(value).__name__)


def _matches_any(code: str, prefixes: Iterable[str]) -> bool:
    return any(code.startswith(prefix) for prefix in prefixes)


def _relative_to_root(path: str, root: Path) -> str:
    absolute = Path(os.path.abspath(path))
    try:
        return absolute.relative_to(root.resolve()).as_posix()
    except ValueError:
        return PurePosixPath(Path(path).as_posix()).as_posix()


def _glob_matches(pattern: str, relative: str) -> bool:
    """ruff-style matching: a pattern without ``/`` may also match the file name alone; a
    pattern naming a directory matches everything below it."""
    regex = _glob_regex(pattern.strip().removeprefix("./").strip("/"))  # "/x" is anchored
    parts = relative.split("/")
    candidates = ["/".join(parts[: index + 1]) for index in range(len(parts))]
    if "/" not in pattern.strip("/"):
        candidates.extend(parts)
    return any(regex.fullmatch(candidate) for candidate in candidates)


@functools.lru_cache(maxsize=256)
def _glob_regex(pattern: str) -> re.Pattern[str]:
    return re.compile(translate_glob(pattern))

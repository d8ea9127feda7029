"""Effective configuration, found per file the way ruff finds it, plus CLI overrides.

Where a file's configuration comes from:

- the closest configuration file in the file's directory or one of its parents: in each
  directory ``.esper-lint.toml``, then ``esper-lint.toml`` (both hold the keys at their top
  level), then ``pyproject.toml`` if it has a ``[tool.esper-lint]`` table (a ``pyproject.toml``
  without one is passed over, as ruff passes over one without ``[tool.ruff]``);
- ``extend = "../pyproject.toml"`` in that file inherits another one (relative to the file that
  says it), whose keys the inheriting file overrides;
- ``--config FILE`` overrides all of that: every file uses FILE (a ``pyproject.toml`` is read
  for its table, any other name is a dedicated file);
- a file under no configuration uses the one found from the current directory, else the
  defaults, rooted at the nearest ``pyproject.toml`` (else the current directory).

A configuration's root (``Config.root``) is its file's directory: ``exclude``,
``extend-exclude`` and ``per-file-ignores`` globs are relative to it. Globs inherited through
``extend`` stay relative to the directory of the file that wrote them.

Code selection: a code is reported when a ``select``/``extend-select`` prefix matches it (ESP9xx,
the codes for files that could not be read, parsed or analysed, always count as selected; ESP100
counts only when a prefix longer than ``ESP`` names it), no ``ignore`` prefix matches it, and no
``per-file-ignores`` entry for the file matches it.
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

from esper_lint.analysis.backend_names import BACKENDS
from esper_lint.globs import translate_glob

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised only on 3.10
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

TOOL_TABLE = "esper-lint"
# Looked for in this order in each directory, as ruff looks for .ruff.toml, ruff.toml, pyproject.
CONFIG_FILE_NAMES = (".esper-lint.toml", "esper-lint.toml", "pyproject.toml")
ALWAYS_SELECTED_PREFIX = "ESP9"
# Off unless a selection names them more precisely than "ESP" (ruff's RUF100 is opt-in too).
OPT_IN_CODES = frozenset({"ESP100"})
DEFAULT_SELECT_PREFIX = "ESP"
LIST_KEYS = (
    "select",
    "extend-select",
    "ignore",
    "extend-symmetric-calls",
    "extend-rank-sources",
    "extend-data-sources",
    "extend-implicit-collectives",
    "extend-sanitizers",
    "backends",
    "exclude",
    "extend-exclude",
    "src",
)
CODE_LIST_KEYS = ("select", "extend-select", "ignore")
# Matched against the final name of a call, attribute or name: each entry must be one.
NAME_LIST_KEYS = (
    "extend-symmetric-calls",
    "extend-rank-sources",
    "extend-implicit-collectives",
    "extend-sanitizers",
)
# Matched as a substring of a name: an empty entry would match every loop.
NAME_PART_LIST_KEYS = ("extend-data-sources",)
BOOL_KEYS = ("respect-gitignore", "force-exclude")
VALID_KEYS = (*LIST_KEYS, "per-file-ignores", *BOOL_KEYS, "extend")
PATTERN_KEYS = ("exclude", "extend-exclude")
MAX_EXTEND_DEPTH = 16


class ConfigError(Exception):
    """A configuration problem the user must fix; the CLI prints it and exits 2."""


PerFileIgnores = tuple[tuple[str, tuple[str, ...]], ...]


@dataclass(frozen=True)
class Config:
    """What the analysis and the engine need to know.

    The ``extend_*`` name fields, ``backends`` and ``src`` change what the analysis finds, so they
    are part of the cache key. ``select``/``ignore``/``per_file_ignores`` only filter findings
    after the fact. ``source`` is the configuration file (None for the defaults), ``extends`` the
    files it inherits, nearest first.
    """

    select: tuple[str, ...] = (DEFAULT_SELECT_PREFIX,)
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
    per_file_ignores: PerFileIgnores = ()
    root: Path = field(default_factory=Path.cwd)
    extend_select: tuple[str, ...] = ()
    extend_exclude: tuple[str, ...] = ()
    respect_gitignore: bool = True
    force_exclude: bool = False
    # ruff's `src`: the directories first-party modules are found in, as absolute paths
    # (relative entries are relative to the configuration's directory); empty: the root
    src: tuple[str, ...] = ()
    # where it came from (for --show-settings); not part of what the settings are
    source: Path | None = field(default=None, compare=False)
    extends: tuple[Path, ...] = field(default=(), compare=False)

    @property
    def all_excludes(self) -> tuple[str, ...]:
        return self.exclude + self.extend_exclude

    @property
    def source_roots(self) -> tuple[Path, ...]:
        """Where first-party modules live (``src``), the root when it is not set."""
        return tuple(Path(entry) for entry in self.src) or (Path(self.root),)

    def selected(self, code: str) -> bool:
        if code.startswith(ALWAYS_SELECTED_PREFIX):
            return True
        prefixes = self.select + self.extend_select
        if code in OPT_IN_CODES:
            prefixes = tuple(p for p in prefixes if len(p) > len(DEFAULT_SELECT_PREFIX))
        return _matches_any(code, prefixes)

    def enabled(self, code: str, path: str) -> bool:
        """Whether a diagnostic ``code`` found in ``path`` is reported."""
        if not self.selected(code) or _matches_any(code, self.ignore):
            return False
        if not self.per_file_ignores:
            return True
        relative = _relative_to_root(path, self.root)
        return not any(
            _matches_any(code, codes) and _glob_matches(pattern, relative)
            for pattern, codes in self.per_file_ignores
        )

    def with_overrides(
        self,
        select: tuple[str, ...] | None,
        ignore: tuple[str, ...] | None,
        overrides: Overrides | None = None,
    ) -> Config:
        """Apply the command line the way ruff layers its CLI over the config file.

        ``--select`` replaces the configured selection and drops the configured ignores and
        extensions (a new selection starts afresh); ``--ignore`` adds to whatever ignores
        remain; ``--extend-select`` adds to the selection. Validate the codes with
        :func:`parse_code_list` first.
        """
        new_select = self.select if select is None else select
        base_ignore = self.ignore if select is None else ()
        base_extend = self.extend_select if select is None else ()
        new_ignore = base_ignore + (ignore or ())
        config = replace(self, select=new_select, ignore=new_ignore, extend_select=base_extend)
        return overrides.apply(config) if overrides is not None else config


# Built once per run and never compared: no generated __eq__, __hash__ or __repr__ (each costs a
# compile at import).
@dataclass(frozen=True, eq=False, repr=False)
class Overrides:
    """The rest of the command line's settings. Globs given on the command line are relative
    to the current directory (``cwd``), as ruff's are."""

    cwd: Path
    extend_select: tuple[str, ...] = ()
    exclude: tuple[str, ...] | None = None
    extend_exclude: tuple[str, ...] = ()
    per_file_ignores: PerFileIgnores = ()
    respect_gitignore: bool | None = None
    force_exclude: bool | None = None

    def apply(self, config: Config) -> Config:
        root = config.root
        exclude = config.exclude
        if self.exclude is not None:
            exclude = rebase_patterns(self.exclude, self.cwd, root)
        return replace(
            config,
            extend_select=config.extend_select + self.extend_select,
            exclude=exclude,
            extend_exclude=config.extend_exclude
            + rebase_patterns(self.extend_exclude, self.cwd, root),
            per_file_ignores=config.per_file_ignores
            + _rebase_per_file(self.per_file_ignores, self.cwd, root),
            respect_gitignore=_first(self.respect_gitignore, config.respect_gitignore),
            force_exclude=_first(self.force_exclude, config.force_exclude),
        )


def _first(value: bool | None, default: bool) -> bool:
    return default if value is None else value


class ConfigResolver:
    """Each path's configuration: the closest configuration file, ``--config``, or the default.

    Directories are looked up once; ``transform`` (the command line's overrides) is applied to
    every configuration found, so that equal settings compare equal and share a cache.
    """

    def __init__(
        self,
        config_file: Path | None = None,
        cwd: Path | None = None,
        transform: Callable[[Config], Config] | None = None,
    ) -> None:
        self.cwd = (cwd or Path.cwd()).resolve()
        self.transform = transform or (lambda config: config)
        self.override = None if config_file is None else self.transform(load_file(config_file))
        self._by_file: dict[Path, Config] = {}
        self._by_dir: dict[Path, Config | None] = {}
        self._default: Config | None = None

    @property
    def default(self) -> Config:
        """The configuration of the current directory (what files under no config file use)."""
        if self.override is not None:
            return self.override
        if self._default is None:
            found = self._closest(self.cwd)
            if found is None:
                pyproject = find_pyproject(self.cwd)
                root = self.cwd if pyproject is None else pyproject.parent
                found = self.transform(Config(root=root))
            self._default = found
        return self._default

    def for_path(self, path: Path) -> Config:
        """The configuration that governs ``path`` (a file, or a directory's own entries)."""
        if self.override is not None:
            return self.override
        absolute = Path(os.path.abspath(path))
        directory = absolute if absolute.is_dir() else absolute.parent
        return self._closest(directory) or self.default

    def _closest(self, directory: Path) -> Config | None:
        if directory in self._by_dir:
            return self._by_dir[directory]
        config_file = config_file_in(directory)
        if config_file is not None:
            found: Config | None = self._load(config_file)
        elif directory.parent != directory:
            found = self._closest(directory.parent)
        else:
            found = None
        self._by_dir[directory] = found
        return found

    def _load(self, config_file: Path) -> Config:
        if config_file not in self._by_file:
            self._by_file[config_file] = self.transform(load_file(config_file))
        return self._by_file[config_file]


def load_config(config_file: Path | None = None, cwd: Path | None = None) -> Config:
    """The configuration for a run started in ``cwd`` (default: the current directory)."""
    return ConfigResolver(config_file, cwd).default


def config_file_in(directory: Path) -> Path | None:
    """The configuration file of ``directory`` itself, if it has one."""
    for name in CONFIG_FILE_NAMES:
        candidate = directory / name
        if not candidate.is_file():
            continue
        if name != "pyproject.toml" or _has_tool_table(candidate):
            return candidate
    return None


def _has_tool_table(pyproject: Path) -> bool:
    tool = _read_toml(pyproject).get("tool")
    return isinstance(tool, dict) and TOOL_TABLE in tool


def find_pyproject(start: Path) -> Path | None:
    """The nearest ``pyproject.toml`` in ``start`` or one of its parents."""
    for directory in (start, *start.parents):
        candidate = directory / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def rebase_patterns(patterns: Iterable[str], origin: Path, root: Path) -> tuple[str, ...]:
    """Globs written relative to ``origin``, made relative to ``root`` (see :func:`rebase`)."""
    rebased = (rebase(pattern, origin, root) for pattern in patterns)
    return tuple(pattern for pattern in rebased if pattern is not None)


def rebase(pattern: str, origin: Path, root: Path) -> str | None:
    """One gitignore-style glob written relative to ``origin``, relative to ``root`` instead.

    A glob without a slash matches a name at any depth and needs no change. An anchored one is
    prefixed with the way from ``root`` to ``origin``, or loses the way from ``origin`` to
    ``root``; None when it can match nothing under ``root``.
    """
    stripped = pattern.strip().replace("\\", "/").removeprefix("./")
    if "/" not in stripped.rstrip("/") or origin == root:
        return pattern
    body = stripped.lstrip("/")
    origin, root = origin.resolve(), root.resolve()
    if origin.is_relative_to(root):
        way = origin.relative_to(root).as_posix()
        return f"/{way}/{body}"
    if root.is_relative_to(origin):
        way = root.relative_to(origin).as_posix() + "/"
        if body.startswith(way):
            return "/" + body[len(way) :]
        if body.startswith("**/"):
            return body
    return None


def _rebase_per_file(entries: PerFileIgnores, origin: Path, root: Path) -> PerFileIgnores:
    rebased = ((rebase(pattern, origin, root), codes) for pattern, codes in entries)
    return tuple((pattern, codes) for pattern, codes in rebased if pattern is not None)


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
    if "src" in values:
        values["src"] = tuple(
            os.path.normpath(os.path.join(root, os.path.expanduser(entry)))
            for entry in values["src"]
        )
    for key in BOOL_KEYS:
        if key in table:
            if not isinstance(table[key], bool):
                raise ConfigError(
                    f"{where}: '{key}' must be true or false, got {_describe(table[key])}"
                )
            values[key.replace("-", "_")] = table[key]
    if "per-file-ignores" in table:
        values["per_file_ignores"] = _per_file_ignores(table["per-file-ignores"], where)
    return Config(root=root, **values)


def load_file(path: Path) -> Config:
    """One configuration file and the files it extends."""
    return _load_file(path, chain=())


def _load_file(path: Path, *, chain: tuple[Path, ...]) -> Config:
    resolved = path.resolve()
    if resolved in chain:
        cycle = " -> ".join(str(p) for p in (*chain, resolved))
        raise ConfigError(f"{path}: 'extend' makes a cycle: {cycle}")
    if len(chain) >= MAX_EXTEND_DEPTH:
        raise ConfigError(f"{path}: 'extend' chain is longer than {MAX_EXTEND_DEPTH} files")
    table, where = _table_of(path)
    root = resolved.parent
    own = {key: value for key, value in table.items() if key != "extend"}
    config = replace(config_from_table(own, root=root, where=where), source=resolved)
    if "extend" not in table:
        return config
    extend = table["extend"]
    if not isinstance(extend, str) or not extend.strip():
        raise ConfigError(f"{where}: 'extend' must be a path string, got {_describe(extend)}")
    base_path = Path(os.path.expanduser(extend))
    if not base_path.is_absolute():
        base_path = root / base_path
    if not base_path.is_file():
        raise ConfigError(f"{where}: 'extend': no such file: {base_path}")
    base = _load_file(base_path, chain=(*chain, resolved))
    return _merge(base, config, own)


def _merge(base: Config, child: Config, child_keys: Mapping[str, Any]) -> Config:
    """``child`` over ``base``: the child's keys win, the base's globs keep their origin."""
    inherited: dict[str, Any] = {}
    for key in VALID_KEYS:
        attribute = key.replace("-", "_")
        if key == "extend" or key in child_keys:
            continue
        value = getattr(base, attribute)
        if key in PATTERN_KEYS:
            value = rebase_patterns(value, base.root, child.root)
        elif key == "per-file-ignores":
            value = _rebase_per_file(value, base.root, child.root)
        inherited[attribute] = value
    assert child.source is not None and base.source is not None
    return replace(child, extends=(base.source, *base.extends), **inherited)


def _table_of(path: Path) -> tuple[Mapping[str, Any], str]:
    document = _read_toml(path)
    if path.name != "pyproject.toml":
        return document, str(path)
    tool = document.get("tool", {})
    table = tool.get(TOOL_TABLE, {}) if isinstance(tool, dict) else {}
    where = f"{path}: [tool.{TOOL_TABLE}]"
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table, got {_type_name(table)}")
    return table, where


# The last document parsed from each path, with its bytes: finding a configuration file reads
# its pyproject.toml for the tool table, and loading it reads it again. Read-only once parsed.
_parsed_toml: dict[str, tuple[bytes, dict[str, Any]]] = {}


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the configuration file: {error.strerror}") from None
    kept = _parsed_toml.get(str(path))
    if kept is not None and kept[0] == data:
        return kept[1]
    document = _parse_toml(path, data)
    _parsed_toml[str(path)] = (data, document)
    return document


def _parse_toml(path: Path, data: bytes) -> dict[str, Any]:
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

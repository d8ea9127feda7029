"""The project a file belongs to: its root, its import roots, and module names from paths.

No libcst here: the engine's prefilter uses it on runs that parse nothing.

- The root is the nearest ancestor of a linted path holding ``pyproject.toml``, ``setup.py``,
  ``setup.cfg`` or ``.git``; without one, the directory given on the command line.
- Import roots: ``[tool.esper-lint] src = [...]`` (relative to the configuration's root), then
  ``<root>/src`` when it exists (the src layout, as ruff and mypy recognise it), then the root.
  A file's module name is its path relative to the first import root that holds it
  (``src/pkg/utils/dist.py`` -> ``pkg.utils.dist``; ``pkg/__init__.py`` -> ``pkg``).
- ``imported_modules`` reads the import statements of a file's bytes with a regex, for the
  prefilter; the analysis itself reads them from the tree.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

ROOT_MARKERS = ("pyproject.toml", "setup.py", "setup.cfg", ".git")
SRC_DIR = "src"


def find_project_root(path: Path) -> Path | None:
    """The nearest ancestor of ``path`` (itself included) that holds a root marker."""
    start = path if path.is_dir() else path.parent
    found = nearest_root(str(start), {})
    return Path(found) if found is not None else None


def nearest_root(directory: str, known: dict[str, str | None]) -> str | None:
    """The nearest ancestor of ``directory`` (itself included) that holds a root marker.
    ``known`` keeps the answer for every directory on the way up, so that the directories of
    one tree look at their common ancestors once."""
    if directory in known:
        return known[directory]
    parent = os.path.dirname(directory)
    if any(os.path.exists(os.path.join(directory, marker)) for marker in ROOT_MARKERS):
        found: str | None = directory
    elif parent == directory:
        found = None
    else:
        found = nearest_root(parent, known)
    known[directory] = found
    return found


def configured_src(root: Path) -> list[Path]:
    """The ``[tool.esper-lint] src`` entries of the root's own pyproject.toml, as directories.

    A project nested in the tree being linted keeps its own import roots, whichever
    configuration the run reads; an unreadable file gives none (the run's configuration has
    already reported its own errors).
    """
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

    try:
        with open(root / "pyproject.toml", "rb") as stream:
            table = tomllib.load(stream).get("tool", {}).get("esper-lint", {})
    except (OSError, ValueError):
        return []
    entries = table.get("src", []) if isinstance(table, dict) else []
    if not isinstance(entries, list):
        return []
    return [root / entry for entry in entries if isinstance(entry, str)]


def resolve_relative(module: str, is_package: bool, level: int, tail: str) -> str | None:
    """The absolute name of ``from <level dots><tail> import ...`` written in ``module``."""
    parts = module.split(".") if module else []
    if not is_package:
        parts = parts[:-1]
    if level - 1 > len(parts):
        return None
    if level > 1:
        parts = parts[: len(parts) - (level - 1)]
    if tail:
        parts.append(tail)
    return ".".join(parts) if parts else None


# What precedes the first dot of every relative import (``from .x``, ``from\\\n.x``).
_RELATIVE_IMPORT_MARKERS = (b" .", b"\t.", b"\x0c.", b"\n.", b"\r.")
# A bound on the substring tests per file: past it, the file's imports are read instead.
MAX_TOP_LEVEL_TESTS = 64


def _importable_entries(directory: Path) -> Iterator[str]:
    """The names a module or package directly in ``directory`` is imported by."""
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return
    for entry in entries:
        name = entry.name
        if name.endswith(".py") and name[:-3].isidentifier() and name.isascii():
            yield name[:-3]
        elif name.isidentifier() and name.isascii():
            try:
                if entry.is_dir():
                    yield name  # a package, or a namespace package
            except OSError:
                continue


class ProjectIndex:
    """Module names and files of one project root; sources are read once and kept."""

    def __init__(self, root: Path, extra_src: Sequence[Path] = ()) -> None:
        self.root = root.resolve()
        roots: list[Path] = [p.resolve() for p in extra_src]
        src = self.root / SRC_DIR
        if src.is_dir():
            roots.append(src)
        roots.append(self.root)
        self.import_roots = tuple(dict.fromkeys(roots))
        self._files: dict[str, Path | None] = {}
        self._sources: dict[Path, bytes | None] = {}
        self._top_level: tuple[bytes, ...] | None = None
        self._top_level_set: frozenset[bytes] | None = None

    def may_import_project(self, source: bytes) -> bool:
        """False only when ``source`` cannot import a module of this project: it names none of
        the project's top-level modules and has no relative import (whose first dot follows
        whitespace, or starts a line after a backslash continuation). A few substring tests,
        instead of reading every import."""
        if any(marker in source for marker in _RELATIVE_IMPORT_MARKERS):
            return True
        tops = self._top_level_names()
        return len(tops) > MAX_TOP_LEVEL_TESTS or any(top in source for top in tops)

    def has_top_level(self, name: str) -> bool:
        """Whether ``name`` is a module or package directly under one of the import roots."""
        if self._top_level_set is None:
            self._top_level_set = frozenset(self._top_level_names())
        return name.encode("ascii", errors="replace") in self._top_level_set

    def _top_level_names(self) -> tuple[bytes, ...]:
        if self._top_level is None:
            names: set[str] = set()
            for import_root in self.import_roots:
                names.update(_importable_entries(import_root))
            self._top_level = tuple(sorted(name.encode("ascii") for name in names))
        return self._top_level

    def module_name(self, path: Path) -> str | None:
        absolute = path.resolve()
        for import_root in self.import_roots:
            try:
                relative = absolute.relative_to(import_root)
            except ValueError:
                continue
            parts = list(relative.with_suffix("").parts)
            if parts and parts[-1] == "__init__":
                parts.pop()
            if parts and all(part.isidentifier() for part in parts):
                return ".".join(parts)
            return None
        return None

    def module_file(self, name: str) -> Path | None:
        """The file of module ``name`` in the project (``a/b.py`` or ``a/b/__init__.py``)."""
        if name in self._files:
            return self._files[name]
        found: Path | None = None
        relative = Path(*name.split("."))
        for import_root in self.import_roots:
            for candidate in (
                import_root / f"{relative}.py",
                import_root / relative / "__init__.py",
            ):
                if candidate.is_file():
                    found = candidate
                    break
            if found is not None:
                break
        self._files[name] = found
        return found

    def source(self, path: Path) -> bytes | None:
        if path not in self._sources:
            try:
                self._sources[path] = path.read_bytes()
            except OSError:
                self._sources[path] = None
        return self._sources[path]

    def display(self, path: Path) -> str:
        """How messages name a file: relative to the root, with forward slashes."""
        try:
            return path.resolve().relative_to(self.root).as_posix()
        except ValueError:
            return path.as_posix()


_IMPORT = re.compile(
    rb"^[ \t]*(?:from[ \t]+(?P<dots>\.*)[ \t]*(?P<module>[\w.]*)[ \t]+import[ \t]+"
    rb"(?P<names>\([^)]*\)|[^\n#;]*)|import[ \t]+(?P<plain>[^\n#;]*))",
    re.MULTILINE,
)


def _names(text: bytes) -> Iterable[str]:
    for part in text.decode("ascii", errors="replace").strip("()\\ \t\r\n").split(","):
        name = part.split(" as ")[0].strip(" \t\r\n()\\")
        if name and name != "*":
            yield name


def imported_modules(source: bytes, module: str, is_package: bool) -> list[str]:
    """Absolute names an import of ``source`` may refer to (``from a import b``: ``a``, ``a.b``)."""
    found: list[str] = []
    for match in _IMPORT.finditer(source):
        plain = match.group("plain")
        if plain is not None:
            found.extend(_names(plain))
            continue
        tail = match.group("module").decode("ascii", errors="replace")
        level = len(match.group("dots"))
        base = resolve_relative(module, is_package, level, tail) if level else tail
        if not base:
            continue
        found.append(base)
        found.extend(f"{base}.{name}" for name in _names(match.group("names")))
    return found

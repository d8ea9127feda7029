"""Which files to lint: walk the given paths, prune excluded, git-ignored and tool directories.

Ruff's semantics: ``exclude``/``extend-exclude`` and ``.gitignore`` prune what the traversal
discovers; a path given explicitly is always linted (so ``esper-lint tests/fixtures`` works even
though the project excludes it), unless ``force-exclude`` is on (pre-commit passes every staged
file explicitly). Each directory's entries are judged by the configuration that governs that
directory (its closest configuration file), relative to that configuration's root.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from esper_lint.config import Config
from esper_lint.gitignore import GitIgnore
from esper_lint.globs import translate_glob

PYTHON_SUFFIXES = (".py", ".pyi")

# The union of the list and ruff's defaults: directories that never hold project code.
SKIPPED_DIR_NAMES = frozenset(
    {
        ".bzr",
        ".direnv",
        ".eggs",
        ".esper_lint_cache",
        ".git",
        ".hg",
        ".mypy_cache",
        ".nox",
        ".pytest_cache",
        ".ruff_cache",
        ".svn",
        ".tox",
        ".venv",
        "__pycache__",
        "__pypackages__",
        "build",
        "dist",
        "env",
        "node_modules",
        "site-packages",
        "venv",
    }
)


@dataclass(frozen=True)
class SourceFile:
    """A file to lint. ``stat`` is the result of following symlinks (None if stat failed);
    ``config`` the configuration that governs it (None: the run's own)."""

    path: Path
    stat: os.stat_result | None
    config: Config | None = None


# A directory's governing configuration (by absolute path); None: one configuration for all.
ConfigFor = Callable[[Path], Config]


@dataclass
class Discovery:
    files: list[SourceFile] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # Explicit paths that could not be stat-ed: (path, OS error message), reported as ESP902.
    missing: list[tuple[Path, str]] = field(default_factory=list)


@dataclass(frozen=True)
class ExcludeMatcher:
    """Matches gitignore-style patterns against root-relative paths and basenames.

    A pattern with a slash (other than a trailing one) is anchored at the project root; one
    without a slash matches a basename at any depth. A trailing slash restricts it to directories.
    """

    anchored: re.Pattern[str] | None
    anchored_dirs: re.Pattern[str] | None
    basename: re.Pattern[str] | None
    basename_dirs: re.Pattern[str] | None

    @staticmethod
    def from_patterns(patterns: Iterable[str]) -> ExcludeMatcher:
        groups: dict[tuple[bool, bool], list[str]] = {}
        for raw in patterns:
            pattern = raw.strip().replace("\\", "/")
            if not pattern:
                continue
            dirs_only = pattern.endswith("/")
            pattern = pattern.rstrip("/")
            if pattern.startswith("./"):
                pattern = pattern[2:]
            anchored = "/" in pattern
            pattern = pattern.lstrip("/")
            if pattern:
                groups.setdefault((anchored, dirs_only), []).append(translate_glob(pattern))

        def compile_group(key: tuple[bool, bool]) -> re.Pattern[str] | None:
            regexes = groups.get(key)
            return re.compile("(?:" + "|".join(regexes) + r")\Z") if regexes else None

        return ExcludeMatcher(
            anchored=compile_group((True, False)),
            anchored_dirs=compile_group((True, True)),
            basename=compile_group((False, False)),
            basename_dirs=compile_group((False, True)),
        )

    def excluded(self, relative: str | None, name: str, is_dir: bool) -> bool:
        if self.basename is not None and self.basename.match(name):
            return True
        if is_dir and self.basename_dirs is not None and self.basename_dirs.match(name):
            return True
        if relative is None:
            return False
        if self.anchored is not None and self.anchored.match(relative):
            return True
        return bool(
            is_dir and self.anchored_dirs is not None and self.anchored_dirs.match(relative)
        )


@lru_cache(maxsize=64)
def _matcher(patterns: tuple[str, ...]) -> ExcludeMatcher:
    return ExcludeMatcher.from_patterns(patterns)


def _relative_to_root(path: str, root: str) -> str | None:
    """``path`` relative to the project root with forward slashes, or None when outside it."""
    absolute = path if os.path.isabs(path) else os.path.abspath(path)
    if absolute == root:
        return ""
    prefix = root if root.endswith(os.sep) else root + os.sep
    if not absolute.startswith(prefix):
        return None
    relative = absolute[len(prefix) :]
    return relative.replace(os.sep, "/") if os.sep != "/" else relative


def _symlink_problem(path: str) -> str:
    """Why a symlink could not be followed: a loop or a dangling target."""
    try:
        os.stat(path)
    except OSError as error:
        if error.errno == errno.ELOOP:
            return f"{path}: symlink loop, skipped"
        return f"{path}: broken symlink, skipped"
    return f"{path}: symlink could not be followed, skipped"


class _Walker:
    def __init__(self, base: Config, config_for: ConfigFor | None, force_exclude: bool) -> None:
        self.base = base
        self.config_for = config_for
        self.force_exclude = force_exclude
        self.gitignore = GitIgnore()
        self.judges: dict[int, tuple[Config, str, ExcludeMatcher]] = {}
        self.result = Discovery()
        self.seen_files: set[str] = set()
        self.visited_dirs: set[tuple[int, int]] = set()

    def config_of(self, directory: str) -> Config:
        if self.config_for is None:
            return self.base
        return self.config_for(Path(os.path.abspath(directory)))

    def add_file(self, path: str, file_stat: os.stat_result | None, config: Config) -> None:
        if path in self.seen_files:
            return
        self.seen_files.add(path)
        own = None if self.config_for is None else config
        self.result.files.append(SourceFile(Path(path), file_stat, own))

    def judge(self, config: Config) -> tuple[str, ExcludeMatcher]:
        """``config``'s absolute root and exclude matcher, computed once per configuration."""
        found = self.judges.get(id(config))
        if found is None or found[0] is not config:
            found = (config, os.path.abspath(config.root), _matcher(config.all_excludes))
            self.judges[id(config)] = found
        return found[1], found[2]

    def pruned(self, absolute: str, name: str, is_dir: bool, config: Config) -> bool:
        """Whether ``config`` excludes the entry (``absolute``: its normalised absolute path),
        or git ignores it."""
        root, matcher = self.judge(config)
        relative = _relative_to_root(absolute, root)
        if matcher.excluded(relative, name, is_dir):
            return True
        return config.respect_gitignore and self.gitignore.ignored(absolute, is_dir)

    def force_excluded(self, path: str, is_dir: bool) -> bool:
        """``--force-exclude``: an explicit path, or a directory above it, that is excluded."""
        absolute = os.path.abspath(path)
        config = self.config_of(os.path.dirname(absolute))
        current, current_is_dir = absolute, is_dir
        root = os.path.abspath(config.root)
        while True:
            name = os.path.basename(current)
            parent_config = self.config_of(os.path.dirname(current))
            if self.pruned(current, name, current_is_dir, parent_config):
                return True
            parent = os.path.dirname(current)
            if parent == current or not (parent + os.sep).startswith(root + os.sep):
                return False
            current, current_is_dir = parent, True

    def explicit(self, given: Path) -> None:
        path = os.path.normpath(given)
        try:
            path_stat = os.stat(path)
        except OSError as error:
            if os.path.islink(path):
                self.result.warnings.append(_symlink_problem(path))
            else:
                self.result.missing.append((Path(path), error.strerror or str(error)))
            return
        is_dir = stat.S_ISDIR(path_stat.st_mode)
        if self.force_exclude and self.force_excluded(path, is_dir):
            return
        if is_dir:
            self.walk(path, path_stat, ancestors=())
        elif stat.S_ISREG(path_stat.st_mode):
            self.add_file(path, path_stat, self.config_of(os.path.dirname(os.path.abspath(path))))
        else:
            self.result.warnings.append(f"{path}: not a regular file, skipped")

    def walk(
        self, directory: str, dir_stat: os.stat_result, ancestors: tuple[tuple[int, int], ...]
    ) -> None:
        identity = (dir_stat.st_dev, dir_stat.st_ino)
        if identity in ancestors:
            self.result.warnings.append(f"{directory}: symlink loop, skipped")
            return
        if identity in self.visited_dirs:
            return  # reached again through a symlink: already linted under its other name
        self.visited_dirs.add(identity)
        try:
            with os.scandir(directory) as scan:
                entries = sorted(scan, key=lambda entry: entry.name)
        except OSError as error:
            self.result.warnings.append(
                f"{directory}: cannot list directory ({error.strerror}), skipped"
            )
            return
        inner = (*ancestors, identity)
        config = self.config_of(directory)
        absolute_dir = os.path.abspath(directory)
        for entry in entries:
            self.visit(entry, inner, config, absolute_dir)

    def visit(
        self,
        entry: os.DirEntry[str],
        ancestors: tuple[tuple[int, int], ...],
        config: Config,
        absolute_dir: str,
    ) -> None:
        name = entry.name
        path = entry.path[2:] if entry.path.startswith("./") else entry.path
        try:
            is_dir = entry.is_dir()
            is_file = not is_dir and entry.is_file()
        except OSError:
            is_dir = is_file = False
        if is_dir and name in SKIPPED_DIR_NAMES:
            return
        is_python = name.endswith(PYTHON_SUFFIXES)
        if not (is_dir or is_file):
            if entry.is_symlink():
                self.result.warnings.append(_symlink_problem(path))
            elif is_python:
                self.result.warnings.append(f"{path}: not a regular file, skipped")
            return
        if is_file and not is_python:
            return
        if self.pruned(os.path.join(absolute_dir, name), name, is_dir, config):
            return
        try:
            entry_stat = entry.stat()
        except OSError:
            self.result.warnings.append(_symlink_problem(path))
            return
        if is_dir:
            if os.path.exists(os.path.join(path, "pyvenv.cfg")):
                return  # a virtualenv, whatever it is called
            self.walk(path, entry_stat, ancestors)
        else:
            self.add_file(path, entry_stat, config)


def discover(
    paths: Sequence[Path],
    exclude: tuple[str, ...],
    root: Path,
    *,
    config_for: ConfigFor | None = None,
    force_exclude: bool = False,
    respect_gitignore: bool = True,
) -> Discovery:
    """Files to lint under ``paths`` (default ``.``), in a deterministic order.

    Without ``config_for``, one configuration (``exclude`` relative to ``root``) judges every
    directory; with it, each directory's own.
    """
    base = Config(exclude=exclude, root=root, respect_gitignore=respect_gitignore)
    walker = _Walker(base, config_for, force_exclude)
    for given in paths or (Path("."),):
        walker.explicit(given)
    return walker.result


def is_excluded(path: Path, config_for: ConfigFor) -> bool:
    """Whether ``path``, or a directory above it under its configuration's root, is excluded
    or git-ignored (what ``--force-exclude`` asks of an explicit path). ``path`` need not exist:
    standard input's ``--stdin-filename`` is judged by its name."""
    walker = _Walker(Config(), config_for, force_exclude=True)
    return walker.force_excluded(os.path.normpath(path), is_dir=False)

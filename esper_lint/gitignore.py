"""Which paths git ignores: ``.gitignore`` files, ``.git/info/exclude`` and the global excludes.

The patterns are matched by ``pathspec`` (its ``GitIgnoreSpec`` follows git's own rules, negation
and directory-only patterns included) rather than by ``git check-ignore``: discovery asks about
every directory entry, and one git process per question, or one long-lived ``--stdin`` process
per run, costs more than matching in-process; it also works where git is not installed. Only
``core.excludesFile`` needs git (``git config``), asked once per run, and the XDG default
(``~/.config/git/ignore``) is used when git is missing.

As in git, these files apply only inside a repository (a directory with ``.git``), each
``.gitignore`` to its own directory and below, a deeper one overriding a shallower one; a
nested repository starts afresh.
"""

from __future__ import annotations

import os
from functools import cache
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    import pathspec

GIT_CONFIG_TIMEOUT_S = 5


class _Layer(NamedTuple):  # not a dataclass: its generated methods cost ~1 ms at each import
    directory: str
    spec: pathspec.GitIgnoreSpec


def _read_spec(path: str) -> pathspec.GitIgnoreSpec | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as stream:
            lines = stream.read().splitlines()
    except OSError:
        return None
    import pathspec  # only where a .gitignore exists: importing it costs about 11 ms a run

    try:
        spec = pathspec.GitIgnoreSpec.from_lines(lines)
    except (ValueError, TypeError):  # a pattern pathspec cannot compile: git would skip it too
        return None
    return spec if len(spec) else None


@cache
def _global_excludes_file() -> str | None:
    import subprocess  # only inside a repository: importing it costs a few ms a run

    try:
        completed = subprocess.run(
            ["git", "config", "--get", "core.excludesFile"],
            capture_output=True,
            text=True,
            timeout=GIT_CONFIG_TIMEOUT_S,
            check=False,
        )
        configured = completed.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        configured = ""
    if configured:
        return os.path.expanduser(configured)
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
    return os.path.join(base, "git", "ignore")


class GitIgnore:
    """Answers "does git ignore this path?" for absolute paths; directories are cached."""

    def __init__(self) -> None:
        self._layers: dict[str, tuple[_Layer, ...]] = {}

    def ignored(self, path: str, is_dir: bool) -> bool:
        """``path`` must be absolute and normalised (the walker builds it so, cheaply)."""
        directory, _ = os.path.split(path)
        for layer in reversed(self._layers_of(directory)):
            relative = path[len(layer.directory) :].lstrip(os.sep)
            if os.sep != "/":
                relative = relative.replace(os.sep, "/")
            result = layer.spec.check_file(relative + "/" if is_dir else relative)
            if result.include is not None:
                return bool(result.include)
        return False

    def ignored_with_parents(self, path: str, is_dir: bool) -> bool:
        """Whether ``path`` or a directory above it (inside its repository) is ignored."""
        absolute = os.path.abspath(path)
        if self.ignored(absolute, is_dir):
            return True
        parent = os.path.dirname(absolute)
        while _inside_repository(parent) and not _is_repository(parent):
            if self.ignored(parent, True):
                return True
            parent = os.path.dirname(parent)
        return False

    def _layers_of(self, directory: str) -> tuple[_Layer, ...]:
        if directory not in self._layers:
            self._layers[directory] = self._compute(directory)
        return self._layers[directory]

    def _compute(self, directory: str) -> tuple[_Layer, ...]:
        if _is_repository(directory):
            layers: tuple[_Layer, ...] = ()
            excludes = _global_excludes_file()
            for source in (excludes, os.path.join(directory, ".git", "info", "exclude")):
                spec = _read_spec(source) if source else None
                if spec is not None:
                    layers += (_Layer(directory, spec),)
        else:
            parent = os.path.dirname(directory)
            if parent == directory:
                return ()
            layers = self._layers_of(parent)
            if not layers and not _inside_repository(parent):
                return ()
        spec = _read_spec(os.path.join(directory, ".gitignore"))
        return layers + ((_Layer(directory, spec),) if spec is not None else ())


def _is_repository(directory: str) -> bool:
    return os.path.exists(os.path.join(directory, ".git"))


@cache
def _inside_repository(directory: str) -> bool:
    parent = os.path.dirname(directory)
    return _is_repository(directory) or (parent != directory and _inside_repository(parent))

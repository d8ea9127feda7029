"""Per-file results cache: one JSON document per (tool build, analysis configuration, root).

Layout::

    .esper_lint_cache/
        .gitignore            "*", like ruff's
        CACHEDIR.TAG
        v<version>/<key>.json

``<key>`` hashes the cache format, the tool version, a fingerprint of the installed package's
sources, the project root, the ``extend_*`` settings and ``backends`` (the only configuration the
analysis reads). The document maps each file (relative to the root) to its stat signature, the
blake2b digest of its bytes, whether it was parsed, its raw diagnostics (before select/ignore, so
changing those does not invalidate anything) and the project modules its results depend on:
those whose summaries its analysis read, each with the digest of its bytes, and those whose offers
decided it is no candidate, each with the digest of what it offers (``engine._dependencies``).
Those dependencies are a transitive closure: in a large connected project thousands of modules
per file, nearly the same set for every file. So the document holds each distinct (module,
digest) pair once and each distinct set of pairs once (``_DependencyTable``); an entry names its
set by index. A result is reused only while every one of those digests is unchanged: the document
also keeps, per module, its stat signature and digest, so a warm run stats the modules and reads
again only a changed one. A warm run loads one small file and stats each source file; it neither
reads nor hashes a file whose signature is unchanged. A file whose signature changed is hashed,
and any entry with the same digest answers for it.

Nothing read back is trusted: a document or entry that does not have exactly the expected shape
is ignored (and rebuilt on the next write). Writes go to a temporary file in the same directory
followed by ``os.replace``, so a concurrent reader sees the old document or the new one, never a
mix; concurrent writers lose each other's new entries at worst, never correctness.
"""

from __future__ import annotations

import json
import os
import re
import stat
import time
from dataclasses import dataclass
from hashlib import blake2b
from pathlib import Path
from typing import TypeGuard

import esper_lint
from esper_lint.config import Config

CACHE_DIR_NAME = ".esper_lint_cache"
CACHE_DIR_ENV = "ESPER_LINT_CACHE_DIR"
MAGIC = "esper-lint-cache"
FORMAT = 3
# A file modified this recently may change again within the filesystem's timestamp granularity
# without its signature changing ("racy git"): record no signature, so the next run hashes it.
RACY_WINDOW_NS = 2_000_000_000
# Documents of other configurations or builds that nobody wrote for this long are deleted.
STALE_DOCUMENT_SECONDS = 30 * 24 * 3600
# Far above any real document (about 200 bytes per file, and each distinct set of dependencies
# once: 15.7 MB for transformers' 2,951 files); anything larger is not ours, and is never written.
MAX_DOCUMENT_BYTES = 256 * 1024 * 1024
READ_CHUNK_BYTES = 1024 * 1024

# (line, column, end_line, end_column, code, message): a diagnostic without its path.
RawDiagnostic = tuple[int, int, int, int, str, str]
# (mtime_ns, ctime_ns, size, inode); None when the file was too fresh to trust.
Signature = tuple[int, int, int, int]
# (path of a module a result depends on, the digest of that module's bytes or offers)
Dependency = tuple[str, str]
Dependencies = tuple[Dependency, ...]


@dataclass(frozen=True)
class FileResult:
    """What linting one file's bytes produced. ``parsed`` is False for a non-candidate file."""

    digest: str
    parsed: bool
    diagnostics: tuple[RawDiagnostic, ...]
    # (module path, digest) of each project module the result depends on
    dependencies: Dependencies = ()


# The digest of a module that could not be read: no blake2b digest of any bytes.
MISSING = "0" * 32


def digest_of(source: bytes) -> str:
    return blake2b(source, digest_size=16).hexdigest()


def signature_of(file_stat: os.stat_result, now_ns: int) -> Signature | None:
    newest = max(file_stat.st_mtime_ns, file_stat.st_ctime_ns)
    if now_ns - newest < RACY_WINDOW_NS:
        return None
    return (file_stat.st_mtime_ns, file_stat.st_ctime_ns, file_stat.st_size, file_stat.st_ino)


def resolve_cache_dir(config: Config, cache_dir: Path | None) -> Path:
    """An explicit directory, else ``ESPER_LINT_CACHE_DIR``, else ``<root>/.esper_lint_cache``."""
    if cache_dir is not None:
        return cache_dir
    from_env = os.environ.get(CACHE_DIR_ENV)
    if from_env:
        return Path(from_env)
    return Path(config.root) / CACHE_DIR_NAME


def _package_fingerprint() -> list[tuple[str, int, int]]:
    """The package's own sources: an edited analysis (editable installs) must not reuse results."""
    package_dir = os.path.dirname(os.path.abspath(esper_lint.__file__))
    fingerprint: list[tuple[str, int, int]] = []
    pending = [package_dir]
    while pending:
        directory = pending.pop()
        try:
            with os.scandir(directory) as scan:
                for entry in scan:
                    if entry.name.endswith(".py") and entry.is_file():
                        entry_stat = entry.stat()
                        relative = entry.path[len(package_dir) + 1 :]  # relpath costs 5 us
                        fingerprint.append((relative, entry_stat.st_mtime_ns, entry_stat.st_size))
                    elif entry.is_dir() and entry.name != "__pycache__":
                        pending.append(entry.path)
        except OSError:
            continue
    return sorted(fingerprint)


def cache_key(config: Config) -> str:
    material = {
        "magic": MAGIC,
        "format": FORMAT,
        "version": esper_lint.__version__,
        "package": _package_fingerprint(),
        "root": os.path.abspath(config.root),
        "src": list(config.src),
        "extend_symmetric_calls": list(config.extend_symmetric_calls),
        "extend_rank_sources": list(config.extend_rank_sources),
        "extend_data_sources": list(config.extend_data_sources),
        "extend_implicit_collectives": list(config.extend_implicit_collectives),
        "extend_sanitizers": list(config.extend_sanitizers),
        "backends": sorted(config.backends),
    }
    encoded = json.dumps(material, sort_keys=True).encode("utf-8")
    return blake2b(encoded, digest_size=12).hexdigest()


def _is_int(value: object) -> TypeGuard[int]:
    return type(value) is int


def _parse_diagnostic(value: object) -> RawDiagnostic | None:
    if not (isinstance(value, list) and len(value) == 6):
        return None
    line, column, end_line, end_column, code, message = value
    if not (_is_int(line) and _is_int(column) and _is_int(end_line) and _is_int(end_column)):
        return None
    if not (isinstance(code, str) and isinstance(message, str)):
        return None
    return (line, column, end_line, end_column, code, message)


def _parse_entry(
    value: object, table: _DependencyTable
) -> tuple[Signature | None, FileResult] | None:
    """A stored entry, or None if it is not exactly the shape this version writes."""
    if not (isinstance(value, list) and len(value) == 5):
        return None
    raw_signature, digest, parsed, raw_diagnostics, group = value
    valid, signature = _parse_signature(raw_signature)
    if not valid:
        return None
    dependencies = () if group is None else table.group(group)
    if dependencies is None:
        return None
    if not (isinstance(digest, str) and len(digest) == 32 and isinstance(parsed, bool)):
        return None
    if not isinstance(raw_diagnostics, list):
        return None
    diagnostics: list[RawDiagnostic] = []
    for raw in raw_diagnostics:
        diagnostic = _parse_diagnostic(raw)
        if diagnostic is None:
            return None
        diagnostics.append(diagnostic)
    return signature, FileResult(digest, parsed, tuple(diagnostics), dependencies)


def _parse_signature(value: object) -> tuple[bool, Signature | None]:
    if value is None:
        return True, None
    if not (isinstance(value, list) and len(value) == 4 and all(_is_int(p) for p in value)):
        return False, None
    return True, (value[0], value[1], value[2], value[3])


# A dependency on what a module offers its importers (``Project.offer_digest``), not on its
# summary: how a file decided without being parsed depends on the modules it calls into. The
# digest, and the key of the module's stored digest, start with it.
OFFERS_PREFIX = "offers:"
# The key of a module's digest in a run that summarises every module (the prefilter off).
UNGATED_PREFIX = "every:"
# The kinds of digest a dependency may carry before its 32 hex digits.
DIGEST_KINDS = ("", OFFERS_PREFIX)


def _module_path(summary_key: str) -> str:
    """The module file a stored digest's key names, without its kinds."""
    for prefix in (UNGATED_PREFIX, OFFERS_PREFIX):
        summary_key = summary_key.removeprefix(prefix)
    return summary_key


def _is_digest(value: object) -> bool:
    if not isinstance(value, str):
        return False
    return any(value.startswith(kind) and len(value) == len(kind) + 32 for kind in DIGEST_KINDS)


def _parse_dependency(value: object) -> Dependency | None:
    if not (isinstance(value, list) and len(value) == 2):
        return None
    path, digest = value
    if not (isinstance(path, str) and _is_digest(digest)):
        return None
    return (path, digest)


class _DependencyTable:
    """A document's dependencies, each distinct one once: ``pairs`` lists the (module path,
    digest) pairs, ``groups`` the sets of them that entries depend on, each as indices into
    ``pairs``. Read lazily and checked as read: a malformed pair or group makes only the
    entries that name it invalid. Every entry naming a group shares one tuple."""

    def __init__(self, pairs: object = None, groups: object = None) -> None:
        self.raw_pairs = pairs if isinstance(pairs, list) else []
        self.raw_groups = groups if isinstance(groups, list) else []
        self._pairs: dict[int, Dependency | None] = {}
        self._groups: dict[int, Dependencies | None] = {}

    def group(self, index: object) -> Dependencies | None:
        if not (_is_int(index) and 0 <= index < len(self.raw_groups)):
            return None
        if index not in self._groups:
            self._groups[index] = self._parse_group(self.raw_groups[index])
        return self._groups[index]

    def _parse_group(self, value: object) -> Dependencies | None:
        if not (isinstance(value, list) and value):
            return None
        found = []
        for index in value:
            pair = self._pair(index)
            if pair is None:
                return None
            found.append(pair)
        return tuple(found)

    def _pair(self, index: object) -> Dependency | None:
        if not (_is_int(index) and 0 <= index < len(self.raw_pairs)):
            return None
        if index not in self._pairs:
            self._pairs[index] = _parse_dependency(self.raw_pairs[index])
        return self._pairs[index]


class _TableBuilder:
    """The dependency table of a document being written: each distinct pair and group once."""

    def __init__(self) -> None:
        self.groups: dict[Dependencies, int] = {}

    def group_index(self, dependencies: Dependencies) -> int | None:
        """The index of the group, None for no dependencies."""
        if not dependencies:
            return None
        index = self.groups.get(dependencies)
        if index is None:
            index = self.groups[dependencies] = len(self.groups)
        return index

    def encode(self) -> tuple[list[list[str]], list[list[int]]]:
        pairs: list[list[str]] = []
        pair_index: dict[Dependency, int] = {}
        groups: list[list[int]] = []
        for dependencies in self.groups:
            indices = []
            for pair in dependencies:
                index = pair_index.get(pair)
                if index is None:
                    index = pair_index[pair] = len(pairs)
                    pairs.append(list(pair))
                indices.append(index)
            groups.append(indices)
        return pairs, groups


def _parse_summary(value: object) -> tuple[Signature, str] | None:
    """A module's (stat signature, digest), as ``Cache.store_summary`` stores it."""
    if not (isinstance(value, list) and len(value) == 2):
        return None
    valid, signature = _parse_signature(value[0])
    if not valid or signature is None or not _is_digest(value[1]):
        return None
    return signature, value[1]


def _encode_entry(
    signature: Signature | None, result: FileResult, table: _TableBuilder
) -> list[object]:
    return [
        list(signature) if signature is not None else None,
        result.digest,
        result.parsed,
        [list(diagnostic) for diagnostic in result.diagnostics],
        table.group_index(result.dependencies),
    ]


def _read_document(document_path: Path) -> bytes | None:
    """The bytes of a regular file of at most MAX_DOCUMENT_BYTES; None for anything else.

    Whatever sits at the path is untrusted: a FIFO must not block the open or the read, a device
    must not be read without end, and a symlink is not a document this tool wrote.
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    descriptor = os.open(document_path, flags)
    try:
        file_stat = os.fstat(descriptor)
        if not stat.S_ISREG(file_stat.st_mode) or file_stat.st_size > MAX_DOCUMENT_BYTES:
            return None
        chunks: list[bytes] = []
        remaining = MAX_DOCUMENT_BYTES + 1  # one byte more reveals a file that grew meanwhile
        while remaining > 0:
            chunk = os.read(descriptor, min(remaining, READ_CHUNK_BYTES))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
    finally:
        os.close(descriptor)
    return None if remaining <= 0 else b"".join(chunks)


@dataclass
class _Document:
    """The sections of a stored document, decoded from JSON once and parsed entry by entry."""

    files: dict[str, object]
    summaries: dict[str, object]
    table: _DependencyTable

    @staticmethod
    def empty() -> _Document:
        return _Document({}, {}, _DependencyTable())

    def entry(self, entry_key: str) -> tuple[Signature | None, FileResult] | None:
        return _parse_entry(self.files.get(entry_key), self.table)


def _load_document(document_path: Path, key: str) -> _Document:
    """The valid document at the path; empty for a missing, unreadable or foreign one."""
    try:
        data = _read_document(document_path)
        if data is None:
            return _Document.empty()
        document = json.loads(data)
    except (OSError, ValueError, RecursionError):
        # ValueError covers JSONDecodeError and UnicodeDecodeError: garbage, truncation.
        return _Document.empty()
    if not isinstance(document, dict):
        return _Document.empty()
    if document.get("magic") != MAGIC or document.get("format") != FORMAT:
        return _Document.empty()
    if document.get("key") != key:
        return _Document.empty()
    files, summaries = document.get("files"), document.get("summaries")
    return _Document(
        files if isinstance(files, dict) else {},
        summaries if isinstance(summaries, dict) else {},
        _DependencyTable(document.get("dependencies"), document.get("groups")),
    )


class Cache:
    """The results cache of one run. Not thread-safe; one instance per ``lint_paths`` call."""

    def __init__(self, directory: Path, config: Config) -> None:
        self.directory = directory
        self.root = os.path.abspath(config.root)
        self.key = cache_key(config)
        self.document_path = directory / f"v{esper_lint.__version__}" / f"{self.key}.json"
        self.document = _load_document(self.document_path, self.key)
        self.updates: dict[str, tuple[Signature | None, FileResult]] = {}
        self.summary_updates: dict[str, list[object]] = {}
        self.by_digest_index: dict[str, FileResult] | None = None

    def entry_key(self, path: Path) -> str:
        absolute = os.path.abspath(path)
        prefix = self.root if self.root.endswith(os.sep) else self.root + os.sep
        return absolute[len(prefix) :] if absolute.startswith(prefix) else absolute

    def by_signature(self, entry_key: str, signature: Signature | None) -> FileResult | None:
        """The stored result if the file's signature is unchanged (no read needed)."""
        if signature is None:
            return None
        parsed = self.document.entry(entry_key)
        if parsed is None or parsed[0] != signature:
            return None
        return parsed[1]

    def by_digest(self, digest: str, entry_key: str) -> FileResult | None:
        """The file's own stored result for these exact bytes, else any other file's that
        depends on no other module (another file's imports resolve from another place)."""
        own = self.document.entry(entry_key)
        if own is not None and own[1].digest == digest:
            return own[1]
        if self.by_digest_index is None:
            index: dict[str, FileResult] = {}
            for raw in self.document.files.values():
                parsed = _parse_entry(raw, self.document.table)
                if parsed is not None and not parsed[1].dependencies:
                    index[parsed[1].digest] = parsed[1]
            self.by_digest_index = index
        return self.by_digest_index.get(digest)

    def summary_digest(self, path: str, signature: Signature | None) -> str | None:
        """The digest stored for module ``path`` while its signature is unchanged."""
        stored = _parse_summary(self.document.summaries.get(path))
        if signature is None or stored is None or stored[0] != signature:
            return None
        return stored[1]

    def store_summary(self, path: str, signature: Signature | None, digest: str) -> None:
        if signature is None:
            return
        encoded: list[object] = [list(signature), digest]
        if self.document.summaries.get(path) != encoded:
            self.summary_updates[path] = encoded

    def store(self, entry_key: str, signature: Signature | None, result: FileResult) -> None:
        if self.document.entry(entry_key) != (signature, result):
            self.updates[entry_key] = (signature, result)

    def save(self) -> str | None:
        """Write the updated document atomically; a warning if the directory is not writable
        or the document would be too large to be read back."""
        if not self.updates and not self.summary_updates:
            return None
        try:
            return self._write()
        except OSError as error:
            reason = error.strerror or str(error)
            return f"cache directory {self.directory} is not writable ({reason}); ran without cache"

    def _write(self) -> str | None:
        self._prepare_directory()
        # Merge with what another process may have written since we loaded.
        is_new = not self.document_path.exists()
        stored = _load_document(self.document_path, self.key)
        table = _TableBuilder()
        entries: dict[str, list[object]] = {}
        for key in {**self.document.files, **stored.files, **self.updates}:
            entry = self.updates.get(key) or stored.entry(key) or self.document.entry(key)
            # Deleted and renamed files leave; otherwise every warm run would load them forever.
            if entry is not None and (
                key in self.updates or os.path.lexists(os.path.join(self.root, key))
            ):
                entries[key] = _encode_entry(entry[0], entry[1], table)
        summaries = {
            key: entry
            for key, entry in {
                **self.document.summaries,
                **stored.summaries,
                **self.summary_updates,
            }.items()
            if key in self.summary_updates or os.path.lexists(_module_path(key))
        }
        pairs, groups = table.encode()
        document = {
            "magic": MAGIC,
            "format": FORMAT,
            "key": self.key,
            "files": entries,
            "summaries": summaries,
            "dependencies": pairs,
            "groups": groups,
        }
        encoded = json.dumps(document, separators=(",", ":")).encode("utf-8")
        if len(encoded) > MAX_DOCUMENT_BYTES:
            megabytes = len(encoded) // (1024 * 1024)
            return (
                f"cache not written: its document would be {megabytes} MiB, over the "
                f"{MAX_DOCUMENT_BYTES // (1024 * 1024)} MiB that is read back"
            )
        import tempfile  # only when an entry changed: a warm run writes nothing

        descriptor, temporary = tempfile.mkstemp(
            dir=self.document_path.parent, prefix=".tmp-", suffix=".json"
        )
        try:
            with os.fdopen(descriptor, "wb") as stream:
                stream.write(encoded)
            os.replace(temporary, self.document_path)
        except BaseException:
            try:
                os.unlink(temporary)
            except OSError:
                pass
            raise
        if is_new:
            _remove_stale_documents(self.directory)
        return None

    def _prepare_directory(self) -> None:
        version_dir = self.document_path.parent
        if version_dir.is_dir():
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        gitignore = self.directory / ".gitignore"
        if not gitignore.exists():
            gitignore.write_text("# Automatically created by esper-lint.\n*\n", encoding="utf-8")
        tag = self.directory / "CACHEDIR.TAG"
        if not tag.exists():
            tag.write_text(
                "Signature: 8a477f597d28d172789f06886806bc55\n"
                "# This file is a cache directory tag created by esper-lint.\n",
                encoding="utf-8",
            )
        version_dir.mkdir(exist_ok=True)


def _remove_stale_documents(directory: Path) -> None:
    """Documents of past versions and configurations nobody has written for a month.

    Only names esper-lint writes are touched: ``ESPER_LINT_CACHE_DIR`` may point at a directory
    other programs use too.
    """
    cutoff = time.time() - STALE_DOCUMENT_SECONDS
    try:
        version_dirs = [
            entry
            for entry in os.scandir(directory)
            if entry.is_dir(follow_symlinks=False) and _VERSION_DIR.fullmatch(entry.name)
        ]
        for version_dir in version_dirs:
            for entry in os.scandir(version_dir.path):
                if _DOCUMENT.fullmatch(entry.name) and entry.stat().st_mtime < cutoff:
                    os.unlink(entry.path)
    except OSError:
        pass


_VERSION_DIR = re.compile(r"v\d+(?:\.\d+)*(?:[.+-][0-9A-Za-z.+-]*)?")
_DOCUMENT = re.compile(r"[0-9a-f]{16,64}\.json")

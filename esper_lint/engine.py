"""Lint a set of paths: discover, read, prefilter, consult the cache, parse candidates in parallel.

Kept cheap to import: libcst and the analysis are imported only when a file needs parsing, and
the process pool only when there are enough candidates to pay for it.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from esper_lint.cache import (
    Cache,
    FileResult,
    RawDiagnostic,
    Signature,
    digest_of,
    resolve_cache_dir,
    signature_of,
)
from esper_lint.config import Config
from esper_lint.diagnostics import Diagnostic
from esper_lint.discovery import ConfigFor, SourceFile, discover

if TYPE_CHECKING:
    from multiprocessing.context import BaseContext

READ_ERROR = "ESP902"
_OWN_NOQA = re.compile(rb"noqa\s*:[^\n]*ESP\d", re.IGNORECASE)
# Parse failures are reported only where the linter needs the tree (decisions.md), so a file the
# prefilter rules out never reports them, whether or not the prefilter actually ran.
CANDIDATE_ONLY_CODES = frozenset({"ESP900", "ESP901"})
# Below this many parse candidates a pool costs more (fork, pickling, a second libcst import on
# spawn platforms) than it saves; measured in docs/performance.md.
MIN_CANDIDATES_FOR_POOL = 8
# Chunks per worker: enough to balance uneven file sizes, few enough to keep pickling cheap.
CHUNKS_PER_WORKER = 4


@dataclass
class LintResult:
    diagnostics: list[Diagnostic]
    warnings: list[str] = field(default_factory=list)
    files_checked: int = 0


@dataclass
class _Pending:
    """A file whose bytes must be analysed (a cache miss)."""

    path: Path
    entry_key: str
    signature: Signature | None
    source: bytes
    digest: str
    candidate: bool


def _read_error(path: Path, reason: str) -> Diagnostic:
    return Diagnostic(str(path), 1, 1, 1, 1, READ_ERROR, f"file could not be read: {reason}")


def _raw(diagnostic: Diagnostic) -> RawDiagnostic:
    d = diagnostic
    return (d.line, d.column, d.end_line, d.end_column, d.code, d.message)


# The diagnostics of one file, and whether they may be cached (not after an internal error,
# which may be transient, such as a MemoryError).
Checked = tuple[tuple[RawDiagnostic, ...], bool]


def _check_one(source: bytes, path: str, config: Config) -> Checked:
    from esper_lint.checker import TOO_DEEP, check_source

    try:
        diagnostics = check_source(source, path, config)
    except Exception as error:  # check_source must not raise; never let one file stop the run
        message = f"file could not be analysed: internal error: {type(error).__name__}: {error}"
        return ((1, 1, 1, 1, "ESP901", message),), False
    # An ESP901 other than "too deep" is an internal error, maybe transient (MemoryError):
    # caching it would replay it on every warm run.
    cacheable = all(d.code != "ESP901" or d.message == TOO_DEEP for d in diagnostics)
    return tuple(_raw(diagnostic) for diagnostic in diagnostics), cacheable


_worker_config: Config | None = None


def _init_worker(config: Config) -> None:
    global _worker_config
    _worker_config = config


def _check_chunk(chunk: list[tuple[bytes, str]]) -> list[Checked]:
    assert _worker_config is not None
    return [_check_one(source, path, _worker_config) for source, path in chunk]


def _chunks(items: list[_Pending], count: int) -> list[list[_Pending]]:
    """``count`` chunks of similar total size: largest files first, each to the lightest chunk."""
    chunks: list[list[_Pending]] = [[] for _ in range(count)]
    loads = [0] * count
    for item in sorted(items, key=lambda pending: -len(pending.source)):
        lightest = loads.index(min(loads))
        chunks[lightest].append(item)
        loads[lightest] += len(item.source)
    return [chunk for chunk in chunks if chunk]


def _pool_context() -> BaseContext:
    import multiprocessing

    # fork shares the already imported modules; elsewhere (macOS, Windows) only spawn is safe.
    if sys.platform.startswith("linux"):
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def _check_in_pool(pending: list[_Pending], config: Config, jobs: int) -> list[Checked]:
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    # Import the analysis before forking so every worker inherits it instead of importing it.
    import esper_lint.checker  # noqa: F401

    chunks = _chunks(pending, min(len(pending), jobs * CHUNKS_PER_WORKER))
    results: dict[int, Checked] = {}
    try:
        with ProcessPoolExecutor(
            max_workers=jobs,
            mp_context=_pool_context(),
            initializer=_init_worker,
            initargs=(config,),
        ) as pool:
            payloads = [[(item.source, str(item.path)) for item in chunk] for chunk in chunks]
            for chunk, chunk_results in zip(chunks, pool.map(_check_chunk, payloads), strict=True):
                for item, result in zip(chunk, chunk_results, strict=True):
                    results[id(item)] = result
    except (BrokenProcessPool, OSError):
        pass  # a worker died or no pool could start: finish what is left in this process
    return [
        results[id(item)]
        if id(item) in results
        else _check_one(item.source, str(item.path), config)
        for item in pending
    ]


def _analyse(pending: list[_Pending], config: Config, jobs: int) -> list[Checked]:
    if jobs > 1 and len(pending) >= MIN_CANDIDATES_FOR_POOL:
        return _check_in_pool(pending, config, jobs)
    return [_check_one(item.source, str(item.path), config) for item in pending]


class _Run:
    def __init__(self, config: Config, cache: Cache | None, prefilter: bool) -> None:
        self.config = config
        self.cache = cache
        self.prefilter = prefilter
        self.now_ns = time.time_ns()
        self.is_candidate: Callable[[bytes], bool] | None = None
        self.raw_by_path: list[tuple[Path, tuple[RawDiagnostic, ...]]] = []
        self.pending: list[_Pending] = []
        self.read_errors: list[Diagnostic] = []

    def candidate(self, source: bytes) -> bool:
        if self.is_candidate is None:
            from esper_lint.prefilter import candidate_predicate

            self.is_candidate = candidate_predicate(self.config)
        # a file with a coded ``# noqa: ESP...`` is parsed too, for ESP100 (unused noqa)
        if self.is_candidate(source):
            return True
        # a substring test first: the case-insensitive regex scans slower than memory speed
        mentions = b"ESP" in source or b"esp" in source
        return mentions and _OWN_NOQA.search(source) is not None

    def cached(self, result: FileResult) -> bool:
        """Whether a cached result answers this run (prefilter=False must parse everything)."""
        return result.parsed or self.prefilter

    def visit(self, path: Path, file_stat: os.stat_result | None) -> None:
        signature = signature_of(file_stat, self.now_ns) if file_stat is not None else None
        entry_key = self.cache.entry_key(path) if self.cache is not None else ""
        if self.cache is not None:
            hit = self.cache.by_signature(entry_key, signature)
            if hit is not None and self.cached(hit):
                self.raw_by_path.append((path, hit.diagnostics))
                return
        try:
            with open(path, "rb") as stream:
                source = stream.read()
        except OSError as error:
            self.read_errors.append(_read_error(path, error.strerror or str(error)))
            return
        digest = digest_of(source) if self.cache is not None else ""
        if self.cache is not None:
            hit = self.cache.by_digest(digest)
            if hit is not None and self.cached(hit):
                self.cache.store(entry_key, signature, hit)
                self.raw_by_path.append((path, hit.diagnostics))
                return
        candidate = self.candidate(source)
        if candidate or not self.prefilter:
            self.pending.append(_Pending(path, entry_key, signature, source, digest, candidate))
            return
        if self.cache is not None:
            self.cache.store(entry_key, signature, FileResult(digest, False, ()))
        self.raw_by_path.append((path, ()))

    def analyse(self, jobs: int) -> None:
        checked = _analyse(self.pending, self.config, jobs)
        for item, (raw, cacheable) in zip(self.pending, checked, strict=True):
            if not item.candidate:
                raw = tuple(d for d in raw if d[4] not in CANDIDATE_ONLY_CODES)
            if self.cache is not None and cacheable:
                result = FileResult(item.digest, item.candidate, raw)
                self.cache.store(item.entry_key, item.signature, result)
            self.raw_by_path.append((item.path, raw))

    def diagnostics(self) -> list[Diagnostic]:
        enabled = self.config.enabled
        found: list[Diagnostic] = []
        for path, raw in self.raw_by_path:
            display = str(path)
            for line, column, end_line, end_column, code, message in raw:
                if enabled(code, display):
                    found.append(
                        Diagnostic(display, line, column, end_line, end_column, code, message)
                    )
        found.extend(d for d in self.read_errors if enabled(d.code, d.path))
        found.sort()
        return found


def lint_paths(
    paths: Sequence[Path],
    config: Config,
    *,
    jobs: int | None = None,
    use_cache: bool = True,
    cache_dir: Path | None = None,
    prefilter: bool = True,
    config_for: ConfigFor | None = None,
) -> LintResult:
    """Lint every Python file under ``paths`` (default ``.``), in (path, line, column) order.

    Diagnostics are filtered by ``config.enabled``; the cache holds them unfiltered. With
    ``config_for``, each file uses the configuration of its directory (``config`` is then the
    one for paths that cannot be read); each configuration keeps its own cache document.
    """
    found = discover(
        paths,
        config.all_excludes,
        config.root,
        config_for=config_for,
        force_exclude=config.force_exclude,
        respect_gitignore=config.respect_gitignore,
    )
    workers = max(1, jobs if jobs is not None else (os.cpu_count() or 1))
    diagnostics: list[Diagnostic] = []
    warnings = list(found.warnings)
    for group_config, files in _by_config(found.files, config).items():
        cache = (
            Cache(resolve_cache_dir(group_config, cache_dir), group_config) if use_cache else None
        )
        run = _Run(group_config, cache, prefilter)
        for source_file in files:
            run.visit(source_file.path, source_file.stat)
        run.analyse(workers)
        diagnostics.extend(run.diagnostics())
        if cache is not None:
            cache_warning = cache.save()
            if cache_warning is not None and cache_warning not in warnings:
                warnings.append(cache_warning)
    for missing_path, reason in found.missing:
        error = _read_error(missing_path, reason)
        if config.enabled(error.code, error.path):
            diagnostics.append(error)
    diagnostics.sort()
    return LintResult(diagnostics, warnings, len(found.files))


def _by_config(files: Sequence[SourceFile], default: Config) -> dict[Config, list[SourceFile]]:
    groups: dict[Config, list[SourceFile]] = {}
    for source_file in files:
        groups.setdefault(source_file.config or default, []).append(source_file)
    return groups

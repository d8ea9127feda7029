"""Lint a set of paths: discover, read, prefilter, consult the cache, parse candidates in parallel.

Each file is analysed within its project (``analysis.project``: the nearest ancestor with a
``pyproject.toml``, ``setup.py``, ``setup.cfg`` or ``.git``, else the directory given on the
command line): calls into the project's other modules follow their summaries, whether or not
those modules were passed. Diagnostics are reported only for the files passed. A cached result
holds the summaries of every module it depends on and is reused only while they are unchanged.

Kept cheap to import: libcst and the analysis are imported only when a file needs parsing, and
the process pool only when there are enough candidates to pay for it.
"""

from __future__ import annotations

import gc
import os
import re
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from esper_lint.cache import (
    MISSING,
    OFFERS_PREFIX,
    UNGATED_PREFIX,
    Cache,
    Dependencies,
    Dependency,
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

    from esper_lint.analysis.project import ProjectIndex
    from esper_lint.analysis.summaries import ModuleContext, Project

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
# The cyclic collector's first threshold while linting (CPython's default is 700). A libcst tree
# is many small acyclic objects, freed by reference counting. On the benchmark corpus a cold run
# made 455 collections at the default (414 young, 38 middle, 3 full) and 4 at this threshold,
# for 3% fewer instructions (callgrind).
GC_YOUNG_THRESHOLD = 50_000


@contextmanager
def _fewer_collections() -> Iterator[None]:
    previous = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *previous[1:])
    try:
        yield
    finally:
        gc.set_threshold(*previous)


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
    # None: it names no symmetric call, but calls into project modules that may offer one; their
    # summaries decide, in the process that checks it (summaries are most of a cold run)
    candidate: bool | None
    root: str | None  # the project root, None for a file outside any project
    partial: bool = False  # may be parsed partly (esper_lint.partial): no candidate imports it


def _digest_kind(digest: str) -> str:
    return OFFERS_PREFIX if digest.startswith(OFFERS_PREFIX) else ""


def _read_digest(path: str) -> str:
    try:
        with open(path, "rb") as stream:
            return digest_of(stream.read())
    except OSError:
        return MISSING


def _read_error(path: Path, reason: str) -> Diagnostic:
    return Diagnostic(str(path), 1, 1, 1, 1, READ_ERROR, f"file could not be read: {reason}")


def _raw(diagnostic: Diagnostic) -> RawDiagnostic:
    d = diagnostic
    return (d.line, d.column, d.end_line, d.end_column, d.code, d.message)


# The diagnostics of one file, whether they may be cached (not after an internal error, which
# may be transient, such as a MemoryError), the modules it depends on with their digests, and
# whether it is a parse candidate.
Checked = tuple[tuple[RawDiagnostic, ...], bool, Dependencies, bool]

# The projects of this process (each pool worker has its own), by root. The index alone needs
# no libcst: a run that parses nothing must not import it.
_indexes: dict[str, ProjectIndex] = {}
_projects: dict[str, Project] = {}
# Whether this process's projects gate their summaries on the offer graph (off with the
# prefilter: every module is summarised, the reference the speed paths must match).
_gated = True


def index_at(root: str, config: Config) -> ProjectIndex:
    index = _indexes.get(root)
    if index is None:
        from esper_lint.analysis.project import ProjectIndex, configured_src

        extra = [Path(config.root) / entry for entry in config.src]
        index = ProjectIndex(Path(root), [*extra, *configured_src(Path(root))])
        _indexes[root] = index
    return index


def project_at(root: str, config: Config) -> Project:
    project = _projects.get(root)
    if project is None:
        from esper_lint.analysis.summaries import Project

        project = Project(index_at(root, config), config, gated=_gated)
        _projects[root] = project
    return project


def project_context(path: Path, config: Config) -> ModuleContext:
    """The view of its project that one file linted on its own gets (standard input named by
    ``--stdin-filename``): its project is found from its path, the other modules from disk."""
    from esper_lint.analysis.project import find_project_root

    _indexes.clear()
    _projects.clear()
    root = find_project_root(path.absolute().parent) or Path.cwd()
    return project_at(str(root.resolve()), config).context(path)


def imports_project_modules(root: str, config: Config, source: bytes, path: Path) -> bool:
    from esper_lint.analysis.project import imported_modules

    index = index_at(root, config)
    if not index.may_import_project(source):
        return False
    name = index.module_name(path) or ""
    return any(
        module != name and index.module_file(module) is not None
        for module in imported_modules(source, name, path.name == "__init__.py")
    )


def _check_one(
    source: bytes,
    path: str,
    config: Config,
    root: str | None,
    partial: bool = False,
    candidate: bool | None = True,
) -> Checked:
    """Check one file; a file whose candidacy is undecided (``None``) is decided first, and not
    parsed when it is no candidate (unless the prefilter is off)."""
    from esper_lint.checker import TOO_DEEP, check_source

    project = project_at(root, config) if root is not None else None
    if candidate is None:
        candidate = project is None or _imports_offering(project, source, Path(path))
        if not candidate and _gated:
            assert project is not None
            return (), True, _dependencies(project, Path(path)), False
    context = project.context(Path(path)) if project is not None else None
    try:
        diagnostics = check_source(source, path, config, context, partial=partial)
    except Exception as error:  # check_source must not raise; never let one file stop the run
        message = f"file could not be analysed: internal error: {type(error).__name__}: {error}"
        return ((1, 1, 1, 1, "ESP901", message),), False, (), candidate
    # An ESP901 other than "too deep" is an internal error, maybe transient (MemoryError):
    # caching it would replay it on every warm run.
    cacheable = all(d.code != "ESP901" or d.message == TOO_DEEP for d in diagnostics)
    dependencies = _dependencies(project, Path(path)) if project is not None else ()
    raw = tuple(_raw(diagnostic) for diagnostic in diagnostics)
    return raw, cacheable, dependencies, candidate


def _imports_offering(project: Project, source: bytes, path: Path) -> bool:
    try:
        return project.imports_offering(source, path)
    except Exception:  # like check_source's: one file's summaries must not stop the run
        return True  # undecided: parsing it is always correct, and reports what failed


def _dependencies(project: Project, path: Path) -> Dependencies:
    """Every project module the file's results depend on: those whose summaries its analysis
    read, with the digest of their bytes, and those whose offers decided that it is no
    candidate, with the digest of what they offer.

    Not the digest of a summary: the bytes are the same in every process, and the closure of
    modules read holds everything a summary was computed from. (Before import cycles were
    solved to a fixpoint, a summary in a cycle depended on where the cycle was entered, and two
    pool workers recorded two digests for ``modeling_utils.py``: half of transformers' files
    missed the cache on every warm run.)

    In a large connected project every file depends on thousands of modules, nearly the same
    ones: files with the same closures share one tuple (built once, pickled once per chunk).
    """
    key = (project, project.depends_on(path), project.offer_depends_on(path))
    found = _dependency_lists.get(key)
    if found is None:
        found = _dependency_lists[key] = _dependency_list(*key)
    return found


def _dependency_list(
    project: Project, summaries_read: frozenset[str], offers_read: frozenset[str]
) -> Dependencies:
    found = []
    for module in sorted(summaries_read):
        module_file = project.index.module_file(module)
        if module_file is not None:
            found.append((str(module_file), _source_digest(project, module_file)))
    for module in sorted(offers_read):
        module_file = project.index.module_file(module)
        if module_file is not None:
            found.append((str(module_file), OFFERS_PREFIX + project.offer_digest(module)))
    return tuple(found)


# The digests of the project modules read in this process, by path: each checked file lists
# thousands of them in a large connected project.
_source_digests: dict[Path, str] = {}
# The dependency lists built in this process, by project and the modules they name.
_dependency_lists: dict[tuple[Project, frozenset[str], frozenset[str]], Dependencies] = {}


def _source_digest(project: Project, module_file: Path) -> str:
    digest = _source_digests.get(module_file)
    if digest is None:
        source = project.index.source(module_file)
        digest = _source_digests[module_file] = MISSING if source is None else digest_of(source)
    return digest


_worker_config: Config | None = None
# (source, path, project root, may be parsed partly, candidate or undecided) of one file to
# check in a worker
_Payload = tuple[bytes, str, str | None, bool, bool | None]


def _init_worker(config: Config, gated: bool) -> None:
    global _worker_config, _gated
    _worker_config = config
    _gated = gated


def _check_chunk(chunk: list[_Payload]) -> list[Checked]:
    assert _worker_config is not None
    config = _worker_config
    return [_check_payload(payload, config) for payload in chunk]


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
            initargs=(config, _gated),
        ) as pool:
            payloads = [[_payload(item) for item in chunk] for chunk in chunks]
            for chunk, chunk_results in zip(chunks, pool.map(_check_chunk, payloads), strict=True):
                for item, result in zip(chunk, chunk_results, strict=True):
                    results[id(item)] = result
    except (BrokenProcessPool, OSError):
        pass  # a worker died or no pool could start: finish what is left in this process
    return [
        results[id(item)] if id(item) in results else _check_pending(item, config)
        for item in pending
    ]


def _payload(item: _Pending) -> _Payload:
    return item.source, str(item.path), item.root, item.partial, item.candidate


def _check_payload(payload: _Payload, config: Config) -> Checked:
    source, path, root, partial, candidate = payload
    return _check_one(source, path, config, root, partial, candidate)


def _check_pending(item: _Pending, config: Config) -> Checked:
    return _check_payload(_payload(item), config)


def _analyse(pending: list[_Pending], config: Config, jobs: int) -> list[Checked]:
    if jobs > 1 and len(pending) >= MIN_CANDIDATES_FOR_POOL:
        return _check_in_pool(pending, config, jobs)
    return [_check_pending(item, config) for item in pending]


class _KnownStats:
    """The stat results discovery already has, by absolute path, indexed on first use: only a
    run that checks the modules a cached result depends on needs them."""

    def __init__(self, files: Sequence[SourceFile]) -> None:
        self.files = files
        self.by_path: dict[str, os.stat_result] | None = None

    def of(self, absolute: str) -> os.stat_result | None:
        if self.by_path is None:
            cwd = os.getcwd()
            # join, not abspath: discovery's paths are already normalised
            self.by_path = {
                os.path.join(cwd, f.path): f.stat for f in self.files if f.stat is not None
            }
        return self.by_path.get(absolute)


class _Run:
    def __init__(
        self,
        config: Config,
        cache: Cache | None,
        prefilter: bool,
        fallback_root: Path,
        partial: bool = True,
    ) -> None:
        self.config = config
        self.cache = cache
        self.prefilter = prefilter
        self.partial = partial
        self.fallback_root = fallback_root
        self.now_ns = time.time_ns()
        self.is_candidate: Callable[[bytes], bool] | None = None
        self.raw_by_path: list[tuple[Path, tuple[RawDiagnostic, ...]]] = []
        self.pending: list[_Pending] = []
        self.read_errors: list[Diagnostic] = []
        self.roots: dict[str, str] = {}  # by directory as discovery spells it
        self.real_roots: dict[str, str | None] = {}  # by resolved directory
        self.current_summaries: dict[str, str] = {}
        # Each checked file depends on the closure of its imports: thousands of modules in a
        # large connected project, nearly the same ones for every file. Each dependency is
        # checked once, and results depending on the very same dependencies (cached ones share
        # one tuple) once too.
        self.current_dependencies: dict[Dependency, bool] = {}
        self.current_groups: dict[int, tuple[Dependencies, bool]] = {}
        self.noted: set[Dependency] = set()
        self.noted_groups: dict[int, Dependencies] = {}
        # the stat results discovery already has, by absolute path: dependencies reuse them
        self.stats: _KnownStats = _KnownStats(())

    def root_of(self, path: Path) -> str:
        """The project root of ``path``: the nearest marked ancestor, else the CLI directory."""
        directory = os.path.dirname(path)  # strings: a Path per file costs more than the lookup
        root = self.roots.get(directory)
        if root is None:
            from esper_lint.analysis.project import nearest_root

            found = nearest_root(os.path.realpath(directory or "."), self.real_roots)
            root = found if found is not None else str(self.fallback_root.resolve())
            self.roots[directory] = root
        return root

    def candidate(self, source: bytes, path: Path, root: str) -> bool | None:
        """Whether the file is a parse candidate, decided on its text and the offer graph; None
        when it calls into project modules that may offer it a symmetric call, so that their
        summaries decide (``_check_one``, in a pool worker when there is a pool)."""
        if self.is_candidate is None:
            from esper_lint.prefilter import candidate_predicate

            self.is_candidate = candidate_predicate(self.config)
        if self.is_candidate(source):
            return True
        # a file whose noqa comments name an ESP code is parsed too, for ESP100 (unused noqa);
        # a substring test first: the case-insensitive regex scans slower than memory speed
        if (b"ESP" in source or b"esp" in source) and _OWN_NOQA.search(source) is not None:
            return True
        try:
            if not imports_project_modules(root, self.config, source, path):
                return False
            return None if project_at(root, self.config).offering_imports(source, path) else False
        except (RecursionError, MemoryError, OSError, ValueError):
            return True  # undecided: parsing it is always correct

    def cached(self, result: FileResult, path: Path) -> bool:
        """Whether a cached result answers this run (prefilter=False must parse everything) and
        the modules it depends on are unchanged."""
        if not (result.parsed or self.prefilter):
            return False
        dependencies = result.dependencies
        known = self.current_groups.get(id(dependencies))
        if known is not None and known[0] is dependencies:
            return known[1]
        current = all(self.is_current(dependency, path) for dependency in dependencies)
        self.current_groups[id(dependencies)] = (dependencies, current)  # keeps the id alive
        return current

    def is_current(self, dependency: Dependency, dependent: Path) -> bool:
        known = self.current_dependencies.get(dependency)
        if known is None:
            module_path, digest = dependency
            known = self.module_digest(module_path, dependent, _digest_kind(digest)) == digest
            self.current_dependencies[dependency] = known
        return known

    def module_digest(self, module_path: str, dependent: Path, kind: str = "") -> str:
        """The current digest of a module's bytes (or, with kind ``OFFERS_PREFIX``, of what it
        offers): stored while the module's stat signature is unchanged, else read again (what
        it offers is computed in the project of ``dependent``)."""
        key = self.summary_key(kind, module_path)
        digest = self.current_summaries.get(key)
        if digest is not None:
            return digest
        signature = self.signature(module_path)
        digest = self.cache.summary_digest(key, signature) if self.cache else None
        if digest is None:
            digest = (
                self.offer_digest(module_path, dependent) if kind else _read_digest(module_path)
            )
            if self.cache is not None:
                self.cache.store_summary(key, signature, digest)
        self.current_summaries[key] = digest
        return digest

    def offer_digest(self, module_path: str, dependent: Path) -> str:
        project = project_at(self.root_of(dependent), self.config)
        module = project.index.module_name(Path(module_path))
        return OFFERS_PREFIX + project.offer_digest(module) if module else OFFERS_PREFIX

    def summary_key(self, kind: str, module_path: str) -> str:
        """Where the cache keeps a module's digest: by kind, and apart for a run that
        summarises every module (the prefilter off), whose summaries differ."""
        return ("" if self.prefilter else UNGATED_PREFIX) + kind + module_path

    def note_summaries(self, dependencies: Dependencies) -> None:
        if self.noted_groups.get(id(dependencies)) is dependencies:
            return  # files of one import cycle share their list (``_dependencies``)
        self.noted_groups[id(dependencies)] = dependencies  # keeps the id alive
        for dependency in dependencies:
            if dependency in self.noted:
                continue
            self.noted.add(dependency)
            module_path, digest = dependency
            key = self.summary_key(_digest_kind(digest), module_path)
            if key in self.current_summaries or self.cache is None:
                continue
            self.current_summaries[key] = digest
            self.cache.store_summary(key, self.signature(module_path), digest)

    def signature(self, module_path: str) -> Signature | None:
        file_stat = self.stats.of(module_path)
        if file_stat is None:
            try:
                file_stat = os.stat(module_path)
            except OSError:
                return None
        return signature_of(file_stat, self.now_ns)

    def visit(self, path: Path, file_stat: os.stat_result | None) -> None:
        signature = signature_of(file_stat, self.now_ns) if file_stat is not None else None
        entry_key = self.cache.entry_key(path) if self.cache is not None else ""
        if self.cache is not None:
            hit = self.cache.by_signature(entry_key, signature)
            if hit is not None and self.cached(hit, path):
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
            hit = self.cache.by_digest(digest, entry_key)
            if hit is not None and self.cached(hit, path):
                self.cache.store(entry_key, signature, hit)
                self.raw_by_path.append((path, hit.diagnostics))
                return
        root = self.root_of(path)
        candidate = self.candidate(source, path, root)
        if candidate is not False or not self.prefilter:
            pending = _Pending(path, entry_key, signature, source, digest, candidate, root)
            self.pending.append(pending)
            return
        if self.cache is not None:
            dependencies: Dependencies = ()
            if root in _projects:  # it was asked whether the file imports a symmetric call
                dependencies = _dependencies(_projects[root], path)
            self.note_summaries(dependencies)
            result = FileResult(digest, False, (), dependencies)
            self.cache.store(entry_key, signature, result)
        self.raw_by_path.append((path, ()))

    def allow_partial_parses(self) -> None:
        """Let a pending file be parsed partly unless another pending file imports it: that
        one's analysis reads its summary, which needs the whole tree (parsed once for both)."""
        from esper_lint.analysis.project import imported_modules

        modules: list[str | None] = []
        imported: set[tuple[str, str]] = set()
        for item in self.pending:
            index = index_at(item.root, self.config) if item.root is not None else None
            module = index.module_name(item.path) if index is not None else None
            modules.append(module)
            if index is not None and index.may_import_project(item.source):
                is_package = item.path.name == "__init__.py"
                found = imported_modules(item.source, module or "", is_package)
                imported.update((item.root or "", name) for name in found)
        for item, module in zip(self.pending, modules, strict=True):
            item.partial = module is None or (item.root or "", module) not in imported

    def analyse(self, jobs: int) -> None:
        if not self.pending:
            return  # every file answered from the cache or the prefilter: import no analysis
        if self.partial:
            self.allow_partial_parses()
        checked = _analyse(self.pending, self.config, jobs)
        for item, (raw, cacheable, dependencies, candidate) in zip(
            self.pending, checked, strict=True
        ):
            if not candidate:
                raw = tuple(d for d in raw if d[4] not in CANDIDATE_ONLY_CODES)
            if self.cache is not None and cacheable:
                self.note_summaries(dependencies)
                result = FileResult(item.digest, candidate, raw, dependencies)
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
    partial: bool = True,
) -> LintResult:
    """Lint every Python file under ``paths`` (default ``.``), in (path, line, column) order.

    Diagnostics are filtered by ``config.enabled``; the cache holds them unfiltered. With
    ``config_for``, each file uses the configuration of its directory (``config`` is then the
    one for paths that cannot be read); each configuration keeps its own cache document.
    ``prefilter=False`` and ``partial=False`` turn the speed paths off (every file parsed, and
    parsed whole); the results are the same.
    """
    with _fewer_collections():
        return _lint_paths(
            paths, config, jobs, use_cache, cache_dir, prefilter, config_for, partial
        )


def _lint_paths(
    paths: Sequence[Path],
    config: Config,
    jobs: int | None,
    use_cache: bool,
    cache_dir: Path | None,
    prefilter: bool,
    config_for: ConfigFor | None,
    partial: bool,
) -> LintResult:
    found = discover(
        paths,
        config.all_excludes,
        config.root,
        config_for=config_for,
        force_exclude=config.force_exclude,
        respect_gitignore=config.respect_gitignore,
    )
    global _gated
    _indexes.clear()  # files may have changed since the last run in this process
    _projects.clear()
    _source_digests.clear()
    _dependency_lists.clear()
    _gated = prefilter
    first = paths[0] if paths else Path(".")
    fallback_root = first if first.is_dir() else first.parent
    stats = _KnownStats(found.files)
    workers = max(1, jobs if jobs is not None else (os.cpu_count() or 1))
    diagnostics: list[Diagnostic] = []
    warnings = list(found.warnings)
    for group_config, files in _by_config(found.files, config).items():
        cache = (
            Cache(resolve_cache_dir(group_config, cache_dir), group_config) if use_cache else None
        )
        run = _Run(group_config, cache, prefilter, fallback_root, partial)
        run.stats = stats
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
    # Neighbours share their configuration object: hashing a Config (a tuple of its 19 fields)
    # once per run of them, not once per file.
    last: tuple[Config, list[SourceFile]] | None = None
    for source_file in files:
        config = source_file.config or default
        if last is None or last[0] is not config:
            last = (config, groups.setdefault(config, []))
        last[1].append(source_file)
    return groups

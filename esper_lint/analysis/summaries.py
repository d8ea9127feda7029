"""Per-module summaries: what importers need to know about a project module's functions.

A summary is computed once per module (one walk of its tree, the same walk ``build_facts`` makes)
and reused by every file that imports it. For each top-level function and method:

- ``chains``: the symmetric calls it makes, per kind, directly or through other functions of the
  project, as the chain a message shows (``all_reduce_mean() -> dist.all_reduce()``);
- ``return_bits``: what its result depends on (``returns_rank_dependent``: ``def is_main():
  return dist.get_rank() == 0``); ``returns_uniform``: its result comes from a reduction or a
  broadcast and is the same on every rank;
- ``rank_zero_decorator``: a decorator whose wrapper calls the wrapped function only under a
  rank-dependent condition (``@master_only``), so the functions it decorates run on some ranks.

And for each class, its resolved bases and the methods it defines (``self.f()`` resolves through
the bases in MRO order). Import cycles end at a module whose summary is being computed: it
contributes nothing to the modules of the cycle that ask for it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from esper_lint.analysis.offers import OfferGraph, Vocabulary
from esper_lint.analysis.project import ProjectIndex, imported_modules, resolve_relative
from esper_lint.analysis.rank import RANK, UNIFORM
from esper_lint.config import Config

if TYPE_CHECKING:
    import libcst

    from esper_lint.analysis.facts import Walker

# Re-exports followed through at most this many modules (`a` re-exports `b.f` re-exports...).
MAX_REEXPORT_HOPS = 16
# How often a summary computed inside an import cycle is computed again before it is kept.
MAX_CYCLE_RETRIES = 2
# Summaries computed one inside another (a chain of imports met while walking): deeper ones are
# left out for now, like a cycle, so the stack stays far from Python's recursion limit.
MAX_SUMMARY_DEPTH = 12
# Parsed trees kept for reuse (a module summarised and linted, a summary computed again inside a
# cycle), up to this much source in all.
MAX_TREE_SOURCE_BYTES = 48 * 1024 * 1024
# The offer graph's vocabularies: what a summary may hold (a symmetric call or a rank source),
# and what candidacy needs (a symmetric call: an importer's findings come only through those).
OFFERS_ANYTHING = 0
OFFERS_CALLS = 1


@dataclass(frozen=True)
class FunctionSummary:
    file: str  # the defining module's file, as messages show it
    return_bits: int
    element_returns: tuple[int, ...] | None
    chains: dict[str, tuple[str, ...]]  # CallKind.value -> chain
    rank_zero_decorator: bool

    @property
    def returns_rank_dependent(self) -> bool:
        return bool(self.return_bits & RANK)

    @property
    def returns_uniform(self) -> bool:
        return bool(self.return_bits & UNIFORM) and not self.return_bits & RANK


@dataclass(frozen=True)
class ClassSummary:
    bases: tuple[str, ...]  # "module:Class" of each base defined in the project, in order
    methods: frozenset[str]


@dataclass
class ModuleSummary:
    name: str
    file: str
    functions: dict[str, FunctionSummary] = field(default_factory=dict)
    classes: dict[str, ClassSummary] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)  # imported names -> qualified names


class Project:
    """The summaries of one project's modules, computed on demand and kept."""

    def __init__(self, index: ProjectIndex, config: Config, gated: bool = True) -> None:
        self.index = index
        self.config = config
        # ``gated=False`` (a run with the prefilter off) summarises every module and decides
        # candidacy on every imported module's summary: the reference the offer graph must match
        self.gated = gated
        self.summaries: dict[str, ModuleSummary | None] = {}
        # the modules whose summaries are being computed, innermost last
        self.in_progress: list[str] = []
        # Summaries computed while a module they depend on was still incomplete (a cycle) are
        # provisional: reused until the outermost computation ends, then computed again on the
        # next request (at most MAX_CYCLE_RETRIES times), when the rest of the cycle is known.
        self.incomplete: set[str] = set()
        self.provisional: dict[str, ModuleSummary | None] = {}
        self.retries: dict[str, int] = {}
        self.dependencies: dict[str, set[str]] = {}  # module -> modules it asked about
        self._offers: OfferGraph | None = None
        self.offer_reads: dict[str, set[str]] = {}  # module -> modules it reads offering nothing
        self._offered: dict[str, frozenset[str]] = {}
        self._offering: set[str] = set()
        self.trees: dict[str, tuple[bytes, libcst.Module]] = {}
        self.tree_bytes = 0

    def context(self, path: Path) -> ModuleContext:
        name = self.index.module_name(path) or ""
        display = self.index.display(path)
        return ModuleContext(
            self, name, path.name == "__init__.py", display, os.path.realpath(path)
        )

    def cached_tree(self, real_path: str, source: bytes) -> libcst.Module | None:
        """The tree already parsed from exactly these bytes at this path, if one is kept."""
        kept = self.trees.get(real_path)
        return kept[1] if kept is not None and kept[0] == source else None

    def keep_tree(self, real_path: str, source: bytes, module: libcst.Module) -> None:
        if real_path in self.trees or self.tree_bytes + len(source) > MAX_TREE_SOURCE_BYTES:
            return
        self.trees[real_path] = (source, module)
        self.tree_bytes += len(source)

    def remember(self, name: str, walker: Walker) -> None:
        """The summary a lint walk yields, for the importers analysed after it."""
        if name and name not in self.summaries and not self.in_progress and not self.incomplete:
            self.summaries[name] = summary_of(walker)

    def summary(self, name: str) -> ModuleSummary | None:
        if name in self.summaries:
            return self.summaries[name]
        if name in self.provisional:
            return self.provisional[name]
        if name in self.in_progress:
            # an import cycle: this module contributes nothing yet to the modules it reaches
            self.incomplete.update(self.in_progress[self.in_progress.index(name) + 1 :])
            return None
        if len(self.in_progress) >= MAX_SUMMARY_DEPTH:
            self.incomplete.update(self.in_progress)
            return None
        path = self.index.module_file(name)
        if path is None:
            return None
        summary = self._summarise(name, path)
        retries = self.retries.get(name, 0)
        if name in self.incomplete and retries < MAX_CYCLE_RETRIES:
            self.incomplete.discard(name)
            self.retries[name] = retries + 1
            self.provisional[name] = summary
        else:
            self.summaries[name] = summary
        if not self.in_progress:
            self.provisional.clear()
        return summary

    def _summarise(self, name: str, path: Path) -> ModuleSummary | None:
        source = self.index.source(path)
        if source is None:
            return None
        if not self.could_contribute(name):
            return ModuleSummary(name, self.index.display(path))
        from esper_lint.analysis.facts import walk_module
        from esper_lint.checker import parse_for_analysis

        real_path = os.path.realpath(path)
        module = self.cached_tree(real_path, source)
        if module is None:
            module = parse_for_analysis(source)
            if module is None:
                return None
            self.keep_tree(real_path, source, module)
        self.in_progress.append(name)
        try:
            return summary_of(walk_module(module, self.config, self.context(path)))
        except (RecursionError, MemoryError, ValueError, TypeError, AttributeError):
            return None  # a module the analysis can't read contributes nothing to its importers
        finally:
            self.in_progress.pop()

    def could_contribute(self, name: str) -> bool:
        """Whether importing module ``name`` can give an importer a symmetric call or a rank
        source, itself or through the project modules it imports (``offers``). A module that
        offers nothing has nothing for an importer and is not parsed."""
        if not self.gated:
            return self.index.module_file(name) is not None
        graph = self._offer_graph()
        found = graph.offers(name, OFFERS_ANYTHING)
        if not found:
            # what this module has to offer depends on what it imports: so do its importers
            self.dependencies.setdefault(name, set()).update(graph.imports(name))
        return found

    def _offer_graph(self) -> OfferGraph:
        if self._offers is None:
            from esper_lint.prefilter import contribution_words, symmetric_words

            contributes = Vocabulary.of(*contribution_words(self.config))
            calls = Vocabulary.of(*symmetric_words(self.config))
            self._offers = OfferGraph(self.index, (contributes, calls))
        return self._offers

    def offered_names(self, name: str, consumer: str) -> frozenset[str]:
        """The names through which importing module ``name`` can give ``consumer`` a symmetric
        call: its functions and methods (and their classes) that make one or are rank-zero
        decorators, and the names it re-exports from modules that offer one."""
        self.dependencies.setdefault(consumer, set()).add(name)
        if name in self._offered:
            return self._offered[name]
        if name in self._offering:
            return frozenset()  # a cycle of re-exports: what is known so far
        self._offering.add(name)
        try:
            found = frozenset(self._offered_names(name))
        finally:
            self._offering.discard(name)
        self._offered[name] = found
        return found

    def _offered_names(self, name: str) -> set[str]:
        summary = self.summary(name)
        if summary is None:
            return set()
        offered = set()
        for key, function in summary.functions.items():
            if function.chains or function.rank_zero_decorator:
                offered.update(key.split("."))
        for alias, target in summary.aliases.items():
            module = self._module_of(target)
            if module is None or module == name:
                continue
            names = self.offered_names(module, name)
            if names and (target == module or target.rpartition(".")[2] in names):
                offered.add(alias)
        return offered

    def _module_of(self, qualified: str) -> str | None:
        """The longest prefix of ``qualified`` that is a project module."""
        module = qualified
        while module:
            if self.index.module_file(module) is not None:
                return module
            module = module.rpartition(".")[0]
        return None

    def imports_offering(self, source: bytes, path: Path) -> bool:
        """Whether a file that names no symmetric call still imports one from the project, and
        names it (a function, its class, a decorator, a module re-exporting one)."""
        offering = self.offering_imports(source, path)
        return bool(offering) and self.names_offered(source, path, offering)

    def offering_imports(self, source: bytes, path: Path) -> set[str]:
        """The project modules a file calls into that may offer it a symmetric call, decided on
        their text alone (every project module it imports, ungated). Without one, the file
        imports no symmetric call; with one, ``names_offered`` decides on their summaries."""
        name = self.index.module_name(path) or ""
        is_package = path.name == "__init__.py"
        if not self.gated:
            return set(self.project_imports(source, name, is_package))
        graph = self._offer_graph()
        reads = graph.read_targets(source, name, is_package)
        offering = graph.offering_modules(reads, OFFERS_CALLS)
        # What it reads from the other modules offers no call, until one of them changes
        # what it offers; what the offering ones offer is decided on their summaries.
        quiet = {target[0] for target, _ in reads} - offering
        self.offer_reads.setdefault(name, set()).update(quiet)
        return offering

    def names_offered(self, source: bytes, path: Path, offering: set[str]) -> bool:
        """Whether the file names what the ``offering`` modules' summaries offer it."""
        from esper_lint.prefilter import names_pattern

        name = self.index.module_name(path) or ""
        offered: frozenset[str] = frozenset()
        for module in sorted(offering):
            offered |= self.offered_names(module, name)
        return bool(offered) and names_pattern(offered).search(source) is not None

    def offer_depends_on(self, path: Path) -> frozenset[str]:
        """The modules whose offers (not summaries) decided that the file at ``path`` imports
        no symmetric call."""
        reads = self.offer_reads.get(self.index.module_name(path) or "", set())
        return frozenset(self._offer_graph().quiet_closure(reads, OFFERS_CALLS) if reads else ())

    def offer_digest(self, name: str) -> str:
        return self._offer_graph().digest(name, OFFERS_CALLS)

    def project_imports(self, source: bytes, name: str, is_package: bool) -> Iterator[str]:
        for imported in imported_modules(source, name, is_package):
            if imported != name and self.index.module_file(imported) is not None:
                yield imported

    def depends_on(self, path: Path) -> frozenset[str]:
        """The modules whose summaries the analysis of the file at ``path`` read."""
        return self.dependency_closure(self.index.module_name(path) or "")

    def dependency_closure(self, name: str) -> frozenset[str]:
        """Every module whose summary ``name``'s analysis read, directly or through others;
        ``name`` itself too when an import cycle leads back to it, so that every module of a
        cycle gets the same closure (and the engine one list of dependencies for all of them)."""
        closure: set[str] = set()
        pending = list(self.dependencies.get(name, ()))
        while pending:
            module = pending.pop()
            if module in closure:
                continue
            closure.add(module)
            pending.extend(self.dependencies.get(module, ()))
        return frozenset(closure)


@dataclass
class ModuleContext:
    """One module's view of its project: how its imports and base classes resolve."""

    project: Project
    name: str
    is_package: bool
    file: str
    real_path: str = ""

    def absolute(self, level: int, tail: str) -> str | None:
        return resolve_relative(self.name, self.is_package, level, tail)

    def _module(self, name: str) -> ModuleSummary | None:
        self.project.dependencies.setdefault(self.name, set()).add(name)
        return self.project.summary(name)

    def resolve(self, qualified: str) -> tuple[str, str] | None:
        """(module, name) of a project function or class named ``qualified``, after re-exports."""
        for _ in range(MAX_REEXPORT_HOPS):
            module, _, attr = qualified.rpartition(".")
            while module:
                if self.project.index.module_file(module) is not None:
                    break
                module, _, head = module.rpartition(".")
                attr = f"{head}.{attr}"
            if not module:
                return None
            summary = self._module(module)
            if summary is None:
                return None
            first, _, rest = attr.partition(".")
            if attr in summary.functions or first in summary.classes:
                return module, attr
            if first not in summary.aliases:
                return None
            target = summary.aliases[first]
            qualified = f"{target}.{rest}" if rest else target
        return None

    def function(self, module: str, key: str) -> FunctionSummary | None:
        summary = self._module(module)
        return summary.functions.get(key) if summary is not None else None

    def class_summary(self, ref: str) -> ClassSummary | None:
        module, _, name = ref.partition(":")
        summary = self._module(module)
        return summary.classes.get(name) if summary is not None else None


def summary_of(walker: Walker) -> ModuleSummary:
    from esper_lint.analysis.calls import HelperChains
    from esper_lint.analysis.symbols import CallKind

    context = walker.project
    assert context is not None
    summary = ModuleSummary(context.name, context.file)
    chains = HelperChains(walker.module, walker.functions, context)
    for key, info in walker.functions.items():
        if "<locals>" in key:
            continue
        found = {}
        for kind in CallKind:
            chain = chains.chain(key, kind, frozenset())
            if chain is not None:
                found[kind.value] = chain[0]
        elements = tuple(info.element_returns) if info.element_returns is not None else None
        summary.functions[key] = FunctionSummary(
            context.file, info.return_bits, elements, found, info.rank_zero_decorator
        )
    for name, methods in walker.class_methods.items():
        bases = tuple(ref for ref in walker.class_bases.get(name, ()) if ref)
        summary.classes[name] = ClassSummary(bases, methods)
    defined = set(summary.functions) | set(summary.classes)
    summary.aliases = {k: v for k, v in walker.imports.aliases.items() if k not in defined}
    return summary

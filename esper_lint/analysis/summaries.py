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
the bases in MRO order).

**Import cycles** are solved to a fixpoint, so that a summary does not depend on which file was
checked first (which differs between pool workers and between a cold and a warm run): the
modules of a strongly connected component of the import graph (of the modules that could
contribute) that the walks reach are each walked with the others' latest summaries (none at
first), and walked again while a summary they read changes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
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
# How often a summary computed while a chain of summaries was cut (MAX_SUMMARY_DEPTH) is
# computed again before it is kept.
MAX_CYCLE_RETRIES = 2
# Passes of walking an import cycle's modules again before its summaries are kept as they are:
# its facts only grow with what its modules learn of each other, so they settle in a few; the
# bound is for facts that would flip between passes (a function known at last loses a guess).
MAX_CYCLE_PASSES = 8
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


@dataclass
class _Solve:
    """An import cycle being solved: its modules, and those of them reached so far."""

    cycle: frozenset[str]
    members: list[str]


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
        # Each module's project imports, and its strongly connected component (in name order)
        # over them; then the same over the imports between modules that could contribute.
        self._all_imports: dict[str, list[str]] = {}
        self._import_cycles: dict[str, tuple[str, ...]] = {}
        self._imports: dict[str, list[str]] = {}
        self._cycles: dict[str, tuple[str, ...]] = {}
        self.solving: dict[str, ModuleSummary | None] = {}  # the latest, of the cycles solved
        self._solves: list[_Solve] = []  # the cycles being solved, innermost last
        self.dependencies: dict[str, set[str]] = {}  # module -> modules it asked about
        self._offers: OfferGraph | None = None
        self.offer_reads: dict[str, set[str]] = {}  # module -> modules it reads offering nothing
        self._offered: dict[str, frozenset[str]] = {}
        self._offering: set[str] = set()
        self.trees: dict[str, tuple[bytes, libcst.Module]] = {}
        self.tree_bytes = 0
        # real path -> the walk a summary made of its kept tree, when the lint walk of the same
        # tree would be the same walk: taken (once) by the check of that file
        self.walks: dict[str, Walker] = {}
        self._fresh: dict[str, tuple[str, Walker]] = {}  # name -> its latest outermost walk
        self._settled = True  # nothing read so far in this computation is incomplete
        self.checked: set[str] = set()  # real paths of the files whose check asked for a walk

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

    def kept_walk(
        self, module: libcst.Module, config: Config, context: ModuleContext
    ) -> Walker | None:
        """The walk of this very tree that its summary made, if the lint walk would be the same.

        Asked by the check of each file, which is made once: a walk is handed out once (facts
        are drawn from it once), and none is kept for a file checked already."""
        self.checked.add(context.real_path)
        walker = self.walks.pop(context.real_path, None)
        if walker is None or walker.module is not module:
            return None
        return walker if config == self.config and context == walker.project else None

    def _walked(self, name: str, real_path: str, walker: Walker) -> None:
        """A summary's walk of a kept tree, a candidate for the check of the same file: one made
        from outside any other summary, as a lint walk is."""
        if (
            self.gated  # the reference run (no prefilter) walks every file for its check
            and self.in_progress == [name]
            and real_path not in self.checked
            and self.trees.get(real_path, (b"", None))[1] is walker.module
        ):
            self._fresh[name] = (real_path, walker)

    def _settle_walks(self) -> None:
        """At the end of a computation asked for from outside any other: keep its walks for the
        checks, if each read only summaries as final as a lint walk would read. Not when any
        summary it read was left incomplete or provisional, or a cycle did not settle; nor the
        walk of a module that read its own summary (none while it is being computed)."""
        fresh, self._fresh = self._fresh, {}
        if not self._settled:
            return
        for name, (real_path, walker) in fresh.items():
            if name not in self.dependencies.get(name, ()):
                self.walks[real_path] = walker

    def remember(self, name: str, walker: Walker) -> None:
        """The summary a lint walk yields, for the importers analysed after it."""
        if (
            name
            and name not in self.summaries
            and not self.in_progress
            and not self.incomplete
            and len(self.cycle_of(name)) == 1
        ):
            self.summaries[name] = summary_of(walker)

    def summary(self, name: str) -> ModuleSummary | None:
        if name in self.summaries:
            return self.summaries[name]
        if self.in_progress or self._solves:
            return self._summary(name)
        self._settled = True
        try:
            return self._summary(name)
        finally:
            self._settle_walks()

    def _summary(self, name: str) -> ModuleSummary | None:
        if name in self.solving:
            return self.solving[name]
        if self._solves and self._join_solve(name):
            return None
        if name in self.provisional:
            self._settled = False
            return self.provisional[name]
        if name in self.in_progress:
            # a cycle the import graph does not show: nothing yet to the modules it reaches
            self.incomplete.update(self.in_progress[self.in_progress.index(name) + 1 :])
            self._settled = False
            return None
        if len(self.in_progress) >= MAX_SUMMARY_DEPTH:
            self.incomplete.update(self.in_progress)
            self._settled = False
            return None
        path = self.index.module_file(name)
        if path is None:
            return None
        cycle = self.cycle_of(name)
        if len(cycle) > 1:
            return self._solve(name, cycle)[name]
        return self._keep(name, self._summarise(name, path))

    def _solve(self, entry: str, cycle: tuple[str, ...]) -> dict[str, ModuleSummary | None]:
        """The summaries of the modules of an import cycle that ``entry`` reaches, to a fixpoint.

        Each module of the cycle that a walk asks for joins with no summary yet, and is walked
        in turn; a module is walked again while a summary of the cycle that it read changes. A
        cycle's facts only grow with what its modules learn of each other, so the result does
        not depend on the entry. Only the modules reached are walked: walking all of a cycle
        made diffusers' cold run 63 s instead of 14 (its package ``__init__`` closes a cycle
        through most of its modules).
        """
        solve = _Solve(frozenset(cycle), [entry])
        self._solves.append(solve)
        self.solving[entry] = None
        walked_at: dict[str, int] = {}
        changed_at: dict[str, int] = {}
        clock = passes = 0
        try:
            while True:
                stale = self._stale(solve.members, walked_at, changed_at)
                if not stale:
                    break
                if passes > MAX_CYCLE_PASSES:
                    self._settled = False  # the latest walks read summaries that changed since
                    break
                if all(module in walked_at for module in stale):
                    passes += 1
                for module in stale:
                    clock += 1
                    walked_at[module] = clock
                    path = self.index.module_file(module)
                    found = self._summarise(module, path) if path is not None else None
                    if found != self.solving[module]:
                        self.solving[module] = found
                        changed_at[module] = clock
        finally:
            self._solves.remove(solve)
            solved = {module: self.solving.pop(module) for module in solve.members}
        return {module: self._keep(module, found) for module, found in solved.items()}

    def _stale(
        self, members: list[str], walked_at: dict[str, int], changed_at: dict[str, int]
    ) -> list[str]:
        """The members never walked, and those that read a member changed since their walk."""
        joined = set(members)
        return [
            module
            for module in members
            if module not in walked_at
            or any(
                changed_at.get(read, 0) > walked_at[module]
                for read in self.dependencies.get(module, set()) & joined
            )
        ]

    def _join_solve(self, name: str) -> bool:
        """Whether ``name`` belongs to a cycle being solved: it joins it, with no summary yet."""
        for solve in self._solves:
            if name in solve.cycle:
                solve.members.append(name)
                self.solving[name] = None
                return True
        return False

    def _keep(self, name: str, summary: ModuleSummary | None) -> ModuleSummary | None:
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
        self._fresh.pop(name, None)  # an earlier walk in a cycle being solved is out of date
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
            walker = walk_module(module, self.config, self.context(path))
            summary = summary_of(walker)
            self._walked(name, real_path, walker)
            return summary
        except (RecursionError, MemoryError, ValueError, TypeError, AttributeError):
            return None  # a module the analysis can't read contributes nothing to its importers
        finally:
            self.in_progress.pop()

    def could_contribute(self, name: str) -> bool:
        """Whether importing module ``name`` can give an importer a symmetric call or a rank
        source, itself or through the project modules it imports (``offers``). A module that
        offers nothing has nothing for an importer and is not parsed."""
        found = self._contributes(name)
        if not found and self.gated:
            # what this module has to offer depends on what it imports: so do its importers
            self.dependencies.setdefault(name, set()).update(self._offer_graph().imports(name))
        return found

    def cycle_of(self, name: str) -> tuple[str, ...]:
        """The modules of ``name``'s import cycle in name order (``(name,)`` outside any): the
        strongly connected component of the graph of project imports between modules that could
        contribute (one that cannot is never walked, so no cycle runs through it).

        That graph is a subgraph of the one over every project import: a module outside any
        cycle of the latter is answered from import lines alone, without the offer graph's
        reading of what each module reached contributes."""
        if len(_component(name, self._import_cycles, self._project_imports_of)) == 1:
            return (name,)
        return _component(name, self._cycles, self._contributing_imports)

    def _project_imports_of(self, name: str) -> list[str]:
        known = self._all_imports.get(name)
        if known is None:
            path = self.index.module_file(name)
            source = self.index.source(path) if path is not None else None
            known = []
            if path is not None and source is not None:
                found = self.project_imports(source, name, path.name == "__init__.py")
                known = list(dict.fromkeys(found))
            self._all_imports[name] = known
        return known

    def _contributing_imports(self, name: str) -> list[str]:
        known = self._imports.get(name)
        if known is None:
            known = self._imports[name] = self._read_contributing_imports(name)
        return known

    def _read_contributing_imports(self, name: str) -> list[str]:
        imported = self._project_imports_of(name)
        if not imported or not self._contributes(name):
            return []
        return [module for module in imported if self._contributes(module)]

    def _contributes(self, name: str) -> bool:
        """``could_contribute`` without recording what the answer depends on."""
        if not self.gated:
            return self.index.module_file(name) is not None
        return self._offer_graph().offers(name, OFFERS_ANYTHING)

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


def _component(
    name: str, known: dict[str, tuple[str, ...]], successors: Callable[[str], list[str]]
) -> tuple[str, ...]:
    """The strongly connected component of ``name`` in name order, found with the components
    already ``known`` (which it extends) left out: a finished component cannot hold ``name``."""
    if name not in known:

        def unfinished(module: str) -> list[str]:
            return [m for m in successors(module) if m not in known]

        for component in _strongly_connected(name, unfinished):
            ordered = tuple(sorted(component))
            for module in component:
                known[module] = ordered
    return known.get(name, (name,))


def _strongly_connected(start: str, successors: Callable[[str], list[str]]) -> Iterator[set[str]]:
    """The strongly connected components reachable from ``start`` (Tarjan's algorithm, with an
    explicit stack: import graphs are deeper than Python's recursion limit allows)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    work: list[tuple[str, Iterator[str]]] = [(start, iter(successors(start)))]
    index[start] = low[start] = 0
    stack.append(start)
    on_stack.add(start)
    while work:
        node, children = work[-1]
        child = next(children, None)
        if child is not None:
            if child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(successors(child))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
            continue
        work.pop()
        if work:
            parent = work[-1][0]
            low[parent] = min(low[parent], low[node])
        if low[node] == index[node]:
            component: set[str] = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            yield component

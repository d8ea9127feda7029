"""Which names of a project module can give its importers a symmetric call, read from its text.

A module's summary (``summaries``) is worth a parse only when an importer can reach a symmetric
call or a rank source through it, and a file that names no symmetric call is a candidate only when
it calls one through an import. This room answers both per name, without libcst or CPython's
parser: a module that imports a contributing module but calls none of the names through which it
contributes offers nothing (most of diffusers imports only a logger and classes from modules that
do).

- **Units.** Each top-level statement of a module's code (comments and strings blanked, except
  strings that are one identifier, such as ``"RANK"``) is one unit, nested definitions included.
  A ``def`` or ``class`` binds its name (and the names its ``global`` statements list); an
  assignment the names left of its first ``=``; a compound statement (``if``, ``try``...) what
  each of its lines defines or assigns.
- **Offering.** A unit offers when its text holds a word of the vocabulary, or it calls, uses as
  a decorator or as a base class a name that offers: a module-level name bound by an offering unit,
  or an imported name that resolves to an offering name of its module (``from m import f``,
  ``import pkg.m`` then ``pkg.m.f()``). Those are the only ways the analysis follows a call into
  another function (``scopes._helper_key``, ``_is_rank_zero_decorator``, ``_class_ref``): a name
  passed as a value, or a class called to make an instance, gives it nothing to follow. An import
  binds names module-wide, and re-exports what it reaches (a module object offers when the module
  offers anything).
- **Star imports offer nothing.** The analysis binds no name from ``from m import *``
  (``symbols.Imports.add_import_from`` and ``scopes._relative_import`` skip it), so a call
  through one resolves to nothing in any module's walk, and neither a file nor a summary can
  gain a symmetric call from it. (Counting them as reads of the whole module made the
  candidacy of every package ``__init__`` that star-imports its submodules read all of their
  summaries: a cold run of transformers computed 2,503 summaries, 898 without.) Should the
  analysis learn to follow them, this room must count them again.
- **Vocabularies.** One graph answers two questions: what a summary may hold (symmetric calls and
  rank sources: ``prefilter.contribution_words``) and what makes a candidate (symmetric calls:
  ``prefilter.symmetric_words``). A pair's word (``save`` with ``dist``) counts only where the
  module holds the receiver part, and a ``dist`` word only on a name that qualifies to
  ``torch.distributed``.
- **Fixpoint.** Offered names only grow, so they are computed to a fixpoint over every module
  reached, import cycles included.

Every approximation errs towards offering: units merge where the text is ambiguous (an unbalanced
bracket; a triple-quoted f-string makes the whole module one unit), a class offers as a whole, and
a module whose bytes are not ASCII-compatible offers everything. ``Project(gated=False)`` (the
prefilter off) summarises every module instead: the tests compare the two.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from hashlib import blake2b

from esper_lint.analysis.project import ProjectIndex, resolve_relative

# A reference an importer resolves: (module, name in it), or (module, None) for the module object.
Target = tuple[str, "str | None"]
Chain = tuple[str, ...]  # a dotted name as read: ("dist", "barrier")
# A read that can carry a call to an importer: the target, and whether the target itself is
# called (``C(...)``: an instance of a class, which gives the analysis no call to follow).
Read = tuple[Target, bool]
PairWords = dict[bytes, frozenset[str]]  # a pair's receiver part (lowered) -> its words

_IDENTIFIER = rb"[A-Za-z_][A-Za-z0-9_]*"
_DOTTED = _IDENTIFIER + rb"(?:[ \t]*\.[ \t]*" + _IDENTIFIER + rb")*"
# A dotted name, not the tail of another (``f().x``: its words are checked anyway).
_CHAIN = re.compile(rb"(?<![\w.])" + _DOTTED)
_WORD = re.compile(_IDENTIFIER)
_UNIT_START = re.compile(rb"^[^ \t\r\n\f]", re.MULTILINE)
_CONTINUES = re.compile(rb"(?:elif|else|except|finally|case)\b")
_DEF = re.compile(rb"^(?:async[ \t]+)?(?:def|class)[ \t]+(" + _IDENTIFIER + rb")", re.MULTILINE)
_GLOBAL = re.compile(rb"\bglobal[ \t]+([\w \t,]+)")
_COMPOUND = re.compile(rb"(?:if|for|while|try|with|async|match)\b")
_STATEMENT_KEYWORD = re.compile(
    rb"(?:if|elif|else|for|while|try|except|finally|with|async|match|case|def|class|return|"
    rb"raise|pass|break|continue|del|assert|import|from|global|nonlocal|yield|await)\b"
)
_FOR_TARGETS = re.compile(rb"\bfor[ \t]+(.+?)[ \t]+in\b")
_AS_TARGET = re.compile(rb"\bas[ \t]+([A-Za-z_][A-Za-z0-9_]*)")
_WALRUS_TARGET = re.compile(rb"([A-Za-z_][A-Za-z0-9_]*)[ \t]*:=")
_IMPORT_START = re.compile(rb"(?:import|from)\b")
_FROM_IMPORT = re.compile(
    rb"(?:^|;)[ \t]*from[ \t]+(?P<dots>\.*)[ \t]*(?P<module>[\w.]*)[ \t]+import[ \t]+"
    rb"(?P<names>\([^)]*\)|[^\n;]*)",
    re.MULTILINE,
)
_PLAIN_IMPORT = re.compile(rb"(?:^|;)[ \t]*import[ \t]+(?P<names>[^\n;]*)", re.MULTILINE)
_FSTRING_TRIPLE = re.compile(rb"""[fF][rRbB]?(?:\"\"\"|''')|[rRbB][fF](?:\"\"\"|''')""")
_BRACKETS_OPEN = (b"(", b"[", b"{")
_BRACKETS_CLOSE = (b")", b"]", b"}")
_KEYWORDS = frozenset(keyword.kwlist) | frozenset(keyword.softkwlist)


@dataclass(frozen=True)
class Unit:
    binds: frozenset[str]
    words: tuple[bool, ...]  # per vocabulary: holds one of its words
    local_reads: frozenset[str]  # heads of chains bound by other units of the module
    external: frozenset[Read]  # what its reads of imported names resolve to


@dataclass(frozen=True)
class ModuleNames:
    units: tuple[Unit, ...]
    imports: frozenset[str]  # the project modules its references reach
    classes: frozenset[str] = frozenset()  # names bound only by class statements
    opaque: bool = False  # unreadable as text: offers everything


def _segments(code: bytes) -> Iterator[bytes]:
    """The text of each top-level statement: a line at column 0, outside brackets, that is not a
    continuation (``else:``, a line after a backslash, a ``def`` after its decorators)."""
    starts = [m.start() for m in _UNIT_START.finditer(code)]
    depth = 0
    unit_start = 0
    previous = 0
    for start in starts:
        piece = code[previous:start]
        depth += sum(piece.count(b) for b in _BRACKETS_OPEN)
        depth -= sum(piece.count(b) for b in _BRACKETS_CLOSE)
        previous = start
        if start == 0 or depth != 0 or code[start : start + 1] in (b")", b"]", b"}"):
            continue
        before = code[unit_start:start].rstrip(b" \t\r\n\f")
        if before.endswith(b"\\") or _CONTINUES.match(code, start):
            continue
        if before and _only_decorators(code[unit_start:start]):
            continue
        yield code[unit_start:start]
        unit_start = start
    yield code[unit_start:]


def _only_decorators(text: bytes) -> bool:
    lines = [line for line in text.splitlines() if line.strip()]
    heads = [line for line in lines if line[:1] not in (b" ", b"\t")]
    return bool(heads) and all(line.startswith(b"@") for line in heads)


def _binds(unit: bytes) -> frozenset[str]:
    body = unit.lstrip()
    while body.startswith(b"@"):  # a decorated definition: its def line follows
        match = _DEF.search(body)
        if match is None:
            break
        body = body[match.start() :]
    definition = _DEF.match(body)
    if definition is not None:
        names = {definition.group(1).decode("ascii")}
        for listed in _GLOBAL.findall(unit):
            names.update(_words(listed))
        return frozenset(names)
    if _COMPOUND.match(body) or body.startswith(b"@"):
        return _compound_binds(unit)
    return _line_binds(body)


def _line_binds(line: bytes) -> frozenset[str]:
    """What one simple statement may bind: the names left of its first ``=``, else its first name
    (``registry.update(...)`` changes ``registry``)."""
    target, equals, _ = _split_assignment(line)
    if equals:
        return frozenset(_words(target))
    first = _WORD.match(line)
    if first is None or first.group().decode("ascii") in _KEYWORDS:
        return frozenset()
    return frozenset([first.group().decode("ascii")])


def _compound_binds(unit: bytes) -> frozenset[str]:
    """What an ``if``/``try``/``for``/``with`` block may bind at module level: per line, what a
    simple statement binds, defined names, loop and ``as`` targets, walrus targets, and the
    names of its ``global`` statements (a line inside brackets counts as one too: more names,
    never fewer)."""
    names: set[str] = set()
    for raw in unit.splitlines():
        line = raw.strip()
        if not line:
            continue
        keyword_line = _STATEMENT_KEYWORD.match(line)
        if keyword_line is None:
            names |= _line_binds(line)
        definition = _DEF.match(line)
        if definition is not None:
            names.add(definition.group(1).decode("ascii"))
        for pattern in (_FOR_TARGETS, _AS_TARGET, _WALRUS_TARGET, _GLOBAL):
            for found in pattern.findall(line):
                names.update(_words(found))
    return frozenset(names)


def _split_assignment(body: bytes) -> tuple[bytes, bool, bytes]:
    """The text left of the first ``=`` that is not part of a comparison, and the rest (inside
    brackets too: ``f(a=1)`` binds ``f`` and ``a``, more names than it does, never fewer)."""
    for match in re.finditer(rb"(?<![=!<>])=(?!=)", body):
        return body[: match.start()], True, body[match.end() :]
    return body, False, b""


def _words(text: bytes) -> Iterator[str]:
    for match in _WORD.finditer(text):
        word = match.group().decode("ascii")
        if word not in _KEYWORDS:
            yield word


# A dotted name and the bracket that calls it, on the next line too (``sync_all\n(...)`` inside
# brackets): a false match only makes more units offer.
_CALLED = re.compile(rb"(?<![\w.])(" + _DOTTED + rb")\s*\(")
_DECORATOR = re.compile(rb"^[ \t]*@[ \t]*(" + _DOTTED + rb")", re.MULTILINE)
_CLASS_HEADER = re.compile(rb"^[ \t]*class[ \t]+" + _IDENTIFIER + rb"[ \t]*\(", re.MULTILINE)


def _calls(text: bytes) -> set[tuple[Chain, bool]]:
    """The dotted names through which the analysis can follow a call out of ``text``: called
    ones (``f(...)``, ``pkg.comm.sync(...)``; marked, since calling a class makes an instance),
    decorators, and the bases of classes. Other reads (``f`` passed as a value) give the
    analysis nothing to follow: it resolves calls, decorators and bases only
    (``scopes._helper_key``, ``_is_rank_zero_decorator``, ``_class_ref``)."""
    found: set[tuple[Chain, bool]] = set()
    for raw in set(_CALLED.findall(text)):
        chain = _split(raw)
        if chain[0] not in _KEYWORDS:
            found.add((chain, True))
    for raw in set(_DECORATOR.findall(text)):
        found.add((_split(raw), False))
    for match in _CLASS_HEADER.finditer(text):
        found.update((chain, False) for chain in _chains(_bracketed(text, match.end())))
    return found


def _split(raw: bytes) -> Chain:
    return tuple(p.strip().decode("ascii") for p in raw.split(b"."))


def _bracketed(text: bytes, start: int) -> bytes:
    """The text from ``start`` (just after an opening bracket) to its closing bracket."""
    depth = 1
    for index in range(start, min(len(text), start + 4096)):
        char = text[index : index + 1]
        if char in _BRACKETS_OPEN:
            depth += 1
        elif char in _BRACKETS_CLOSE:
            depth -= 1
            if depth == 0:
                return text[start:index]
    return text[start : start + 4096]


def _chains(text: bytes) -> set[Chain]:
    found = set()
    for raw in set(_CHAIN.findall(text)):
        parts = _split(raw)
        if parts[0] not in _KEYWORDS:
            found.add(parts)
    return found


def _import_names(text: bytes) -> Iterator[tuple[str, str]]:
    """(imported, bound as) of each name in ``a, b as c`` or ``(a,\\n b)``."""
    for part in text.decode("ascii", errors="replace").strip("()\\ \t\r\n").split(","):
        pieces = part.replace("\\", " ").split()
        if not pieces:
            continue
        if len(pieces) >= 3 and pieces[-2] == "as":
            yield pieces[0], pieces[-1]
        else:
            yield pieces[0], pieces[0]


@dataclass(frozen=True)
class _Bindings:
    targets: dict[str, list[tuple[str, tuple[str, ...]]]]  # local name -> (module, attributes)
    # ``import a.b.c`` binds ``a``, through which an importer reaches ``a.b.c`` too
    submodules: dict[str, list[str]]


def _bindings(code: bytes, module: str, is_package: bool) -> _Bindings:
    joined = code.replace(b"\\\r\n", b" ").replace(b"\\\n", b" ")
    targets: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
    submodules: dict[str, list[str]] = {}
    for match in _FROM_IMPORT.finditer(joined):
        tail = match.group("module").decode("ascii", errors="replace")
        level = len(match.group("dots"))
        base = resolve_relative(module, is_package, level, tail) if level else tail
        if not base:
            continue
        for imported, bound in _import_names(match.group("names")):
            if imported != "*":  # binds no name the analysis follows (see the docstring)
                targets.setdefault(bound, []).append((base, (imported,)))
    for match in _PLAIN_IMPORT.finditer(joined):
        for imported, bound in _import_names(match.group("names")):
            if bound == imported:  # ``import a.b.c`` binds ``a``
                head = imported.split(".")[0]
                targets.setdefault(head, []).append((head, ()))
                if imported != head:
                    submodules.setdefault(head, []).append(imported)
            else:
                targets.setdefault(bound, []).append((imported, ()))
    return _Bindings(targets, submodules)


@dataclass(frozen=True)
class Vocabulary:
    """What makes a unit offer by itself: its text holds one of ``words``, or the word of a pair
    (word, receiver part) in a module whose text holds the receiver part."""

    words: re.Pattern[bytes]
    pairs: tuple[tuple[bytes, frozenset[str]], ...]  # lowered receiver part -> its words

    @classmethod
    def of(cls, words: Iterable[str], pairs: Iterable[tuple[str, str]]) -> Vocabulary:
        from esper_lint.prefilter import names_pattern

        by_part: dict[bytes, set[str]] = {}
        for word, part in pairs:
            by_part.setdefault(part.lower().encode("utf-8"), set()).add(word)
        parts = tuple((part, frozenset(w)) for part, w in sorted(by_part.items()))
        return cls(names_pattern(words), parts)

    def pair_words(self, lowered_code: bytes) -> PairWords:
        """The pairs' words that may count in a module, by receiver part."""
        return {part: words for part, words in self.pairs if part in lowered_code}

    def holds_word(
        self, segment: bytes, chains: Iterable[Chain], pairs: PairWords, bindings: _Bindings
    ) -> bool:
        if self.words.search(segment) is not None:
            return True
        for part, words in pairs.items():
            for chain in chains:
                if words.isdisjoint(chain):
                    continue
                if part != b"dist" or _names_torch_distributed(chain, words, bindings):
                    return True
        return False


def _names_torch_distributed(chain: Chain, words: frozenset[str], bindings: _Bindings) -> bool:
    """Whether ``chain`` qualifies to a ``torch.distributed`` name. The ``dist`` pairs stand for
    those: ``symbols._is_collective`` and the implicit collectives qualify their calls so
    (``dist.barrier`` even unimported, ``torch.distributed.barrier``, ``dcp.save`` after
    ``import torch.distributed.checkpoint as dcp``), so "distribution" and ``json.load`` do not
    count. The names are qualified as ``symbols.Imports.qualify`` does, by every binding."""
    if chain[-1] not in words:
        return False
    head, rest = chain[0], chain[1:]
    bound = bindings.targets.get(head)
    if not bound:
        return head == "dist" or ".".join(chain).startswith("torch.distributed.")
    return any(
        ".".join((module, *attrs, *rest)).startswith("torch.distributed.")
        for module, attrs in bound
    )


def _class_names(parsed: list[tuple[bytes, frozenset[str]]]) -> frozenset[str]:
    """Names that only ``class`` statements bind (a name also bound otherwise may be a
    function)."""
    classes: set[str] = set()
    others: set[str] = set()
    for segment, binds in parsed:
        body = segment.lstrip()
        while body.startswith(b"@"):
            match = _DEF.search(body)
            if match is None:
                break
            body = body[match.start() :]
        (classes if body.startswith(b"class") else others).update(binds)
    return frozenset(classes - others)


class OfferGraph:
    """The offered names of one project's modules, per vocabulary, to a fixpoint over the modules
    asked about. Each module's text is read once for all vocabularies."""

    def __init__(self, index: ProjectIndex, vocabularies: Sequence[Vocabulary]) -> None:
        self.index = index
        self.vocabularies = tuple(vocabularies)
        self.modules: dict[str, ModuleNames | None] = {}
        self.offered: tuple[dict[str, set[str]], ...] = tuple({} for _ in self.vocabularies)
        self._importers: dict[str, set[str]] = {}
        self._unsettled: tuple[set[str], ...] = tuple(set() for _ in self.vocabularies)
        self._resolved: dict[tuple[str, tuple[str, ...]], Target | None] = {}
        # Per vocabulary, what is known of a settled module: its offered set no longer changes
        # (everything it imports, transitively, was loaded before it settled), so neither do
        # these. Every file checked asks for them again, for each module it depends on.
        self._digests: tuple[dict[str, str], ...] = tuple({} for _ in self.vocabularies)
        self._quiet_reads: tuple[dict[str, tuple[str, ...]], ...] = tuple(
            {} for _ in self.vocabularies
        )

    def offers(self, name: str, kind: int = 0) -> bool:
        """Whether importing module ``name`` can give an importer anything of vocabulary
        ``kind``."""
        self._load(name)
        self._settle(kind)
        return self._offers_module(name, kind)

    def imports(self, name: str) -> frozenset[str]:
        self._load(name)
        facts = self.modules.get(name)
        return facts.imports if facts is not None else frozenset()

    def read_targets(self, source: bytes, name: str, is_package: bool) -> set[Read]:
        """What code ``source`` (module ``name``) can call through its project imports."""
        from esper_lint.prefilter import code_only

        code = code_only(source)
        bindings = _bindings(code, name, is_package)
        reads: set[Read] = set()
        for chain, called in _calls(code):
            reads.update(r for r in self._reads(bindings, chain, called) if r[0][0] != name)
        return reads

    def offering_modules(self, reads: Iterable[Read], kind: int) -> set[str]:
        """The modules of the ``reads`` that offer something of vocabulary ``kind``."""
        reads = list(reads)
        for module in {target[0] for target, _ in reads}:
            self._load(module)
        self._settle(kind)
        return {read[0][0] for read in reads if self._read_offers(read, kind)}

    def quiet_closure(self, modules: Iterable[str], kind: int) -> set[str]:
        """The modules whose text decides that ``modules`` still offer what they do not offer
        now: each one, and what its units that offer nothing read, transitively. (A unit that
        offers already cannot make an importer that it gave nothing start offering.)"""
        closure: set[str] = set()
        pending = list(modules)
        while pending:
            module = pending.pop()
            if module not in closure:
                closure.add(module)
                pending.extend(self._quiet_reads_of(module, kind))
        return closure

    def _quiet_reads_of(self, module: str, kind: int) -> tuple[str, ...]:
        """The modules read by ``module``'s units that offer nothing."""
        known = self._quiet_reads[kind].get(module)
        if known is not None:
            return known
        self._load(module)
        self._settle(kind)
        facts = self.modules.get(module)
        reads: set[str] = set()
        if facts is not None:
            offered = self.offered[kind][module]
            for unit in facts.units:
                if not unit.binds <= offered:
                    reads.update(target[0] for target, _ in unit.external)
        found = self._quiet_reads[kind][module] = tuple(sorted(reads))
        return found

    def digest(self, name: str, kind: int) -> str:
        """Changes when what module ``name`` offers in vocabulary ``kind`` changes."""
        known = self._digests[kind].get(name)
        if known is not None:
            return known
        self._load(name)
        self._settle(kind)
        facts = self.modules.get(name)
        if facts is None or facts.opaque:
            material = "opaque" if facts is not None else "absent"
        else:
            # a class's instances offer nothing: a function of the same name would
            material = "\n".join(
                f"{offered} class" if offered in facts.classes else offered
                for offered in sorted(self.offered[kind].get(name, ()))
            )
        found = self._digests[kind][name] = blake2b(
            material.encode("utf-8"), digest_size=16
        ).hexdigest()
        return found

    def _offers_module(self, name: str, kind: int) -> bool:
        facts = self.modules.get(name)
        return facts is not None and (facts.opaque or bool(self.offered[kind][name]))

    def _offers(self, target: Target, kind: int) -> bool:
        module, name = target
        facts = self.modules.get(module)
        if facts is None:
            return False
        if name is None or facts.opaque:
            return self._offers_module(module, kind)
        return name in self.offered[kind][module]

    def _read_offers(self, read: Read, kind: int) -> bool:
        target, called = read
        if called:
            facts = self.modules.get(target[0])
            if facts is not None and not facts.opaque and target[1] in facts.classes:
                return False  # an instance: the analysis follows no call into the class
        return self._offers(target, kind)

    def _load(self, name: str) -> None:
        pending = [name]
        while pending:
            module = pending.pop()
            if module in self.modules:
                continue
            facts = self._read(module)
            self.modules[module] = facts
            for offered, unsettled in zip(self.offered, self._unsettled, strict=True):
                offered[module] = set()
                unsettled.add(module)
            if facts is None:
                continue
            for imported in facts.imports:
                self._importers.setdefault(imported, set()).add(module)
                pending.append(imported)

    def _read(self, name: str) -> ModuleNames | None:
        from esper_lint.prefilter import code_only, declares_foreign_codec

        path = self.index.module_file(name)
        source = self.index.source(path) if path is not None else None
        if path is None or source is None:
            return None
        if declares_foreign_codec(source) or b"\0" in source:
            return ModuleNames((), frozenset(), opaque=True)
        code = code_only(source, keep_identifier_strings=True)
        bindings = _bindings(code, name, path.name == "__init__.py")
        lowered = code.lower()
        pair_words = [vocabulary.pair_words(lowered) for vocabulary in self.vocabularies]
        segments = [code] if _FSTRING_TRIPLE.search(code) else list(_segments(code))
        parsed = [
            (segment, _binds(segment))
            for segment in segments
            if not _IMPORT_START.match(segment.lstrip())
        ]
        local_names = set().union(*(binds for _, binds in parsed)) if parsed else set()
        classes = _class_names(parsed)
        imports: set[str] = set()
        units: list[Unit] = []
        for segment, binds in parsed:
            if not binds:
                continue  # binds nothing an importer could name
            chains = _chains(segment)
            words = tuple(
                vocabulary.holds_word(segment, chains, pairs, bindings)
                for vocabulary, pairs in zip(self.vocabularies, pair_words, strict=True)
            )
            external: set[Read] = set()
            local_reads: set[str] = set()
            for chain, called in _calls(segment):
                head = chain[0]
                if head in local_names and head not in binds:
                    if not (called and len(chain) == 1 and head in classes):
                        local_reads.add(head)
                external.update(self._reads(bindings, chain, called))
            imports.update(target[0] for target, _ in external)
            units.append(Unit(binds, words, frozenset(local_reads), frozenset(external)))
        no_words = tuple(False for _ in self.vocabularies)
        for bound, targets in bindings.targets.items():
            reached = [*targets, *((m, ()) for m in bindings.submodules.get(bound, ()))]
            for module, attrs in reached:
                target = self._resolve(module, attrs)
                if target is not None:
                    read = frozenset([(target, False)])
                    units.append(Unit(frozenset([bound]), no_words, frozenset(), read))
                    imports.add(target[0])
        imports.discard(name)
        return ModuleNames(tuple(units), frozenset(imports), classes)

    def _reads(self, bindings: _Bindings, chain: Chain, called: bool) -> Iterator[Read]:
        """What reading ``chain`` through the module's imports reaches; a called chain that
        ends at the name it reaches may be a class being instantiated."""
        for module, attrs in bindings.targets.get(chain[0], ()):
            path = attrs + chain[1:]
            target = self._resolve(module, path)
            if target is None:
                continue
            steps = target[0].count(".") - module.count(".")
            yield target, called and target[1] is not None and steps + 1 == len(path)

    def _resolve(self, module: str, attrs: tuple[str, ...]) -> Target | None:
        """The project module and name ``module.attrs`` reaches (submodules followed), or None
        when it leaves the project."""
        key = (module, attrs)
        if key in self._resolved:
            return self._resolved[key]
        current = module
        found: Target | None = None
        if not self.index.has_top_level(module.partition(".")[0]):
            pass  # outside the project (``torch.distributed``)
        elif self.index.module_file(current) is not None or attrs:
            found = (current, None) if self.index.module_file(current) is not None else None
            for attr in attrs:
                deeper = f"{current}.{attr}"
                if self.index.module_file(deeper) is not None:
                    current, found = deeper, (deeper, None)
                    continue
                found = (current, attr) if self.index.module_file(current) is not None else None
                break
        self._resolved[key] = found
        return found

    def _settle(self, kind: int) -> None:
        unsettled = self._unsettled[kind]
        while unsettled:
            module = unsettled.pop()
            if self._grow(module, kind):
                unsettled.update(self._importers.get(module, ()))

    def _grow(self, module: str, kind: int) -> bool:
        """Add what ``module`` now offers, to its own fixpoint; whether anything was added."""
        facts = self.modules.get(module)
        if facts is None or facts.opaque:
            return False
        offered = self.offered[kind][module]
        before = len(offered)
        changed = True
        while changed:
            changed = False
            for unit in facts.units:
                if unit.binds <= offered:
                    continue
                if (
                    unit.words[kind]
                    or not unit.local_reads.isdisjoint(offered)
                    or any(self._read_offers(read, kind) for read in unit.external)
                ):
                    offered |= unit.binds
                    changed = True
        return len(offered) > before

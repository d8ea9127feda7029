"""Path conditions: the boolean formula under which a call runs, and whether it depends on the rank.

A condition's test is split into atoms joined by ``and``/``or``/``not``. An atom is *uniform*
(the same on every rank: configuration, sizes, flags computed from them), *rank* (may differ
across ranks) or a *membership* test of a process group. Atoms are identified by their text, so
``in_order`` in an ``if`` and in its ``elif`` are one variable.

A path condition does not depend on the rank when, for every assignment of its uniform atoms, its
value is the same for every assignment of its rank atoms: the call then runs on every rank or on
none. For a collective on group G, G's membership tests are fixed to true (only G's members take
part), which makes ``if rank in ranks_of_G: broadcast(group=G)`` symmetric within G. Rank atoms
are treated as independent of each other, which can only err towards "depends on the rank".
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import Enum
from itertools import product

import libcst as cst

from esper_lint.analysis.groups import Group, Membership


class AtomKind(Enum):
    UNIFORM = "uniform"
    RANK = "rank"
    MEMBERSHIP = "membership"


@dataclass(frozen=True)
class Atom:
    """``text`` identifies the atom (for a membership test: the group's origins, so that
    ``rank in ranks`` and ``rank not in ranks`` are one atom); ``shown`` is how it reads.

    An atom whose code is long to render (a call with arguments) is identified by its node
    instead, and rendered only for a message: two such atoms are two variables, which can only
    err towards "depends on the rank".
    """

    kind: AtomKind
    text: str
    membership: Membership | None = None
    shown: str = ""
    node: cst.CSTNode | None = field(default=None, compare=False)
    module: cst.Module | None = field(default=None, compare=False)

    @property
    def display(self) -> str:
        if self.shown:
            return self.shown
        if self.node is not None and self.module is not None:
            return " ".join(self.module.code_for_node(self.node).split())
        return self.text

    def is_member_of_all(self, groups: Sequence[Group]) -> bool:
        """A membership test of every group in ``groups`` (never true for no groups)."""
        m = self.membership
        return m is not None and bool(groups) and all(m.matches(g) for g in groups)


@dataclass(frozen=True)
class Not:
    operand: Formula


@dataclass(frozen=True)
class And:
    operands: tuple[Formula, ...]


@dataclass(frozen=True)
class Or:
    operands: tuple[Formula, ...]


Formula = Atom | Not | And | Or
TRUE = And(())
# Above this many distinct atoms the truth table is not built: "depends on the rank".
MAX_ATOMS = 12


def conjunction(parts: Sequence[Formula]) -> Formula:
    return parts[0] if len(parts) == 1 else And(tuple(parts))


def atoms(formula: Formula) -> Iterator[Atom]:
    if isinstance(formula, Atom):
        yield formula
    elif isinstance(formula, Not):
        yield from atoms(formula.operand)
    else:
        for operand in formula.operands:
            yield from atoms(operand)


def _evaluate(formula: Formula, value: Callable[[Atom], bool]) -> bool:
    if isinstance(formula, Atom):
        return value(formula)
    if isinstance(formula, Not):
        return not _evaluate(formula.operand, value)
    if isinstance(formula, And):
        return all(_evaluate(f, value) for f in formula.operands)
    return any(_evaluate(f, value) for f in formula.operands)


def _key(atom: Atom) -> tuple[AtomKind, str]:
    return atom.kind, atom.text


def free_rank_atoms(formula: Formula, groups: Sequence[Group]) -> list[Atom]:
    """The atoms that may differ across the ranks taking part (``groups``' members, if any)."""
    seen: dict[tuple[AtomKind, str], Atom] = {}
    for atom in atoms(formula):
        if atom.kind is AtomKind.UNIFORM or atom.is_member_of_all(groups):
            continue
        seen.setdefault(_key(atom), atom)
    return list(seen.values())


def depends_on_rank(formula: Formula, groups: Sequence[Group] = ()) -> bool:
    """Whether the ranks taking part can disagree on ``formula`` (see the module docstring)."""
    ranked = free_rank_atoms(formula, groups)
    if not ranked:
        return False
    uniform = list({_key(a): a for a in atoms(formula) if a.kind is AtomKind.UNIFORM}.values())
    if len(ranked) + len(uniform) > MAX_ATOMS:
        return True
    rank_keys = [_key(a) for a in ranked]
    uniform_keys = [_key(a) for a in uniform]
    for uniform_values in product((False, True), repeat=len(uniform_keys)):
        fixed = dict(zip(uniform_keys, uniform_values, strict=True))
        outcomes = set()
        for rank_values in product((False, True), repeat=len(rank_keys)):
            values = {**fixed, **dict(zip(rank_keys, rank_values, strict=True))}
            outcomes.add(_evaluate(formula, partial_value(values)))
            if len(outcomes) > 1:
                return True
    return False


def partial_value(values: dict[tuple[AtomKind, str], bool]) -> Callable[[Atom], bool]:
    """An atom's value: looked up, or true (a matched membership test, fixed for members)."""
    return lambda atom: values.get(_key(atom), True)


def memberships(formula: Formula) -> list[Atom]:
    return [atom for atom in atoms(formula) if atom.kind is AtomKind.MEMBERSHIP]

"""Which calls must run symmetrically: lifecycle calls and collectives, resolved through imports.

The name tables themselves live in ``names`` (no libcst there, for the engine's prefilter). A file
can only yield ESP001-ESP004 if it contains one of those names as a word: same-file helpers always
contain the underlying call in the same file, and an import alias
(``from torch.distributed import barrier as b``) still spells the original name in the import.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

import libcst as cst

from esper_lint.analysis.names import (  # noqa: F401  (re-exported)
    ACCELERATE_UTILS,
    ACCELERATE_UTILS_COLLECTIVES,
    ACCELERATOR_COLLECTIVES,
    ANY_RECEIVER_COLLECTIVES,
    DIST_COLLECTIVES,
    FABRIC_COLLECTIVES,
    LIFECYCLE_NAMES,
    MPI4PY,
    MPI_COLLECTIVES,
    MPI_COMMUNICATOR_WORD,
    SELF_COLLECTIVES,
    STRATEGY_COLLECTIVES,
    TORCH_DISTRIBUTED,
    symmetric_call_names,
)
from esper_lint.config import Config


class CallKind(Enum):
    LIFECYCLE = "lifecycle"
    COLLECTIVE = "collective"
    IMPLICIT = "implicit collective"  # an entry of the implicit-collectives table (ESP006)


def dotted_name(node: cst.BaseExpression) -> str | None:
    """``a.b.c`` for a chain of names and attributes, else None."""
    parts: list[str] = []
    while isinstance(node, cst.Attribute):
        parts.append(node.attr.value)
        node = node.value
    if not isinstance(node, cst.Name):
        return None
    parts.append(node.value)
    return ".".join(reversed(parts))


def final_name(node: cst.BaseExpression) -> str | None:
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        return node.attr.value
    return None


class Imports:
    """Local name -> fully qualified name, from the file's import statements."""

    def __init__(self) -> None:
        self.aliases: dict[str, str] = {}

    def add_import(self, node: cst.Import) -> None:
        for alias in node.names:
            full = dotted_name(alias.name)
            if full is None:
                continue
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                self.aliases[alias.asname.name.value] = full
            else:
                head = full.split(".", 1)[0]
                self.aliases[head] = head

    def add_import_from(self, node: cst.ImportFrom) -> None:
        if node.relative or node.module is None or isinstance(node.names, cst.ImportStar):
            return
        module = dotted_name(node.module)
        if module is None:
            return
        self.add_from(module, node.names)

    def add_from(self, module: str, names: Sequence[cst.ImportAlias]) -> None:
        """``from module import a, b as c``: each local name stands for ``module.<name>``."""
        for alias in names:
            if not isinstance(alias.name, cst.Name):
                continue
            local = alias.name.value
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                local = alias.asname.name.value
            self.aliases[local] = f"{module}.{alias.name.value}"

    def imports_module(self, package: str) -> bool:
        """Whether some import of the file names ``package`` or a module inside it."""
        prefix = f"{package}."
        return any(full == package or full.startswith(prefix) for full in self.aliases.values())

    def qualify(self, dotted: str) -> str:
        head, _, rest = dotted.partition(".")
        full_head = self.aliases.get(head)
        if full_head is None:
            # `dist` is the universal spelling of torch.distributed; accept it unimported.
            full_head = TORCH_DISTRIBUTED if head == "dist" else head
        return f"{full_head}.{rest}" if rest else full_head


@dataclass(frozen=True)
class SymmetricNames:
    """The configured lifecycle names, and the classifier of a callee expression."""

    lifecycle: frozenset[str]

    @classmethod
    def from_config(cls, config: Config) -> SymmetricNames:
        return cls(LIFECYCLE_NAMES | frozenset(config.extend_symmetric_calls))

    def classify(self, func: cst.BaseExpression, imports: Imports) -> CallKind | None:
        name = final_name(func)
        if name is None:
            return None
        if name in self.lifecycle:
            return CallKind.LIFECYCLE
        if _is_collective(func, name, imports):
            return CallKind.COLLECTIVE
        return None


def _is_collective(func: cst.BaseExpression, name: str, imports: Imports) -> bool:
    dotted = dotted_name(func)
    if dotted is not None:
        qualified = imports.qualify(dotted)
        module, _, attr = qualified.rpartition(".")
        if module == TORCH_DISTRIBUTED and attr in DIST_COLLECTIVES:
            return True
        if module == ACCELERATE_UTILS and attr in ACCELERATE_UTILS_COLLECTIVES:
            return True
    if not isinstance(func, cst.Attribute):
        return False
    if name in ANY_RECEIVER_COLLECTIVES:
        return True
    receiver = final_name(func.value)
    if receiver is None:
        return False
    receiver = receiver.lower()
    if name in ACCELERATOR_COLLECTIVES and "accelerator" in receiver:
        return True
    if name in STRATEGY_COLLECTIVES and receiver.endswith("strategy"):
        return True
    if name in FABRIC_COLLECTIVES and "fabric" in receiver:
        return True
    if name in MPI_COLLECTIVES and _is_mpi_communicator(func.value, receiver, imports):
        return True
    return name in SELF_COLLECTIVES and receiver == "self"


def _is_mpi_communicator(node: cst.BaseExpression, lowered_name: str, imports: Imports) -> bool:
    """``MPI.COMM_WORLD``, or a ``comm``-named value in a file that imports mpi4py."""
    dotted = dotted_name(node)
    if dotted is not None:
        qualified = imports.qualify(dotted)
        if qualified.startswith(f"{MPI4PY}."):
            return True
        if qualified.startswith("torch."):  # torch.cuda.comm: one process's devices
            return False
    return MPI_COMMUNICATOR_WORD in lowered_name and imports.imports_module(MPI4PY)

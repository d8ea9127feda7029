"""What a rule's ``fix`` hook returns."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import libcst as cst


class Applicability(Enum):
    """ruff's terms: a safe fix keeps the program's meaning; an unsafe one may change it and
    is applied only with ``--unsafe-fixes``."""

    SAFE = "safe"
    UNSAFE = "unsafe"


@dataclass(frozen=True)
class Fix:
    """A codemod for one finding: ``transform`` maps the module to the fixed module."""

    description: str
    applicability: Applicability
    transform: Callable[[cst.Module], cst.Module]

"""Effective configuration: [tool.esper-lint] of the nearest pyproject.toml plus CLI overrides."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Config:
    """What the analysis and the engine need to know.

    The ``extend_*`` fields change what the analysis finds, so they are part of the cache key.
    ``select``/``ignore``/``per_file_ignores`` only filter findings after the fact.
    """

    select: tuple[str, ...] = ("ESP",)
    ignore: tuple[str, ...] = ()
    extend_symmetric_calls: tuple[str, ...] = ()
    extend_rank_sources: tuple[str, ...] = ()
    extend_data_sources: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    per_file_ignores: tuple[tuple[str, tuple[str, ...]], ...] = ()
    root: Path = field(default_factory=Path.cwd)

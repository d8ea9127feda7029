"""The registry of rules. Every code the linter can emit has one module here."""

from __future__ import annotations

from esper_lint.rules.base import Rule
from esper_lint.rules.esp001_rank_conditional_lifecycle import RankConditionalLifecycleCall
from esper_lint.rules.esp002_data_dependent_loop_lifecycle import DataDependentLoopLifecycleCall
from esper_lint.rules.esp003_rank_early_exit_lifecycle import RankEarlyExitLifecycleCall
from esper_lint.rules.esp004_rank_dependent_collective import RankDependentCollective
from esper_lint.rules.esp005_rank_local_exit import RankLocalExit
from esper_lint.rules.esp006_rank_dependent_implicit_collective import (
    RankDependentImplicitCollective,
)
from esper_lint.rules.esp100_unused_noqa import UnusedNoqa
from esper_lint.rules.esp900_parse_error import ParseError
from esper_lint.rules.esp901_analysis_error import AnalysisError
from esper_lint.rules.esp902_read_error import ReadError

ALL_RULES: tuple[type[Rule], ...] = tuple(
    sorted(
        (
            RankConditionalLifecycleCall,
            DataDependentLoopLifecycleCall,
            RankEarlyExitLifecycleCall,
            RankDependentCollective,
            RankLocalExit,
            RankDependentImplicitCollective,
            UnusedNoqa,
            ParseError,
            AnalysisError,
            ReadError,
        ),
        key=lambda rule: rule.code,
    )
)


def rule_by_code(code: str) -> type[Rule] | None:
    return next((rule for rule in ALL_RULES if rule.code == code.upper()), None)


def known_codes() -> tuple[str, ...]:
    return tuple(rule.code for rule in ALL_RULES)

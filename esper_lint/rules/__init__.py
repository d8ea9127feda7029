"""The registry of rules. Every code the linter can emit has one module here."""

from __future__ import annotations

from esper_lint.rules.base import Rule

ALL_RULES: tuple[type[Rule], ...] = ()


def rule_by_code(code: str) -> type[Rule] | None:
    return next((rule for rule in ALL_RULES if rule.code == code.upper()), None)


def known_codes() -> tuple[str, ...]:
    return tuple(rule.code for rule in ALL_RULES)

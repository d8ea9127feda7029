"""What every rule module declares: its code, its documentation and its examples.

One source feeds ``esper-lint rule CODE``, ``docs/rules/CODE.md`` and the rule's own tests
(every ``bad`` example must trigger the rule, no ``good`` example may trigger any rule).
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from esper_lint import rule_url

if TYPE_CHECKING:
    import libcst as cst

    from esper_lint.analysis.facts import FileFacts
    from esper_lint.fixes.types import Fix


# The move-out-of-the-branch fix of the rules whose finding is a call under a rank condition
# (ESP001, ESP004): one text for their docs and ``help:`` lines.
MOVE_OUT_HELP = "Move the call out of the rank-dependent branch so that every rank makes it"
MOVE_OUT_DESCRIPTION = """
    Unsafe (`--fix --unsafe-fixes`): moves the call out of the rank-dependent `if` body to
    just after the `if`, when the call is a statement of its own in that body, reads no name
    the body binds, no later statement of the body uses its result or its arguments, and the
    body does not return, raise, break or continue. Unsafe because it changes which ranks
    make the call (that is the point) and runs it after the rest of the body rather than
    before: check that the other ranks are ready to make it there. The fix is applied only if
    the fixed file parses and linting it again removes this finding and adds none.
    """


@dataclass(frozen=True)
class Finding:
    """A rule's verdict on one call; the checker turns it into a positioned Diagnostic."""

    node: cst.CSTNode
    code: str
    message: str


class Rule:
    """Documentation and examples of one diagnostic code.

    Subclasses set the class attributes; the analysis-facing ``check`` interface is declared
    by the subclasses that produce findings from the analysis.
    """

    code: ClassVar[str]
    name: ClassVar[str]
    summary: ClassVar[str]
    what_it_does: ClassVar[str]
    why_bad: ClassVar[str]
    example: ClassVar[str]
    use_instead: ClassVar[str]
    known_limits: ClassVar[str] = ""
    # SARIF rule properties (GitHub code scanning shows the tags and filters on precision).
    tags: ClassVar[tuple[str, ...]] = ("correctness", "distributed")
    precision: ClassVar[str] = "high"
    # One line: what to do instead (the ``help:`` line of the ``full`` output).
    help: ClassVar[str] = ""
    # How the rule's fix changes the code and why it is safe or unsafe ("" if it has none).
    fix_description: ClassVar[str] = ""
    # Before/after of the fix, shown in the docs (tested: --fix turns one into the other).
    fix_example: ClassVar[tuple[str, str] | None] = None
    # Extra examples beyond ``example``/``use_instead``; all are tested.
    bad: ClassVar[tuple[str, ...]] = ()
    good: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def check(cls, facts: FileFacts) -> Iterator[Finding]:
        """Ask the analysis about the file and yield this rule's findings (none by default)."""
        return iter(())

    @classmethod
    def fix(cls, facts: FileFacts, finding: Finding) -> Fix | None:
        """The extension point for fixes: a libcst codemod that removes ``finding``, or None
        when this finding cannot be fixed.

        A rule with a fix overrides this, sets ``fix_description`` (which makes it
        ``fixable()`` and documents the fix) and, ideally, ``fix_example``. The returned
        :class:`~esper_lint.fixes.types.Fix` carries a description, an applicability (unsafe
        unless the rule's docs argue otherwise) and ``transform``, a function from the module
        to the fixed module (usually ``module.visit(SomeCSTTransformer(...))``). The caller
        (:mod:`esper_lint.fixes.apply`) keeps the fix only if the result parses and re-linting
        removes this finding and adds none."""
        return None

    @classmethod
    def fixable(cls) -> bool:
        return bool(cls.fix_description)

    @classmethod
    def bad_examples(cls) -> tuple[str, ...]:
        return (_dedent(cls.example), *(_dedent(e) for e in cls.bad))

    @classmethod
    def good_examples(cls) -> tuple[str, ...]:
        return (_dedent(cls.use_instead), *(_dedent(e) for e in cls.good))

    @classmethod
    def url(cls) -> str:
        return rule_url(cls.code)

    @classmethod
    def markdown(cls) -> str:
        """The rule's documentation page, as printed by ``esper-lint rule`` and in docs/rules."""
        sections = [
            f"# {cls.code}: {cls.name}\n",
            f"{cls.summary}\n",
            "## What it does\n",
            _dedent(cls.what_it_does),
            "## Why is this bad?\n",
            _dedent(cls.why_bad),
            "## Example\n",
            f"```python\n{_dedent(cls.example)}```\n",
            "## Use instead\n",
            f"```python\n{_dedent(cls.use_instead)}```\n",
        ]
        if cls.bad:
            sections += ["## Also reported\n", *(_code_block(e) for e in cls.bad)]
        if cls.good:
            sections += ["## Not reported\n", *(_code_block(e) for e in cls.good)]
        if cls.fix_description:
            sections += ["## Fix\n", _dedent(cls.fix_description)]
            if cls.fix_example is not None:
                before, after = (_dedent(code) for code in cls.fix_example)
                sections += [
                    "Before `esper-lint --fix --unsafe-fixes`:\n",
                    f"```python\n{before}```\n",
                    "After:\n",
                    f"```python\n{after}```\n",
                ]
        if cls.known_limits:
            sections += ["## Known limits\n", _dedent(cls.known_limits)]
        return "\n".join(sections)


def _dedent(text: str) -> str:
    body = textwrap.dedent(text).strip("\n")
    return body + "\n"


def _code_block(example: str) -> str:
    return f"```python\n{_dedent(example)}```\n"

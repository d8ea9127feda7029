"""ESP901: the file could not be analysed (documentation only; the checker reports it)."""

from __future__ import annotations

from esper_lint.rules.base import Rule


class AnalysisError(Rule):
    code = "ESP901"
    name = "analysis-error"
    summary = "File could not be analysed"
    precision = "very-high"
    tags = ("reliability",)
    help = "Simplify the nesting, or report the internal error"
    what_it_does = """
        Reports a file that parsed but could not be analysed, for instance because its code is
        nested so deeply that the analysis runs out of stack. The run goes on with other files.
        """
    why_bad = """
        The file was not checked, so asymmetric calls in it may go unnoticed.
        """
    example = """
        # generated code nested hundreds of levels deep, e.g.
        # x = ((((((((((...))))))))))  with 500 levels, next to a slot.step_epoch() call
        """
    use_instead = """
        # split the expression, or exclude the generated file with `exclude`
        """
    known_limits = """
        Reported whatever `select` says; `ignore` and `per-file-ignores` can drop it.
        """

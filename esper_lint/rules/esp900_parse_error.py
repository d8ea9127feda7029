"""ESP900: the file could not be parsed (documentation only; the checker reports it)."""

from __future__ import annotations

from esper_lint.rules.base import Rule


class ParseError(Rule):
    code = "ESP900"
    name = "parse-error"
    summary = "File could not be parsed"
    precision = "very-high"
    tags = ("reliability",)
    help = "Fix the syntax error so that the file can be checked"
    what_it_does = """
        Reports a file that may hold a symmetric call but cannot be parsed: a syntax error,
        undecodable bytes, a bad coding cookie or NUL bytes. The message carries the parser's
        message. Files that mention no lifecycle or collective name are not parsed, so their
        syntax errors are not reported: esper-lint is not a syntax checker.
        """
    why_bad = """
        A file that cannot be parsed cannot be checked: any asymmetric call in it goes unnoticed.
        """
    example = """
        def end_of_epoch(slot):
            slot.step_epoch(
        """
    use_instead = """
        def end_of_epoch(slot):
            slot.step_epoch()
        """
    known_limits = """
        Reported whatever `select` says; `ignore` and `per-file-ignores` can drop it.
        """

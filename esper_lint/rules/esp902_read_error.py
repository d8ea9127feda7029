"""ESP902: the file could not be read (documentation only; the engine reports it)."""

from __future__ import annotations

from esper_lint.rules.base import Rule


class ReadError(Rule):
    code = "ESP902"
    name = "read-error"
    summary = "File could not be read"
    precision = "very-high"
    tags = ("reliability",)
    help = "Make the file readable, or exclude it"
    what_it_does = """
        Reports a file that could not be read: permission denied, a broken symlink, an I/O
        error. Like ruff's E902.
        """
    why_bad = """
        The file was not checked, so asymmetric calls in it may go unnoticed.
        """
    example = """
        # $ chmod 000 train.py && esper-lint train.py
        # train.py:1:1: ESP902 file could not be read: Permission denied
        """
    use_instead = """
        # $ chmod 644 train.py && esper-lint train.py
        """
    known_limits = """
        Reported whatever `select` says; `ignore` and `per-file-ignores` can drop it.
        """

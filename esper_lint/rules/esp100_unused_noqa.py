"""ESP100: a ``# noqa: ESP...`` that suppresses nothing (the checker reports it)."""

from __future__ import annotations

from esper_lint.rules.base import Rule


class UnusedNoqa(Rule):
    code = "ESP100"
    name = "unused-noqa"
    summary = "Unused `noqa` directive"
    precision = "very-high"
    tags = ("maintainability", "suppression")
    help = "Remove the unused code from the `noqa` comment (`--fix` does it)"
    what_it_does = """
        Reports a coded `# noqa: ESP...` comment naming an esper-lint code that suppresses
        nothing on the lines it covers, like ruff's RUF100. Only `ESP` codes are judged: the
        codes of other tools (`E501`, `B008`) in the same comment are left alone, and so is a
        bare `# noqa`. Off by default: select it with `select = ["ESP100"]`,
        `extend-select = ["ESP1"]` or `--extend-select ESP100` (a plain `ESP` prefix does not
        turn it on).
        """
    why_bad = """
        A suppression that outlives the finding it was written for hides the next real finding on
        that call: after a refactor, a new asymmetric collective on the same line passes
        silently.
        """
    example = """
        import torch.distributed as dist


        def sync(t):
            dist.all_reduce(t)  # noqa: ESP004
        """
    use_instead = """
        import torch.distributed as dist


        def sync(t):
            dist.all_reduce(t)
        """
    fix_description = """
        Safe: removes the unused codes from the comment, and the comment itself when no code
        is left (another tool's codes and any text after the directive stay). Removing a
        suppression that silences nothing changes no finding and no behaviour.
        """
    known_limits = """
        A bare `# noqa` is never reported: it may be there for another tool. Prefer coded
        comments anyway: ruff's RUF100 deletes a bare `# noqa` that silences none of ruff's own
        codes, even with `lint.external = ["ESP"]`, and esper-lint's finding comes back. A file
        esper-lint does not parse (no symmetric call and no coded `noqa: ESP...`) is not judged.
        """

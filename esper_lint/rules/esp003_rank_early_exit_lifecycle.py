"""ESP003: a lifecycle call that an earlier rank-dependent early exit can skip."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from esper_lint.rules.base import Finding, Rule

if TYPE_CHECKING:
    from esper_lint.analysis.facts import FileFacts


class RankEarlyExitLifecycleCall(Rule):
    code = "ESP003"
    name = "rank-early-exit-lifecycle-call"
    summary = "Lifecycle call that an earlier rank-dependent early exit can skip"
    help = "Make the call before the rank-dependent exit, or decide the exit on every rank"
    what_it_does = """
        Checks for lifecycle calls that come after a `return`, `continue`, `break`, `raise` or
        `sys.exit()` guarded by a rank-dependent condition, in the same function (or, for
        `continue` and `break`, the same loop body).
        """
    why_bad = """
        `if rank != 0: return` looks like an innocent "only rank 0 logs" shortcut, but every call
        after it is now made by rank 0 alone. A lifecycle step after it moves only rank 0's slots.
        """
    example = """
        import torch.distributed as dist


        def end_of_epoch(slot, metrics):
            if dist.get_rank() != 0:
                return
            print(metrics)
            slot.step_epoch()
        """
    use_instead = """
        import torch.distributed as dist


        def end_of_epoch(slot, metrics):
            slot.step_epoch()
            if dist.get_rank() != 0:
                return
            print(metrics)
        """
    known_limits = """
        Exits are followed within one function. A rank-dependent exit inside a called function, or
        an exception raised on some ranks and caught by a caller, is not seen. Paths are compared
        only between the branch that exits and the code after it: `if rank == 0:
        slot.step_epoch(); return` followed by `slot.step_epoch()` is not reported (every rank
        steps once); an exit in an `elif` chain, or nested deeper than the branch of the
        rank-dependent `if`, is not compared.
        """
    bad = (
        """
        def tick(slots, rank):
            for slot in slots:
                if rank > 0:
                    continue
                slot.advance_stage()
        """,
        """
        import sys


        def main(args, slot):
            if args.local_rank not in (-1, 0):
                sys.exit(0)
            slot.step_epoch()
        """,
    )
    good = (
        """
        def run(slot, local_rank):
            if local_rank == -1:
                return
            slot.step_epoch()
        """,
        """
        def run(slot, rank):
            slot.step_epoch()
            if rank != 0:
                return
            print("done")
        """,
        """
        def run(slot, rank):
            if rank == 0:
                slot.step_epoch()
                return
            slot.step_epoch()
        """,
    )

    @classmethod
    def check(cls, facts: FileFacts) -> Iterator[Finding]:
        from esper_lint.analysis.symbols import CallKind
        from esper_lint.rules.messages import skipped_by

        for call in facts.calls_of(CallKind.LIFECYCLE):
            exit_ = call.early_exit
            if exit_ is not None:
                message = f"{call.text} may not run on every rank: {skipped_by(facts, exit_)}"
                yield Finding(call.node, cls.code, message)

"""ESP001: a lifecycle call under a rank-dependent condition."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from esper_lint.rules.base import MOVE_OUT_DESCRIPTION, MOVE_OUT_HELP, Finding, Rule

if TYPE_CHECKING:
    from esper_lint.analysis.facts import FileFacts
    from esper_lint.fixes.types import Fix


class RankConditionalLifecycleCall(Rule):
    code = "ESP001"
    name = "rank-conditional-lifecycle-call"
    summary = "Lifecycle call under a rank-dependent condition"
    what_it_does = """
        Checks for `step_epoch()`, `advance_stage()` (and the names added with
        `extend-symmetric-calls`) that run only when a rank-dependent condition holds: the body,
        `elif` or `else` of an `if` on the rank, `a if is_main else b`, `is_main and call()`,
        a `match` on the rank, a comprehension's `if` clause, a `while` on the rank, or a function
        decorated `@rank_zero_only`, `@on_main_process`, `@on_local_main_process`,
        `@on_last_process` or `@on_process`. A call to a function of the same file that makes such
        a call counts too; the message names the chain (`tick_all() -> slot.step_epoch()`).
        """
    why_bad = """
        Under DDP every rank must step its seed slots the same number of times, in the same order.
        A step that only rank 0 makes moves rank 0's alpha ahead of the others: the replicas
        diverge, gradients desynchronise, or the slot's own gate broadcast deadlocks.
        """
    example = """
        import torch.distributed as dist


        def end_of_epoch(slot, epoch):
            if dist.get_rank() == 0:
                print(f"epoch {epoch} done")
                slot.step_epoch()
        """
    use_instead = """
        import torch.distributed as dist


        def end_of_epoch(slot, epoch):
            if dist.get_rank() == 0:
                print(f"epoch {epoch} done")
            slot.step_epoch()
        """
    fix_example = (example, use_instead)
    help = MOVE_OUT_HELP
    fix_description = MOVE_OUT_DESCRIPTION
    known_limits = """
        Rank dependence is tracked through assignments in one scope, `self.<attr>` assignments in
        the same class, and same-file functions that return a rank-dependent value. Values that
        travel through other modules, containers or function arguments with non-conventional names
        are not followed: add such names to `extend-rank-sources`. Same-file helpers are resolved
        by name (`f()`, `self.m()`, `cls.m()`, `ClassName.m()`), not by type. Paths are not
        counted: `if rank == 0: slot.step_epoch(); return` followed by `slot.step_epoch()` is
        reported, although every rank steps once.
        """
    bad = (
        """
        def on_epoch_end(self, trainer, slot):
            if trainer.is_global_zero:
                self.log("epoch", 1)
            else:
                slot.advance_stage()
        """,
        """
        import os

        is_master = int(os.environ["RANK"]) == 0
        is_master and slot.step_epoch()
        """,
        """
        from lightning.pytorch.utilities import rank_zero_only


        @rank_zero_only
        def finish(slot):
            slot.step_epoch()
        """,
        """
        def tick_all(slots):
            for slot in slots:
                slot.step_epoch()


        def train(rank, slots):
            if rank == 0:
                tick_all(slots)
        """,
    )
    good = (
        """
        def train(local_rank, slot):
            if local_rank != -1:
                slot.step_epoch()
        """,
        """
        def train(rank, slot):
            if rank == 0:
                print("saving")
                slot.step_epoch()
            else:
                slot.step_epoch()
        """,
        """
        for rank in range(3):
            if rank == 0:
                slot.step_epoch()
        """,
    )

    @classmethod
    def check(cls, facts: FileFacts) -> Iterator[Finding]:
        from esper_lint.analysis.symbols import CallKind
        from esper_lint.rules.messages import controlled_by

        for call in facts.calls_of(CallKind.LIFECYCLE):
            condition = call.condition
            if condition is not None:
                cause = controlled_by(facts, condition)
                message = f"{call.text} may not run on every rank: {cause}"
                yield Finding(call.node, cls.code, message)

    @classmethod
    def fix(cls, facts: FileFacts, finding: Finding) -> Fix | None:
        from esper_lint.fixes.move_call import move_out_of_rank_if

        return move_out_of_rank_if(facts, finding)

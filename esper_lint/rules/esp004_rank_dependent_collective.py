"""ESP004: a collective that runs only on some ranks."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from esper_lint.rules.base import Finding, Rule

if TYPE_CHECKING:
    from esper_lint.analysis.facts import FileFacts


class RankDependentCollective(Rule):
    code = "ESP004"
    name = "rank-dependent-collective"
    summary = "Collective that runs only on some ranks"
    what_it_does = """
        Checks for collectives under a rank-dependent condition (the ESP001 forms) or after a
        rank-dependent early exit (the ESP003 forms): torch.distributed's `barrier`,
        `all_reduce`, `broadcast`, `all_gather`, `gather`, `scatter`, `reduce_scatter`,
        `all_to_all`, the `*_object` variants and `new_group` (resolved through imports);
        accelerate's `wait_for_everyone`, `gather`, `gather_for_metrics`, `reduce` and
        `accelerate.utils.broadcast`/`gather_object`/`broadcast_object_list`; Lightning's
        strategy and fabric collectives and `self.all_gather`; mpi4py's collectives on a
        communicator (`MPI.COMM_WORLD.bcast`, `comm.Allreduce`, `comm.Barrier`..., on
        `MPI.COMM_WORLD` or a `comm`-named value in a file that imports mpi4py). Same-file helpers
        that make a collective count too. One ESP004 is reported per call.
        """
    why_bad = """
        A collective completes only when every rank of the group enters it. If some ranks skip it,
        the others wait forever (a hang, or a NCCL timeout minutes later), or worse, match it with
        a different collective and exchange the wrong tensors.
        """
    example = """
        import torch.distributed as dist

        def save(model, path):
            if dist.get_rank() == 0:
                dist.barrier()
                torch.save(model.state_dict(), path)
        """
    use_instead = """
        import torch.distributed as dist

        def save(model, path):
            if dist.get_rank() == 0:
                torch.save(model.state_dict(), path)
            dist.barrier()
        """
    known_limits = """
        Point-to-point calls (`send`, `recv`, `isend`, `irecv`) are not collectives and are not
        checked. Collectives on a subgroup that only some ranks belong to are reported if they are
        guarded by the rank; suppress those with `# noqa: ESP004`.
        """
    bad = (
        """
        def validate(accelerator, metrics):
            if not accelerator.is_main_process:
                return
            accelerator.wait_for_everyone()
        """,
        """
        from torch.distributed import all_reduce as sum_all

        def sync(t, rank):
            rank == 0 and sum_all(t)
        """,
        """
        def on_validation_end(self, trainer, flag):
            if trainer.is_global_zero:
                flag = trainer.strategy.broadcast(flag)
        """,
    )
    good = (
        """
        import torch.distributed as dist

        def load(args):
            if args.local_rank not in [-1, 0]:
                dist.barrier()
            dataset = build_dataset(args)
            if args.local_rank == 0:
                dist.barrier()
            return dataset
        """,
        """
        def prepare(accelerator):
            with accelerator.main_process_first():
                data = download()
            accelerator.wait_for_everyone()
            return data
        """,
        """
        import torch.distributed as dist

        def sync(t, rank):
            if rank == 0:
                t.mul_(2)
                dist.broadcast(t, src=0)
            else:
                dist.broadcast(t, src=0)
        """,
    )

    @classmethod
    def check(cls, facts: FileFacts) -> Iterator[Finding]:
        from esper_lint.analysis.symbols import CallKind
        from esper_lint.rules.messages import controlled_by, skipped_by

        for call in facts.calls_of(CallKind.COLLECTIVE):
            condition = call.condition
            exit_ = call.early_exit
            if condition is not None:
                cause = controlled_by(facts, condition)
            elif exit_ is not None:
                cause = skipped_by(facts, exit_)
            else:
                continue
            message = f"{call.text} is a collective that may not run on every rank: {cause}"
            yield Finding(call.node, cls.code, message)

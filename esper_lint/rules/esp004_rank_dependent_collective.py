"""ESP004: a collective that runs only on some ranks."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from esper_lint.rules.base import MOVE_OUT_DESCRIPTION, MOVE_OUT_HELP, Finding, Rule

if TYPE_CHECKING:
    from esper_lint.analysis.facts import FileFacts
    from esper_lint.fixes.types import Fix


class RankDependentCollective(Rule):
    code = "ESP004"
    name = "rank-dependent-collective"
    summary = "Collective that runs only on some ranks"
    what_it_does = """
        Checks for collectives under a rank-dependent condition (the ESP001 forms) or after a
        rank-dependent early exit (the ESP003 forms): torch.distributed's `barrier`,
        `all_reduce`, `broadcast`, `all_gather`, `gather`, `scatter`, `reduce_scatter`,
        `all_to_all`, the `*_object` variants and the group constructors `new_group`,
        `new_subgroups` and `new_subgroups_by_enumeration` (resolved through imports);
        accelerate's `wait_for_everyone`, `gather`, `gather_for_metrics`, `reduce` and
        `accelerate.utils.broadcast`/`gather_object`/`broadcast_object_list`; Lightning's
        strategy and fabric collectives and `self.all_gather`; mpi4py's collectives on a
        communicator (`MPI.COMM_WORLD.bcast`, `comm.Allreduce`, `comm.Barrier`..., on
        `MPI.COMM_WORLD` or a `comm`-named value in a file that imports mpi4py). Same-file helpers
        that make a collective count too. One ESP004 is reported per call.

        A collective runs on its group: the `group=` argument or the positional parameter that
        holds it (`all_reduce(t, op, group)`, `broadcast(t, src, group)`); no group is the world.
        What every rank that must enter a collective does enter is not reported:

        - **membership guards**: a collective on group `G` under a test that this rank is a member
          of `G` (`rank in R` where `R` is `get_process_group_ranks(G)`, the ranks `G` was created
          from with `new_group(R)`, or the element of `L` holding this rank for
          `new_subgroups_by_enumeration(L)`; `dist.get_rank(group=G) >= 0` or `!= -1`;
          `G.rank() >= 0`; `G is not None` or `G != GroupMember.NON_GROUP_MEMBER` for a `G` made by
          `new_group`), when every other conjunct is the same on all of `G`'s members;
        - **complementary branches making the same collective sequences** (same operations, same
          group expressions, same count and order; `src`/`dst` may differ), compared through
          same-file helpers and between an early-exit branch and the code after it; an `if`/`elif`
          chain whose role branches make the same collectives on a group that one of its tests
          checks membership of;
        - **a precondition `raise`/`return` for non-members** before collectives on a group built
          from the same ranks;
        - **a branch whose path condition has no rank-dependent atom left** once simplified: the
          `elif in_order` of `if not in_order and is_main`;
        - **`new_group(ranks, use_local_synchronization=True)`** under a membership test of exactly
          those ranks.

        When one of these nearly applied, the message says which and why it did not.
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
    fix_example = (example, use_instead)
    help = MOVE_OUT_HELP
    fix_description = MOVE_OUT_DESCRIPTION
    known_limits = """
        Point-to-point calls (`send`, `recv`, `isend`, `irecv`) are not collectives and are not
        checked. Groups are known by their expression as written and by the assignments of the
        same file that create them: a group passed in as a parameter matches only a membership test
        that names the same parameter, and a ranks list built by a helper
        (`get_boundary_ranks(grid)`) or a membership test inside a helper predicate
        (`if not self.rank_in_grid(grid): raise`) is not followed. A guard on the coordinate of
        another parallel dimension (the tensor-parallel rank tested before a data-parallel
        collective) cannot be proven symmetric without a table of which group spans which
        dimension, and stays reported. Rank-dependent atoms are taken as independent of each other,
        so branches that are complementary only through arithmetic (`rank == to` and
        `rank != to`) are reported. The roles of an `if`/`elif` chain are assumed to cover all the
        members of the group its membership test names. A helper's collectives are compared in
        source order, whatever conditions they sit under inside the helper. Suppress what remains
        with `# noqa: ESP004`.
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
        """
        import torch.distributed as dist


        def share(cfg, node_leaders, local_rank):
            leaders = dist.new_group(node_leaders)
            if dist.get_rank() in node_leaders and local_rank == 0:
                dist.broadcast(cfg, src=node_leaders[0], group=leaders)
        """,
        """
        import torch.distributed as dist


        def build(stage_ranks, t):
            if dist.get_rank() not in stage_ranks:
                raise ValueError("rank outside the stage")
            stage = dist.new_group(stage_ranks, use_local_synchronization=True)
            dist.all_reduce(t, group=stage)
            dist.barrier()
        """,
        """
        import torch.distributed as dist


        def save(state, shard_group):
            if dist.get_rank(group=shard_group) == 0:
                dist.barrier(group=shard_group)
                dist.barrier(group=shard_group)
            else:
                dist.barrier(group=shard_group)
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
        """
        import torch.distributed as dist


        def sync_embeddings(grad, embd_group):
            if dist.get_rank() in dist.get_process_group_ranks(embd_group):
                dist.all_reduce(grad, group=embd_group)
        """,
        """
        import torch.distributed as dist


        def build(stage_ranks, t):
            if dist.get_rank() not in stage_ranks:
                raise ValueError("rank outside the stage")
            stage = dist.new_group(stage_ranks, use_local_synchronization=True)
            dist.all_reduce(t, group=stage)
            return stage
        """,
        """
        import torch.distributed as dist


        def share(t, src, group):
            if dist.get_rank() == src:
                dist.broadcast(t, src=src, group=group)
                return t
            dist.broadcast(t, src=src, group=group)
            return t
        """,
        """
        def log(state, message, in_order):
            if not in_order and state.is_main_process:
                print(message)
            elif in_order:
                state.wait_for_everyone()
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
            near_miss = call.near_miss
            if near_miss is not None:
                cause = f"{cause}: {near_miss}"
            message = f"{call.text} is a collective that may not run on every rank: {cause}"
            yield Finding(call.node, cls.code, message)

    @classmethod
    def fix(cls, facts: FileFacts, finding: Finding) -> Fix | None:
        from esper_lint.fixes.move_call import move_out_of_rank_if

        return move_out_of_rank_if(facts, finding)

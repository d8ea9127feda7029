"""What controls a call: every ESP001/ESP003/ESP004 form, the exemptions, helper chains."""

from __future__ import annotations

import libcst as cst
from analysis_helpers import found, messages

from esper_lint.analysis.rank import Polarity, condition_polarity
from esper_lint.config import Config


def test_if_body_elif_and_else_are_all_controlled() -> None:
    source = """
    def f(slot, rank, cfg):
        if rank == 0:
            slot.step_epoch()
        elif cfg.verbose:
            slot.advance_stage()
        else:
            slot.step_epoch()
    """
    assert found(source) == {(3, "ESP001"), (5, "ESP001"), (7, "ESP001")}


def test_elif_on_the_rank_controls_its_body_and_the_else() -> None:
    source = """
    def f(slot, rank, epoch):
        if epoch == 0:
            print("first")
        elif rank == 0:
            slot.step_epoch()
        else:
            slot.advance_stage()
        if epoch > 3:
            slot.step_epoch()
    """
    assert found(source) == {(5, "ESP001"), (7, "ESP001")}


def test_expression_forms() -> None:
    source = """
    def f(slot, is_main, slots):
        a = slot.step_epoch() if is_main else None
        is_main and slot.step_epoch()
        is_main or slot.advance_stage()
        [s.step_epoch() for s in slots if is_main]
    """
    assert found(source) == {(2, "ESP001"), (3, "ESP001"), (4, "ESP001"), (5, "ESP001")}


def test_symmetric_left_operand_does_not_control() -> None:
    source = """
    def f(slot, cfg):
        cfg.enabled and slot.step_epoch()
    """
    assert found(source) == set()


def test_match_on_the_rank_and_while_on_the_rank() -> None:
    source = """
    def f(slot, rank, stage):
        match rank:
            case 0:
                slot.step_epoch()
        match stage:
            case "a":
                slot.step_epoch()
        while rank == 0:
            slot.advance_stage()
    """
    assert found(source) == {(4, "ESP001"), (9, "ESP001")}


def test_rank_only_decorators_make_the_body_conditional() -> None:
    source = """
    from lightning.pytorch.utilities import rank_zero_only

    @rank_zero_only
    def a(slot):
        slot.step_epoch()

    @accelerator.on_main_process
    def b(slot):
        slot.step_epoch()

    @accelerator.on_process(process_index=1)
    def c(slot):
        slot.advance_stage()

    @on_local_main_process
    def d(slot):
        if slot.ready:
            return
        slot.step_epoch()

    @staticmethod
    def e(slot):
        slot.step_epoch()
    """
    got = found(source)
    assert got == {(5, "ESP001"), (9, "ESP001"), (13, "ESP001"), (19, "ESP001")}
    assert "rank-only decorator at line 3 (@rank_zero_only)" in messages(source)[0]


def test_context_resets_at_def_lambda_and_class() -> None:
    source = """
    def f(rank):
        if rank == 0:
            def helper(slot):
                slot.step_epoch()
            cb = lambda slot: slot.step_epoch()
            class Hook:
                def run(self, slot):
                    slot.step_epoch()
    """
    assert found(source) == set()


def test_identical_calls_on_every_branch_are_not_flagged() -> None:
    source = """
    import torch.distributed as dist

    def f(slot, rank, t):
        if rank == 0:
            print("leader")
            slot.step_epoch()
            dist.barrier()
        elif rank == 1:
            slot.step_epoch()
            dist.barrier()
        else:
            slot.step_epoch()
            dist.barrier()
        x = slot.advance_stage() if rank == 0 else slot.advance_stage()
    """
    assert found(source) == set()


def test_different_order_or_missing_else_is_flagged() -> None:
    source = """
    import torch.distributed as dist

    def f(slot, rank):
        if rank == 0:
            slot.step_epoch()
            dist.barrier()
        else:
            dist.barrier()
            slot.step_epoch()
        if rank == 0:
            slot.step_epoch()
        elif rank == 1:
            slot.step_epoch()
    """
    assert found(source) == {
        (5, "ESP001"),
        (6, "ESP004"),
        (8, "ESP004"),
        (9, "ESP001"),
        (11, "ESP001"),
        (13, "ESP001"),
    }


def test_rank_zero_first_complementary_conditions() -> None:
    source = """
    import torch.distributed as dist

    def load(args, accelerator):
        if args.local_rank not in [-1, 0]:
            dist.barrier()
        data = build()
        if args.local_rank == 0:
            dist.barrier()
        if not accelerator.is_main_process:
            accelerator.wait_for_everyone()
        more = build()
        if accelerator.is_main_process:
            accelerator.wait_for_everyone()
    """
    assert found(source) == set()


def test_non_complementary_pair_is_flagged() -> None:
    source = """
    import torch.distributed as dist

    def load(rank, local_rank):
        if rank != 0:
            dist.barrier()
        if local_rank == 0:
            dist.barrier()
    """
    assert found(source) == {(5, "ESP004"), (7, "ESP004")}


def test_main_process_first_bodies_are_not_flagged() -> None:
    source = """
    def f(accelerator, fabric, slot):
        with accelerator.main_process_first():
            slot.step_epoch()
            accelerator.wait_for_everyone()
        with accelerator.local_main_process_first():
            slot.step_epoch()
        with fabric.rank_zero_first():
            fabric.barrier()
    """
    assert found(source) == set()


def test_early_exits_skip_later_calls() -> None:
    source = """
    import sys

    def a(slot, rank):
        if rank != 0:
            return
        slot.step_epoch()

    def b(slots, rank):
        for slot in slots:
            if rank > 0:
                continue
            slot.step_epoch()
        slots[0].step_epoch()

    def c(slot, rank):
        if rank == 0:
            raise SystemExit
        slot.advance_stage()

    def d(slot, is_main):
        if not is_main:
            sys.exit(0)
        slot.step_epoch()
    """
    # ESP003 on each skipped call; the process exit under rank control is ESP005 as well (the
    # other ranks wait in their next collective), while the return/continue/raise are not.
    expected = {(6, "ESP003"), (12, "ESP003"), (18, "ESP003"), (23, "ESP003"), (22, "ESP005")}
    assert found(source) == expected


def test_exit_in_one_branch_does_not_reach_the_other_branch() -> None:
    source = """
    def f(slot, rank):
        if rank != 0:
            return
        else:
            slot.step_epoch()
    """
    assert found(source) == {(5, "ESP001")}


def test_exits_not_guarded_by_the_rank() -> None:
    source = """
    def a(slot, local_rank, cfg, out, rank):
        if local_rank == -1:
            return
        if cfg.dry_run:
            return
        if rank == 0:
            if out is None:
                raise ValueError("out is needed on rank 0")
        slot.step_epoch()

    def b(slot, rank):
        slot.step_epoch()
        if rank != 0:
            return
        print("done")

    def c(slot, rank):
        try:
            if rank != 0:
                raise Skip()
        except Skip:
            pass
        slot.step_epoch()
    """
    assert found(source) == set()


def test_rank_dependent_break_is_esp002_and_esp003() -> None:
    source = """
    def f(slots, rank):
        for slot in slots:
            slot.advance_stage()
            if rank == 0:
                break
            slot.step_epoch()
        slots[0].step_epoch()
    """
    assert found(source) == {(3, "ESP002"), (6, "ESP002"), (6, "ESP003")}


def test_collective_forms_give_one_esp004_per_call() -> None:
    source = """
    import torch
    import torch.distributed as dist
    from torch.distributed import all_reduce as sum_all
    import accelerate.utils

    def f(t, rank, accelerator, trainer, fabric, self):
        if rank == 0:
            dist.barrier()
            torch.distributed.all_gather_object([], t)
            sum_all(t)
            accelerator.gather(t)
            accelerator.gather_for_metrics(t)
            accelerator.reduce(t)
            accelerate.utils.broadcast(t)
            trainer.strategy.reduce_boolean_decision(t)
            fabric.all_reduce(t)
            self.all_gather(t)
        if rank != 0:
            return
        dist.new_group([0])
    """
    lines = {8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 20}
    assert found(source) == {(line, "ESP004") for line in lines}


def test_point_to_point_and_lookalikes_are_not_collectives() -> None:
    source = """
    import torch.distributed as dist

    def f(t, rank, model, results):
        if rank == 0:
            dist.send(t, 1)
            dist.isend(t, 1)
            dist.recv(t)
            dist.irecv(t)
            model.reduce(t)
            results.gather(t)
            model.barrier
            signal.broadcast(t)
    """
    assert found(source) == set()


def test_helper_chains_are_named_in_the_message() -> None:
    source = """
    import torch.distributed as dist

    def tick_all(slots):
        for slot in slots:
            slot.step_epoch()

    def tick_and_sync(slots):
        tick_all(slots)
        dist.barrier()

    class Trainer:
        def end(self, rank):
            if rank == 0:
                self.finish()
                Trainer.finish(self)

        def finish(self):
            tick_and_sync(self.slots)

    def main(rank, slots):
        if rank == 0:
            tick_all(slots)
    """
    assert messages(source) == [
        "ESP001 self.finish() -> tick_and_sync() -> tick_all() -> slot.step_epoch() may not run "
        "on every rank: it is controlled by the rank-dependent condition at line 13 (rank == 0)",
        "ESP004 self.finish() -> tick_and_sync() -> dist.barrier() is a collective that may not "
        "run on every rank: it is controlled by the rank-dependent condition at line 13 "
        "(rank == 0)",
        "ESP001 Trainer.finish() -> tick_and_sync() -> tick_all() -> slot.step_epoch() may not "
        "run on every rank: it is controlled by the rank-dependent condition at line 13 "
        "(rank == 0)",
        "ESP004 Trainer.finish() -> tick_and_sync() -> dist.barrier() is a collective that may "
        "not run on every rank: it is controlled by the rank-dependent condition at line 13 "
        "(rank == 0)",
        "ESP001 tick_all() -> slot.step_epoch() may not run on every rank: it is controlled by "
        "the rank-dependent condition at line 21 (rank == 0)",
    ]


def test_recursive_helpers_terminate() -> None:
    source = """
    def a(slot, n):
        if n:
            b(slot, n - 1)

    def b(slot, n):
        a(slot, n)

    def main(slot, rank):
        if rank == 0:
            a(slot, 3)
    """
    assert found(source) == set()


def test_extend_symmetric_calls() -> None:
    source = """
    def f(model, rank):
        if rank == 0:
            model.sync_alpha()
            sync_alpha()
    """
    assert found(source) == set()
    config = Config(extend_symmetric_calls=("sync_alpha",))
    assert found(source, config) == {(3, "ESP001"), (4, "ESP001")}


def test_definitions_references_strings_and_comments_are_not_calls() -> None:
    source = """
    def f(slot, rank):
        if rank == 0:
            def step_epoch():
                pass
            hook = slot.step_epoch
            text = "slot.step_epoch()"
            # slot.step_epoch()
    """
    assert found(source) == set()


def test_kinds_are_compared_apart_on_the_branches() -> None:
    # The barrier runs once on every rank; only the lifecycle call is rank 0's alone.
    source = """
    import torch.distributed as dist

    def f(slot, rank):
        if rank == 0:
            slot.step_epoch()
            dist.barrier()
        else:
            dist.barrier()
        if rank != 0:
            dist.barrier()
        if rank == 0:
            slot.advance_stage()
            dist.barrier()
    """
    assert found(source) == {(5, "ESP001"), (12, "ESP001")}


def test_a_bare_reraise_is_not_an_early_exit() -> None:
    source = """
    def main(accelerator, path):
        if accelerator.is_main_process:
            try:
                check(path)
            except AssertionError:
                path.unlink()
                raise
        accelerator.wait_for_everyone()
    """
    assert found(source) == set()


def test_a_bare_rank_number_is_true_on_the_other_ranks() -> None:
    source = """
    import torch.distributed as dist

    def same_ranks_twice(rank):
        if rank == 0:
            dist.barrier()
        work()
        if not rank:
            dist.barrier()

    def rank_zero_first(rank):
        if rank:
            dist.barrier()
        work()
        if rank == 0:
            dist.barrier()

    def unknown_subject(worker_id):
        if worker_id:
            dist.barrier()
        if worker_id == 0:
            dist.barrier()
    """
    config = Config(extend_rank_sources=["worker_id"])
    assert found(source, config) == {(5, "ESP004"), (8, "ESP004"), (19, "ESP004"), (21, "ESP004")}


def test_truthiness_polarity_by_subject_name() -> None:
    assert condition_polarity(cst.parse_expression("args.local_rank")) == (
        "args.local_rank",
        Polarity.NONZERO,
    )
    assert condition_polarity(cst.parse_expression("not dist.get_rank()")) == (
        "dist.get_rank()",
        Polarity.ZERO,
    )
    assert condition_polarity(cst.parse_expression("trainer.is_global_zero")) == (
        "trainer.is_global_zero",
        Polarity.ZERO,
    )
    # Any other name is a flag: `x` and `not x` pair with each other.
    assert condition_polarity(cst.parse_expression("not accelerator.is_last_process")) == (
        "accelerator.is_last_process",
        Polarity.NONZERO,
    )
    assert condition_polarity(cst.parse_expression("is_coordinator")) == (
        "is_coordinator",
        Polarity.ZERO,
    )


def test_nested_helpers_of_the_same_name_resolve_to_their_own_scope() -> None:
    source = """
    def b(rank):
        def inner():
            print("x")
        if rank == 0:
            inner()

    def a(slot, rank):
        def inner():
            slot.step_epoch()
        inner()

    def c(slot, rank):
        def run():
            if rank == 0:
                step()
        try:
            def step():
                slot.step_epoch()
        finally:
            pass
        run()

    def d(rank):
        if rank == 0:
            helper()

    def helper():
        slot.step_epoch()
    """
    assert found(source) == {(15, "ESP001"), (25, "ESP001")}


def test_an_exit_in_the_else_branch_is_described_as_such() -> None:
    source = """
    def f(rank, slot):
        if rank == 0:
            print("a")
        else:
            return
        slot.step_epoch()

    def g(rank, slot):
        if rank != 0:
            return
        slot.step_epoch()
    """
    assert messages(source) == [
        "ESP003 slot.step_epoch() may not run on every rank: the rank-dependent early return at"
        " line 5 (else of if rank == 0) can skip it",
        "ESP003 slot.step_epoch() may not run on every rank: the rank-dependent early return at"
        " line 10 (if rank != 0) can skip it",
    ]


def test_rank_zero_first_pairs_with_the_same_extra_conjuncts() -> None:
    source = """
    import torch

    def load(args, evaluate=False):
        if args.local_rank not in [-1, 0] and not evaluate:
            torch.distributed.barrier()
        features = build(args)
        if args.local_rank == 0 and not evaluate:
            torch.distributed.barrier()
        return features

    def different_extras(args, evaluate, train):
        if args.local_rank not in [-1, 0] and not evaluate:
            torch.distributed.barrier()
        if args.local_rank == 0 and not train:
            torch.distributed.barrier()

    def rank_dependent_extra(args, local_rank, evaluate):
        if args.local_rank not in [-1, 0] and local_rank % 2:
            torch.distributed.barrier()
        if args.local_rank == 0 and local_rank % 2:
            torch.distributed.barrier()
    """
    assert found(source) == {(13, "ESP004"), (15, "ESP004"), (19, "ESP004"), (21, "ESP004")}


def test_a_propagated_flag_and_its_negation_make_a_rank_zero_first_pair() -> None:
    source = """
    import torch.distributed as dist

    def prepare(rank):
        is_coordinator = rank == 0
        if not is_coordinator:
            dist.barrier()
        download()
        if is_coordinator:
            dist.barrier()
    """
    assert found(source) == set()


def test_a_parenthesised_conjunction_is_a_condition_like_any_other() -> None:
    # Found on accelerate's accelerator.py: `if (a and b):` once recursed without end.
    source = """
    import torch.distributed as dist

    def f(rank, evaluate):
        if (rank != 0 and not evaluate):
            dist.barrier()
        if (rank == 0 and not evaluate):
            dist.barrier()
        if (rank == 0 and ready()):
            dist.barrier()
    """
    assert found(source) == {(9, "ESP004")}

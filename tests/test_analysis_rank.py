"""Which conditions are rank-dependent: sources, propagation, rebinding, symmetric checks."""

from __future__ import annotations

import pytest
from analysis_helpers import found, messages

from esper_lint.config import Config

RANK_TESTS = [
    "dist.get_rank() == 0",
    "torch.distributed.get_node_local_rank() == 0",
    "dist.get_group_rank(group, 3) == 0",
    "dist.get_global_rank(group, 0) == 1",
    'int(os.environ["RANK"]) == 0',
    'os.environ.get("LOCAL_RANK") == "0"',
    'os.getenv("SLURM_PROCID") == "0"',
    'int(os.environ["NODE_RANK"]) > 0',
    "accelerator.is_main_process",
    "accelerator.is_local_main_process",
    "accelerator.is_last_process",
    "accelerator.process_index == 1",
    "accelerator.local_process_index == 0",
    "trainer.is_global_zero",
    "self.global_rank == 0",
    "self.local_rank == 0",
    "trainer.node_rank == 0",
    "fabric.is_global_zero",
    "trainer.is_world_process_zero()",
    "trainer.is_local_process_zero()",
    "args.process_index == 0",
    "rank == 0",
    "ddp_rank == 0",
    "is_master",
    "master_process",
    "is_main",
    "args.local_rank in (-1, 0)",
    "local_rank in [-1, 0]",
    "not is_main_process",
    "rank > 0",
    "local_rank <= 0",
]


@pytest.mark.parametrize("test", RANK_TESTS)
def test_rank_source_makes_the_condition_rank_dependent(test: str) -> None:
    source = f"""
    import os
    import torch
    import torch.distributed as dist

    def f(slot, args, trainer, accelerator, fabric, group, self):
        if {test}:
            slot.step_epoch()
    """
    assert found(source) == {(7, "ESP001")}


SYMMETRIC_TESTS = [
    "dist.is_initialized()",
    "dist.is_available()",
    "dist.get_world_size() > 1",
    "world_size > 1",
    "torch.cuda.device_count() > 1",
    "local_rank == -1",
    "local_rank != -1",
    "-1 == args.local_rank",
    "args.local_rank != -1",
    "dist.get_rank() > -1",
    "-1 < local_rank",
    "local_rank >= 0",
    "0 > local_rank",
    "epoch % 10 == 0",
    "cfg.use_seeds",
    "slot.stage == 'TRAINING'",
    'os.environ.get("WORLD_SIZE") == "1"',
    "placement.rank() == 0",
]


@pytest.mark.parametrize("test", SYMMETRIC_TESTS)
def test_symmetric_condition_is_not_flagged(test: str) -> None:
    source = f"""
    import os
    import torch
    import torch.distributed as dist

    def f(slot, args, cfg, epoch, world_size, local_rank, placement):
        if {test}:
            slot.step_epoch()
    """
    assert found(source) == set()


def test_rank_dependence_propagates_through_assignments() -> None:
    source = """
    import torch.distributed as dist

    def f(slot):
        r = dist.get_rank()
        leader = r == 0
        should_step = leader and True
        if should_step:
            slot.step_epoch()
    """
    assert found(source) == {(8, "ESP001")}


def test_module_level_flag_is_seen_inside_functions() -> None:
    source = """
    import os
    IS_LEADER = int(os.environ["RANK"]) == 0

    def f(slot):
        if IS_LEADER:
            slot.step_epoch()
    """
    assert found(source) == {(6, "ESP001")}


def test_rebinding_from_a_non_rank_source_clears_rank_dependence() -> None:
    source = """
    def f(slots):
        for rank in range(3):
            if rank == 0:
                slots[rank].step_epoch()

    def g(slot, rank):
        rank = 0
        if rank == 0:
            slot.step_epoch()

    def h(slot, rank):
        if rank == 0:
            slot.step_epoch()
    """
    assert found(source) == {(13, "ESP001")}


def test_rebinding_is_per_scope() -> None:
    source = """
    def f(slots):
        for rank in range(3):
            pass

    def g(slot, rank):
        if rank == 0:
            slot.step_epoch()
    """
    assert found(source) == {(7, "ESP001")}


def test_same_file_function_returning_rank_dependent_value() -> None:
    source = """
    import torch.distributed as dist

    def train(slot):
        if leader():
            slot.step_epoch()

    def leader():
        return dist.get_rank() == 0

    def symmetric():
        return dist.get_world_size() > 1

    def other(slot):
        if symmetric():
            slot.step_epoch()
    """
    assert found(source) == {(5, "ESP001")}


def test_self_attribute_assigned_from_rank_in_the_same_class() -> None:
    source = """
    import torch.distributed as dist

    class Trainer:
        def __init__(self):
            self.leader = dist.get_rank() == 0
            self.device = dist.get_rank() % 8

        def end(self, model):
            if self.leader:
                model.slot.step_epoch()
            for slot in model.to(self.device).seed_slots.values():
                slot.step_epoch()
    """
    assert found(source) == {(10, "ESP001")}


def test_import_alias_of_a_rank_function() -> None:
    source = """
    from torch.distributed import get_rank as who

    def f(slot):
        if who() == 0:
            slot.step_epoch()
    """
    assert found(source) == {(5, "ESP001")}


def test_collective_result_is_the_same_on_every_rank() -> None:
    source = """
    import torch.distributed as dist

    def f(slot, rank):
        flags = [rank == 0]
        dist.broadcast_object_list(flags, src=0)
        if flags[0]:
            slot.step_epoch()
    """
    assert found(source) == set()


def test_extend_rank_sources_matches_names_attributes_and_calls() -> None:
    source = """
    def f(slot, coordinator):
        if is_coordinator:
            slot.step_epoch()
        if coordinator.is_coordinator:
            slot.step_epoch()
        if is_coordinator():
            slot.step_epoch()
    """
    assert found(source) == set()
    config = Config(extend_rank_sources=("is_coordinator",))
    assert found(source, config) == {(3, "ESP001"), (5, "ESP001"), (7, "ESP001")}


def test_message_shows_the_condition_and_its_line() -> None:
    source = """
    def f(slot, rank):
        if rank == 0:
            slot.step_epoch()
    """
    assert messages(source) == [
        "ESP001 slot.step_epoch() may not run on every rank: it is controlled by the "
        "rank-dependent condition at line 2 (rank == 0)"
    ]


def test_tuple_results_of_same_file_functions_are_unpacked_element_by_element() -> None:
    source = """
    import os
    import torch.distributed as dist

    def setup():
        rank = int(os.environ["RANK"])
        world_size = int(os.environ["WORLD_SIZE"])
        return rank, world_size, f"cuda:{rank}"

    def main(slot):
        leader, world_size, device = setup()
        if world_size > 1:
            slot.step_epoch()
        if leader == 0:
            slot.advance_stage()
    """
    assert found(source) == {(14, "ESP001")}


def test_a_conventional_name_bound_from_an_unknown_call_stays_rank_dependent() -> None:
    source = """
    from mylib import init_distributed

    def main(slot):
        rank, world = init_distributed()
        if rank == 0:
            slot.step_epoch()
        if world > 1:
            slot.step_epoch()
    """
    assert found(source) == {(6, "ESP001")}

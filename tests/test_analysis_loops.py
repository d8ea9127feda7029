"""Which loops have a data-dependent trip count (ESP002), and which do not."""

from __future__ import annotations

import pytest
from analysis_helpers import found, messages

from esper_lint.config import Config

DATA_ITERABLES = [
    "train_loader",
    "self.val_loader",
    "enumerate(train_loader)",
    "zip(loader_a, loader_b)",
    "tqdm(enumerate(dataloader))",
    "iter(batches)",
    "islice(my_dataset, 10)",
    "data_iter",
    "DataLoader(ds, batch_size=8)",
    "build_loader(cfg)",
    "accelerator.prepare(make_split())",
]


@pytest.mark.parametrize("iterable", DATA_ITERABLES)
def test_for_over_data_is_data_dependent(iterable: str) -> None:
    source = f"""
    def f(slot, train_loader, self, loader_a, loader_b, dataloader, batches, my_dataset,
          data_iter, ds, cfg, accelerator):
        for batch in {iterable}:
            slot.step_epoch()
    """
    assert found(source) == {(4, "ESP002")}


STRUCTURE_ITERABLES = [
    "range(num_epochs)",
    "range(len(train_loader))",
    "model.seed_slots.values()",
    "enabled_slots",
    "model.named_modules()",
    "cfg.stages",
]


@pytest.mark.parametrize("iterable", STRUCTURE_ITERABLES)
def test_structure_loops_are_not_data_dependent(iterable: str) -> None:
    source = f"""
    def f(slot, model, enabled_slots, cfg, num_epochs, train_loader):
        for item in {iterable}:
            slot.step_epoch()
    """
    assert found(source) == set()


def test_loader_value_propagates_through_assignment_and_prepare_unpacking() -> None:
    source = """
    def f(accelerator, model, optimizer, ds, slot):
        dl = DataLoader(ds)
        model, optimizer, dl = accelerator.prepare(model, optimizer, dl)
        for batch in dl:
            slot.step_epoch()
        for slot in model.seed_slots.values():
            slot.step_epoch()
    """
    assert found(source) == {(5, "ESP002")}


def test_while_loops() -> None:
    source = """
    import time

    def a(slot, loss, target):
        while loss > target:
            slot.step_epoch()

    def b(slot, budget):
        start = time.perf_counter()
        while time.perf_counter() - start < budget:
            slot.step_epoch()

    def c(slot, loader):
        it = iter(loader)
        while True:
            batch = next(it)
            slot.step_epoch()

    def d(slot, max_steps):
        step = 0
        while step < max_steps:
            slot.step_epoch()
            step += 1
    """
    assert found(source) == {(5, "ESP002"), (10, "ESP002"), (16, "ESP002")}


def test_loops_with_a_data_guarded_exit() -> None:
    source = """
    import random

    def a(slot, model, epochs):
        for epoch in range(epochs):
            slot.step_epoch()
            val_loss = evaluate(model)
            if val_loss < 0.1:
                break

    def b(slot, epochs):
        for epoch in range(epochs):
            slot.step_epoch()
            if random.random() < 0.5:
                return

    def c(slot, out, epochs):
        for epoch in range(epochs):
            slot.step_epoch()
            if out.mean().item() > 3:
                break

    def d(slot, epochs, cfg):
        for epoch in range(epochs):
            slot.step_epoch()
            if epoch >= cfg.max_epochs:
                break
            if epoch % 2:
                continue
    """
    assert found(source) == {(5, "ESP002"), (12, "ESP002"), (18, "ESP002")}


def test_calls_after_a_loader_loop_and_collectives_inside_it() -> None:
    source = """
    import torch.distributed as dist

    def f(slot, train_loader, t):
        for batch in train_loader:
            dist.all_reduce(t)
        slot.step_epoch()
    """
    assert found(source) == set()


def test_comprehension_over_data() -> None:
    source = """
    def f(slots, loader):
        [s.step_epoch() for batch in loader for s in slots]
        [s.step_epoch() for s in slots]
    """
    assert found(source) == {(2, "ESP002")}


def test_lifecycle_call_in_the_loader_loop_under_a_rank_condition_gets_both_codes() -> None:
    source = """
    def f(slot, loader, rank):
        for batch in loader:
            if rank == 0:
                slot.step_epoch()
    """
    assert found(source) == {(4, "ESP001"), (4, "ESP002")}


def test_extend_data_sources_is_a_case_insensitive_substring() -> None:
    source = """
    def f(slot, shard_stream):
        for item in shard_stream:
            slot.step_epoch()
    """
    assert found(source) == set()
    assert found(source, Config(extend_data_sources=("STREAM",))) == {(3, "ESP002")}


def test_message_names_the_loop_and_the_data() -> None:
    source = """
    def f(slot, train_loader):
        for i, batch in enumerate(train_loader):
            slot.step_epoch()
    """
    assert messages(source) == [
        "ESP002 slot.step_epoch() may not run the same number of times on every rank: it is "
        "inside the loop at line 2, whose trip count depends on data (train_loader)"
    ]


def test_a_guarded_raise_or_exit_does_not_make_enclosing_loops_data_dependent() -> None:
    source = """
    import math
    import sys

    def f(model, slot, train_loader, epochs):
        for epoch in range(epochs):
            for batch in train_loader:
                loss = model(batch)
                if not math.isfinite(loss.item()):
                    raise RuntimeError("nan")
            slot.step_epoch()

    def g(slot, epochs):
        for epoch in range(epochs):
            loss = run_epoch()
            if loss is None:
                sys.exit(1)
            slot.step_epoch()
    """
    # No ESP002: the loops stay data-independent. The exits themselves are ESP005 (decided on
    # this rank's loss, before a step_epoch() the other ranks make).
    assert found(source) == {(9, "ESP005"), (16, "ESP005")}

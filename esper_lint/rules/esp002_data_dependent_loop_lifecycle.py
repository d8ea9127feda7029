"""ESP002: a lifecycle call inside a loop whose trip count depends on data."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from esper_lint.rules.base import Finding, Rule

if TYPE_CHECKING:
    from esper_lint.analysis.facts import FileFacts


class DataDependentLoopLifecycleCall(Rule):
    code = "ESP002"
    name = "data-dependent-loop-lifecycle-call"
    summary = "Lifecycle call inside a loop whose trip count depends on data"
    precision = "medium"
    help = "Make the call once per epoch, outside the data loop (or reduce the stop decision)"
    what_it_does = """
        Checks for lifecycle calls inside a loop whose number of iterations can differ across
        ranks: a `for` over a DataLoader-like iterable (a name or attribute containing `loader`,
        `batches`, `dataset` or `data_iter`, or the names added with `extend-data-sources`; a value
        made by `DataLoader(...)`, `accelerator.prepare(...)` or a call whose name contains
        `loader`; wrapped or not in `enumerate`, `zip`, `tqdm`, `iter` or `islice`), a `while`
        driven by `next()` over such data or testing data or time, and any loop holding a `break`
        or `return` guarded by a data-, time- or rank-dependent condition (loss, accuracy, metrics,
        `.item()`, tensors, `time.time()`, `random`).
        """
    why_bad = """
        Each rank sees its own shard of the data. When shards differ in length, or a rank stops
        early on its own loss, a step made once per batch runs a different number of times on each
        rank: the slots' alpha schedules drift apart and the next gate broadcast deadlocks.
        """
    example = """
        def train(model, slot, train_loader, optimizer):
            for batch in train_loader:
                loss = model(batch).sum()
                loss.backward()
                optimizer.step()
                slot.step_epoch()
        """
    use_instead = """
        def train(model, slot, train_loader, optimizer, num_epochs):
            for epoch in range(num_epochs):
                for batch in train_loader:
                    loss = model(batch).sum()
                    loss.backward()
                    optimizer.step()
                slot.step_epoch()
        """
    known_limits = """
        Whether an iterable holds data is decided by its name and by what produced it in the same
        scope; loaders passed under other names are not recognised (add a substring with
        `extend-data-sources`). A loop is not flagged when its data-dependent exit is hidden in a
        called function. A name containing a data word (`loss`, `acc`, `metric`, `score`...)
        is data even when it is configuration, so `while step < args.grad_acc_steps` is reported.
        """
    bad = (
        """
        import time


        def run(slot, budget):
            start = time.time()
            while time.time() - start < budget:
                slot.advance_stage()
        """,
        """
        def run(model, slot, val_loader, epochs, target):
            for epoch in range(epochs):
                slot.step_epoch()
                acc = evaluate(model, val_loader)
                if acc > target:
                    break
        """,
        """
        def run(slot, loader):
            data_iter = iter(loader)
            while True:
                try:
                    batch = next(data_iter)
                except StopIteration:
                    break
                slot.step_epoch()
        """,
    )
    good = (
        """
        def end_epoch(model):
            for slot in model.seed_slots.values():
                slot.step_epoch()
        """,
        """
        def train(slot, train_loader, num_steps):
            for batch in train_loader:
                pass
            step = 0
            while step < num_steps:
                slot.step_epoch()
                step += 1
        """,
        """
        import torch.distributed as dist


        def train(model, train_loader, loss_sum):
            for batch in train_loader:
                dist.all_reduce(loss_sum)
        """,
    )

    @classmethod
    def check(cls, facts: FileFacts) -> Iterator[Finding]:
        from esper_lint.analysis.symbols import CallKind
        from esper_lint.rules.messages import loop_depends_on

        for call in facts.calls_of(CallKind.LIFECYCLE):
            loop = call.data_loop
            if loop is not None:
                message = (
                    f"{call.text} may not run the same number of times on every rank: "
                    f"{loop_depends_on(facts, loop)}"
                )
                yield Finding(call.node, cls.code, message)

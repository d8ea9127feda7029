"""Rank functions for the comm-hook tests (run through ``esper_runtime.testing.run_on_ranks``).

One job runs every scenario on the same two ranks, to keep process launches (a torch import
each) few. Each scenario builds fresh slots, a fresh guard and fresh DDP models.

No ``from __future__ import annotations`` here: DDP checks a comm hook's annotations against the
real ``dist.GradBucket`` and ``Future[Tensor]`` objects.
"""

import logging
from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.algorithms.ddp_comm_hooks import default_hooks, powerSGD_hook
from torch.nn.parallel import DistributedDataParallel

from esper_runtime import DesyncError, SlotGuard, wrap_slots
from esper_runtime.comm_hook import install_comm_hook
from esper_runtime.testing import ReferenceSlot

STEPS = 6
DIVERGE_AT = 3  # rank 1 calls set_alpha() on one slot just before this step's forward
SLOTS = 3


class SlotModel(nn.Module):
    """Seed slots between two wider layers, so that DDP makes several gradient buckets."""

    def __init__(self) -> None:
        super().__init__()
        self.inp = nn.Linear(4, 48)
        self.mid = nn.Linear(48, 4)
        self.slots = nn.ModuleList(ReferenceSlot(8, "cosine") for _ in range(SLOTS))
        self.out = nn.Linear(4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden: torch.Tensor = self.mid(torch.relu(self.inp(x)))
        for slot in self.slots:
            hidden = slot(hidden)
        result: torch.Tensor = self.out(hidden)
        return result


def _ddp(
    model: nn.Module, bucket_view: bool = False, static_graph: bool = False
) -> DistributedDataParallel:
    # 0.5 kB buckets: the model's 561 parameters (2.2 kB) land in several buckets once DDP
    # rebuilds them after the first backward.
    return DistributedDataParallel(
        model,
        bucket_cap_mb=0.0005,
        gradient_as_bucket_view=bucket_view,
        static_graph=static_graph,
    )


def _batch(rank: int, step: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(1000 * step + rank)
    return torch.randn(16, 4, generator=generator)


def _train(
    rank: int,
    ddp: DistributedDataParallel,
    guard: SlotGuard,
    steps: int,
    before_step: Callable[[int], None] | None = None,
) -> list[list[torch.Tensor]]:
    """SGD steps; an epoch boundary (``guard.step_epoch()``) every two steps. Returns the grads."""
    optimizer = torch.optim.SGD(ddp.parameters(), lr=0.05)
    grads = []
    for step in range(steps):
        if before_step is not None:
            before_step(step)
        optimizer.zero_grad()
        ddp(_batch(rank, step)).pow(2).mean().backward()
        grads.append([p.grad.detach().clone() for p in ddp.parameters() if p.grad is not None])
        optimizer.step()
        if step % 2 == 1:
            guard.step_epoch()
    return grads


def _same(first: list[list[torch.Tensor]], second: list[list[torch.Tensor]]) -> bool:
    return len(first) == len(second) and all(
        len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
        for a, b in zip(first, second, strict=True)
    )


def _run(
    rank: int, hook: str, *, install: bool, bucket_view: bool = False, static_graph: bool = False
) -> dict[str, Any]:
    """A short training run with or without the slot check, around the named user hook."""
    torch.manual_seed(0)
    model = SlotModel()
    guard = wrap_slots(model, timeout=30)
    ddp = _ddp(model, bucket_view, static_graph)
    calls = {"count": 0}
    user_hook, user_state = _user_hook(hook, calls)
    check = None
    if install:
        check = install_comm_hook(ddp, guard, hook=user_hook, state=user_state)
    elif user_hook is not None:
        ddp.register_comm_hook(user_state, user_hook)
    grads = _train(rank, ddp, guard, STEPS)
    alphas = [slot.alpha for slot in model.slots]
    guard.unwrap()
    return {
        "grads": grads,
        "alphas": alphas,
        "checks": None if check is None else check.checks,
        "skipped": None if check is None else check.skipped,
        "user_calls": calls["count"],
        "params": [p.detach().clone() for p in ddp.parameters()],
    }


def _user_hook(name: str, calls: dict[str, int]) -> tuple[Any, Any]:
    if name == "stock":
        return None, None

    def counting_fp16_hook(
        state: dist.ProcessGroup | None, bucket: dist.GradBucket
    ) -> torch.futures.Future[torch.Tensor]:
        calls["count"] += 1
        return default_hooks.fp16_compress_hook(state, bucket)  # type: ignore[arg-type]

    def local_only_hook(
        state: object, bucket: dist.GradBucket
    ) -> torch.futures.Future[torch.Tensor]:
        # Like a local-SGD hook after its warm-up: no communication at all.
        calls["count"] += 1
        future: torch.futures.Future[torch.Tensor] = torch.futures.Future()
        future.set_result(bucket.buffer())
        return future

    if name == "fp16":
        return counting_fp16_hook, dist.group.WORLD
    return local_only_hook, None


def _checked_model(
    hook: str, timeout: float, static_graph: bool = False
) -> tuple[SlotModel, SlotGuard, DistributedDataParallel]:
    """A fresh model, its guard, and its DDP wrapper with the slot check around the named hook."""
    torch.manual_seed(0)
    model = SlotModel()
    guard = wrap_slots(model, timeout=timeout)
    ddp = _ddp(model, static_graph=static_graph)
    user_hook, user_state = _user_hook(hook, {"count": 0})
    install_comm_hook(ddp, guard, hook=user_hook, state=user_state)
    return model, guard, ddp


def _diverge(rank: int, hook: str, static_graph: bool = False) -> dict[str, Any]:
    """Rank 1 sets one slot's alpha mid-epoch; every rank must raise at that step's backward."""
    model, guard, ddp = _checked_model(hook, timeout=30, static_graph=static_graph)
    reached: list[int] = []

    def before_step(step: int) -> None:
        reached.append(step)
        if step == DIVERGE_AT and rank == 1:
            model.slots[1].set_alpha(0.625)

    outcome: dict[str, Any] = {"error": None}
    try:
        _train(rank, ddp, guard, STEPS, before_step)
    except DesyncError as error:
        outcome = {"error": type(error).__name__, "message": str(error)}
    outcome["failed_at_step"] = reached[-1]
    guard.unwrap()
    return outcome


def _uneven(rank: int, install: bool) -> dict[str, Any]:
    """Uneven inputs under ``ddp.join()``: rank 1 has two more batches than rank 0.

    The rank that joins early shadows the other's all-reduces through the hook, outside any
    backward. No epoch ticks: the ranks' step counts differ, and ticks would be a real desync.
    """
    torch.manual_seed(0)
    model = SlotModel()
    guard = wrap_slots(model, timeout=30)
    ddp = _ddp(model)
    check = install_comm_hook(ddp, guard) if install else None
    optimizer = torch.optim.SGD(ddp.parameters(), lr=0.05)
    with ddp.join():
        for step in range(STEPS + 2 * rank):
            optimizer.zero_grad()
            ddp(_batch(rank, step)).pow(2).mean().backward()
            optimizer.step()
    guard.unwrap()
    return {
        "grads": [],
        "params": [p.detach().clone() for p in ddp.parameters()],
        "checks": None if check is None else check.checks,
    }


def join_diverge_job(rank: int, world_size: int, hook: str, at: int) -> dict[str, Any]:
    """A mismatch while ranks are in ``join()``'s shadow; its own launch, as a fault ends in
    ranks raising and exiting.

    Rank r has ``STEPS + 2 r`` batches, so ranks join two steps apart; every rank still
    training at step ``at`` sets one slot's alpha before that batch. All must raise the guard's
    error with the per-rank table: the training ranks from that backward, the joined ones from
    the shadow of it, where the hook runs outside any backward. Each rank re-raises it, as an
    uncaught error in a real job: that ends the others' gloo collectives.
    """
    model, _guard, ddp = _checked_model(hook, timeout=5)
    optimizer = torch.optim.SGD(ddp.parameters(), lr=0.05)
    with ddp.join():
        for step in range(STEPS + 2 * rank):
            if step == at:
                model.slots[1].set_alpha(0.625)
            optimizer.zero_grad()
            ddp(_batch(rank, step)).pow(2).mean().backward()
            optimizer.step()
    return {"finished": True}  # not reached when the hook sees the mismatch


def _refusals(rank: int) -> dict[str, str]:
    """Misuse that must be refused with a clear ValueError/TypeError, before any backward."""
    messages: dict[str, str] = {}
    model = SlotModel()
    guard = wrap_slots(model, timeout=30)
    ddp = _ddp(model)
    cases: dict[str, Callable[[], object]] = {
        "powersgd": lambda: install_comm_hook(
            ddp,
            guard,
            hook=powerSGD_hook.powerSGD_hook,
            state=powerSGD_hook.PowerSGDState(process_group=None),
        ),
        "not_ddp": lambda: install_comm_hook(model, guard),  # type: ignore[arg-type]
    }
    for name, case in cases.items():
        try:
            case()
            messages[name] = "accepted"
        except (ValueError, TypeError) as error:
            messages[name] = f"{type(error).__name__}: {error}"
    ddp.register_comm_hook(dist.group.WORLD, default_hooks.allreduce_hook)
    try:
        install_comm_hook(ddp, guard)
        messages["second_hook"] = "accepted"
    except ValueError as error:
        messages["second_hook"] = f"ValueError: {error}"
    guard.unwrap()
    return messages


def comm_hook_job(rank: int, world_size: int) -> dict[str, Any]:
    logging.basicConfig(level=logging.WARNING)
    return {
        "stock_plain": _run(rank, "stock", install=False),
        "stock_checked": _run(rank, "stock", install=True),
        "view_plain": _run(rank, "stock", install=False, bucket_view=True),
        "view_checked": _run(rank, "stock", install=True, bucket_view=True),
        "fp16_plain": _run(rank, "fp16", install=False),
        "fp16_checked": _run(rank, "fp16", install=True),
        "local_checked": _run(rank, "local", install=True),
        "join_plain": _uneven(rank, install=False),
        "join_checked": _uneven(rank, install=True),
        "diverge_stock": _diverge(rank, "stock"),
        "diverge_fp16": _diverge(rank, "fp16"),
        # DDP(static_graph=True): the buckets are rebuilt after the first backward, then fixed.
        "static_plain": _run(rank, "fp16", install=False, static_graph=True),
        "static_checked": _run(rank, "fp16", install=True, static_graph=True),
        "static_stock_plain": _run(rank, "stock", install=False, static_graph=True),
        "static_stock_checked": _run(rank, "stock", install=True, static_graph=True),
        "diverge_static": _diverge(rank, "stock", static_graph=True),
        "refusals": _refusals(rank),
    }


def same_grads(first: dict[str, Any], second: dict[str, Any]) -> bool:
    return _same(first["grads"], second["grads"]) and all(
        torch.equal(a, b) for a, b in zip(first["params"], second["params"], strict=True)
    )

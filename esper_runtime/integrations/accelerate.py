"""Helpers for Hugging Face accelerate training loops.

    from esper_runtime.integrations.accelerate import prepare_slots, slot_epochs

    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    guard = prepare_slots(accelerator, model)            # every process, after prepare()
    for epoch in slot_epochs(guard, range(num_epochs)):  # ticks the slots after each epoch
        for batch in loader:
            ...
            accelerator.backward(loss)                   # each backward checks the slots

``prepare_slots`` wraps the slots of the unwrapped model (so they are named as in your own
module, without DDP's ``module.`` prefix) and, when accelerate wrapped the model in
``DistributedDataParallel``, installs the slot-checking comm hook. Under DeepSpeed or FSDP there
is no DDP comm hook to use: the guard's epoch-end syncs still run, the per-backward check does
not. This module does not import accelerate: it only calls ``accelerator.unwrap_model``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import timedelta
from typing import Any, TypeVar

from torch import nn
from torch.nn.parallel import DistributedDataParallel

from ..adapters import SlotAdapter
from ..comm_hook import CommHook, install_comm_hook
from ..guard import SlotGuard, wrap_slots

__all__ = ["prepare_slots", "slot_epochs"]

T = TypeVar("T")


def prepare_slots(
    accelerator: Any,
    model: nn.Module,
    *,
    timeout: float | timedelta = 60.0,
    src: int = 0,
    adapter: SlotAdapter | None = None,
    comm_hook: bool = True,
    hook: CommHook | None = None,
    hook_state: Any = None,
) -> SlotGuard:
    """Wrap the slots of ``model`` (as returned by ``accelerator.prepare``) on every process.

    ``timeout``, ``src`` and ``adapter`` go to ``wrap_slots``. With ``comm_hook`` (the default)
    and a DDP-wrapped model, ``install_comm_hook`` checks the slots at every backward; pass your
    own comm hook as ``hook``/``hook_state`` (not as accelerate's ``DistributedDataParallelKwargs
    (comm_hook=...)``: DDP accepts one hook per model). ``comm_check(guard)`` returns the
    installed hook's state (``None`` when none was installed).
    """
    bare: nn.Module = accelerator.unwrap_model(model)
    guard = wrap_slots(bare, src=src, timeout=timeout, adapter=adapter)
    if comm_hook and isinstance(model, DistributedDataParallel):
        install_comm_hook(model, guard, hook=hook, state=hook_state)
    return guard


def slot_epochs(guard: SlotGuard, epochs: Iterable[T]) -> Iterator[T]:
    """Yield each epoch, and tick every slot once (one coalesced sync) after its body ran.

    A ``break`` out of the loop skips the tick of that last epoch, on the ranks that break.
    """
    for epoch in epochs:
        yield epoch
        guard.step_epoch()

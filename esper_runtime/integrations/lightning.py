"""A Lightning ``Callback`` that guards a LightningModule's seed slots.

    from esper_runtime.integrations.lightning import EsperSlotsCallback
    trainer = Trainer(strategy="ddp", callbacks=[EsperSlotsCallback(timeout=60)])

At ``setup`` (every rank, process group up, before DDP wraps the module) it wraps the
module's slots with :func:`esper_runtime.wrap_slots`; at ``on_train_start``, when the strategy
has wrapped the module in ``DistributedDataParallel``, it installs the slot-checking comm hook
(:func:`esper_runtime.comm_hook.install_comm_hook`); at each ``on_train_epoch_end`` it ticks
every slot once with one coalesced sync (``guard.step_epoch()``); at ``teardown``, or when fit
raises, it unwraps.

Do not tick the slots yourself as well (e.g. in ``on_train_epoch_end`` of the module): each
tick would count. Needs ``lightning`` 2 (``lightning.pytorch``); the separate
``pytorch_lightning`` package has its own ``Callback`` class, which this one is not.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from torch.nn.parallel import DistributedDataParallel

from ..adapters import SlotAdapter
from ..comm_hook import CommHook, SlotCheckHook, install_comm_hook
from ..guard import SlotGuard, wrap_slots

try:
    from lightning.pytorch import Callback, LightningModule, Trainer
except ImportError as error:  # pragma: no cover - lightning is in the dev extra
    raise ImportError(
        "esper_runtime.integrations.lightning needs Lightning 2 (lightning.pytorch): "
        "pip install lightning"
    ) from error

__all__ = ["EsperSlotsCallback"]


class EsperSlotsCallback(Callback):
    """Wrap the module's slots at setup, check them at every backward, tick them per epoch.

    ``timeout``, ``src`` and ``adapter`` are passed to ``wrap_slots``. ``comm_hook=False`` skips
    the per-backward check (the epoch-end sync still runs). ``hook``/``hook_state`` are your own
    DDP comm hook, wrapped by esper_runtime's: give them here, not to ``DDPStrategy``, because
    DDP accepts one hook per model. ``guard`` is set during fit; ``check`` (the hook's state,
    with its ``checks`` count) from the start of training until the next fit.
    """

    def __init__(
        self,
        *,
        timeout: float | timedelta = 60.0,
        src: int = 0,
        adapter: SlotAdapter | None = None,
        comm_hook: bool = True,
        hook: CommHook | None = None,
        hook_state: Any = None,
    ) -> None:
        super().__init__()
        self.timeout = timeout
        self.src = src
        self.adapter = adapter
        self.comm_hook = comm_hook
        self.hook = hook
        self.hook_state = hook_state
        self.guard: SlotGuard | None = None
        self.check: SlotCheckHook | None = None
        self.epochs_ticked = 0

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if stage != "fit" or self.guard is not None:
            return
        self.guard = wrap_slots(pl_module, src=self.src, timeout=self.timeout, adapter=self.adapter)

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        model = trainer.strategy.model
        if self.comm_hook and self.guard is not None and isinstance(model, DistributedDataParallel):
            self.check = install_comm_hook(model, self.guard, hook=self.hook, state=self.hook_state)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.guard is not None:
            self.guard.step_epoch()
            self.epochs_ticked += 1

    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if stage == "fit":
            self._unwrap()

    def on_exception(
        self, trainer: Trainer, pl_module: LightningModule, exception: BaseException
    ) -> None:
        # Lightning skips the callbacks' teardown when fit raises.
        self._unwrap()

    def _unwrap(self) -> None:
        if self.guard is not None:
            self.guard.unwrap()
            self.guard = None

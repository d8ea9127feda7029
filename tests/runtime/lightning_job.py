"""Run as a script by tests/runtime/test_integrations.py: Lightning's Trainer with
``strategy="ddp"``, ``accelerator="cpu"``, ``devices=2``, and ``EsperSlotsCallback``.

    python lightning_job.py OUT_DIR MODE

Lightning starts the second process itself (it runs this script again with ``LOCAL_RANK=1``).
MODE ``healthy`` trains three epochs; ``diverge`` makes rank 1 set one slot's alpha in epoch 1.
Each process writes ``OUT_DIR/rank<r>.json`` and leaves with ``os._exit`` (torch 2.13 + gloo may
abort at interpreter exit after a desync, pytorch#179291).
"""

from typing import Any

import lightning.pytorch as pl
import torch
from job_entry import run_and_record
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from esper_runtime import DesyncError
from esper_runtime.integrations.lightning import EsperSlotsCallback
from esper_runtime.testing import ReferenceSlot

EPOCHS = 3
DIVERGE = (1, 2)  # (epoch, batch) at which rank 1 sets slot 0's alpha


class SlotModule(pl.LightningModule):
    def __init__(self, mode: str) -> None:
        super().__init__()
        self.mode = mode
        self.slots = nn.ModuleList(ReferenceSlot(4, "cosine") for _ in range(2))
        self.out = nn.Linear(4, 1)
        self.alphas: list[list[float]] = []
        self.batches = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for slot in self.slots:
            x = slot(x)
        result: torch.Tensor = self.out(x)
        return result

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        if self.mode == "diverge" and self.global_rank == 1:
            if (self.current_epoch, batch_idx) == DIVERGE:
                self.slots[0].set_alpha(0.625)
        x, y = batch
        self.batches += 1
        loss: torch.Tensor = nn.functional.mse_loss(self(x), y)
        return loss

    def on_train_epoch_end(self) -> None:  # runs after the callbacks' on_train_epoch_end
        self.alphas.append([slot.alpha for slot in self.slots])

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.05)


def train(mode: str) -> dict[str, Any]:
    torch.manual_seed(0)
    module = SlotModule(mode)
    callback = EsperSlotsCallback(timeout=30)
    trainer = pl.Trainer(
        strategy="ddp",
        accelerator="cpu",
        devices=2,
        max_epochs=EPOCHS,
        callbacks=[callback],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    data = TensorDataset(torch.randn(64, 4), torch.randn(64, 1))
    record: dict[str, Any] = {}
    try:
        trainer.fit(module, DataLoader(data, batch_size=8))
    except DesyncError as error:
        record["error"] = {"type": type(error).__name__, "message": str(error)}
        record["error_at"] = [module.current_epoch, module.batches]
    record.update(
        rank=trainer.global_rank,
        world_size=trainer.world_size,
        strategy=type(trainer.strategy).__name__,
        alphas=module.alphas,
        batches=module.batches,
        epochs_ticked=callback.epochs_ticked,
        checks=None if callback.check is None else callback.check.checks,
        unwrapped=callback.guard is None,
    )
    return record


def main() -> None:
    run_and_record(train, "LOCAL_RANK")


if __name__ == "__main__":
    main()

"""Run by ``accelerate launch`` (2 CPU processes) from tests/runtime/test_integrations.py.

    accelerate launch --multi_gpu --num_processes 2 accelerate_job.py OUT_DIR MODE

MODE ``healthy`` trains three epochs; ``diverge`` makes rank 1 set one slot's alpha mid-epoch
1. Each process writes ``OUT_DIR/rank<r>.json`` and leaves with ``os._exit`` (torch 2.13 + gloo
may abort at interpreter exit after a desync, pytorch#179291).
"""

from typing import Any

import torch
from accelerate import Accelerator
from job_entry import run_and_record
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from esper_runtime import DesyncError
from esper_runtime.comm_hook import comm_check
from esper_runtime.integrations.accelerate import prepare_slots, slot_epochs
from esper_runtime.testing import ReferenceSlot

EPOCHS = 3
DIVERGE = (1, 2)  # (epoch, batch) at which rank 1 sets slot 0's alpha


class SlotNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.slots = nn.ModuleList(ReferenceSlot(4, "cosine") for _ in range(2))
        self.out = nn.Linear(4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for slot in self.slots:
            x = slot(x)
        result: torch.Tensor = self.out(x)
        return result


def train(mode: str) -> dict[str, Any]:
    accelerator = Accelerator(cpu=True)
    torch.manual_seed(0)
    model = SlotNet()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    data = TensorDataset(torch.randn(64, 4), torch.randn(64, 1))
    loader = DataLoader(data, batch_size=8)
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    guard = prepare_slots(accelerator, model, timeout=30)
    bare = accelerator.unwrap_model(model)
    record: dict[str, Any] = {
        "rank": accelerator.process_index,
        "distributed_type": str(accelerator.distributed_type),
        "ddp": type(model).__name__,
        "slot_names": list(guard.slot_names),
        "alphas": [],
        "batches": 0,
    }
    try:
        for epoch in slot_epochs(guard, range(EPOCHS)):
            for index, (x, y) in enumerate(loader):
                if mode == "diverge" and accelerator.process_index == 1:
                    if (epoch, index) == DIVERGE:
                        bare.slots[0].set_alpha(0.625)
                optimizer.zero_grad()
                loss = nn.functional.mse_loss(model(x), y)
                accelerator.backward(loss)
                optimizer.step()
                record["batches"] += 1
            record["alphas"].append([slot.alpha for slot in bare.slots])
        record["alphas"].append([slot.alpha for slot in bare.slots])
    except DesyncError as error:
        record["error"] = {"type": type(error).__name__, "message": str(error)}
        record["error_at"] = [epoch, index]
    check = comm_check(guard)
    record["checks"] = None if check is None else check.checks
    guard.unwrap()
    return record


def main() -> None:
    run_and_record(train, "RANK")


if __name__ == "__main__":
    main()

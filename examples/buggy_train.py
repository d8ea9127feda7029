"""What esper-lint catches: two ways to tick seed slots out of step across DDP ranks.

    esper-lint examples/buggy_train.py

reports ESP002 on the tick inside the loader loop and ESP001 on the rank-0-only tick (each line
is marked below). Do not train with this loop; examples/ddp_train.py is the runnable example.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from esper_runtime.testing import ReferenceSlot

BATCHES_PER_TICK = 4


def train(
    model: nn.Module,
    slot: ReferenceSlot,
    train_loader: DataLoader[tuple[torch.Tensor, ...]],
    optimizer: torch.optim.Optimizer,
    epochs: int,
) -> None:
    for epoch in range(epochs):
        for step, (inputs, targets) in enumerate(train_loader):
            optimizer.zero_grad()
            loss = F.mse_loss(model(inputs), targets)
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
            if (step + 1) % BATCHES_PER_TICK == 0:
                # BUG (ESP002): how often this runs depends on this rank's loader length.
                slot.step_epoch()
        if dist.get_rank() == 0:
            print(f"epoch {epoch} alpha {slot.alpha:.3f}")
            # BUG (ESP001): only rank 0 ticks; every other rank keeps blending with the old alpha.
            slot.step_epoch()

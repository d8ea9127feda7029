"""Train a tiny model holding two seed slots under DDP, with the slots wrapped by the runtime guard.

    torchrun --standalone --nproc-per-node 2 examples/ddp_train.py            # completes
    torchrun --standalone --nproc-per-node 2 examples/ddp_train.py --uneven   # DesyncError, exit 3

Every rank trains on its own synthetic data. The blend schedule advances the slots once every
BATCHES_PER_TICK batches, like a learning-rate scheduler counted in optimizer steps. With the same
number of batches on every rank that is symmetric. With `--uneven`, rank r holds r * EXTRA_BATCHES
more batches, so ranks tick a different number of times per epoch: the desync from the origin
ticket. DDP's `join()` keeps the gradient all-reduces matched despite the uneven loaders, so the
first collective that disagrees is the guard's epoch-boundary check, and every rank raises.

Exit codes: 0 the job completed; 3 the guard raised DesyncError or DesyncTimeout on this rank
(torchrun then exits 1); 2 bad command-line arguments.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import TextIO

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, TensorDataset

from esper_runtime import DesyncError, SlotGuard, wrap_slots
from esper_runtime.testing import ReferenceSlot

EXIT_DESYNC = 3
FEATURES = 8
BATCH_SIZE = 4
BATCHES_PER_EPOCH = 8
BATCHES_PER_TICK = 4
EXTRA_BATCHES = 4  # --uneven: rank r gets BATCHES_PER_EPOCH + r * EXTRA_BATCHES batches
# The default group's own collectives (DDP's all-reduces) are not watched by the guard; bound them
# anyway so that a bug outside the slots cannot hang the job for gloo's default 30 minutes.
DEFAULT_GROUP_TIMEOUT = timedelta(seconds=120)

BatchHook = Callable[[int], None]


class TinyModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Linear(FEATURES, FEATURES)
        self.slot_a = ReferenceSlot(total_steps=10, curve="linear", features=FEATURES)
        self.slot_b = ReferenceSlot(total_steps=20, curve="cosine", features=FEATURES)
        self.head = nn.Linear(FEATURES, 1)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        hidden = torch.relu(self.encoder(inputs))
        return self.head(self.slot_b(self.slot_a(hidden)))  # type: ignore[no-any-return]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--epochs", type=int, default=3, help="epochs to train (default 3)")
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="guard timeout in seconds (default 60)"
    )
    parser.add_argument(
        "--uneven", action="store_true", help="give each rank a different number of batches"
    )
    parser.add_argument(
        "--run-tag", default="", help="free-form tag, echoed at start (lets tests find processes)"
    )
    return parser.parse_args(argv)


def rank_batches(rank: int, uneven: bool) -> int:
    return BATCHES_PER_EPOCH + (rank * EXTRA_BATCHES if uneven else 0)


def make_loader(rank: int, uneven: bool) -> DataLoader[tuple[torch.Tensor, ...]]:
    samples = rank_batches(rank, uneven) * BATCH_SIZE
    generator = torch.Generator().manual_seed(1234 + rank)
    inputs = torch.randn(samples, FEATURES, generator=generator)
    targets = inputs.sum(dim=1, keepdim=True)
    return DataLoader(TensorDataset(inputs, targets), batch_size=BATCH_SIZE, shuffle=False)


def tick_every(period: int, slots: Sequence[ReferenceSlot]) -> BatchHook:
    """A blend schedule counted in batches: advance every slot once per `period` batches.

    esper-lint does not follow calls through a list of callbacks, so it cannot see that this tick
    runs a data-dependent number of times per epoch. This is the case the runtime guard is for.
    """

    def on_batch_end(batch_index: int) -> None:
        if (batch_index + 1) % period == 0:
            for slot in slots:
                slot.step_epoch()

    return on_batch_end


def train_epoch(
    model: DistributedDataParallel,
    loader: DataLoader[tuple[torch.Tensor, ...]],
    optimizer: torch.optim.Optimizer,
    guard: SlotGuard,
    on_batch_end: Sequence[BatchHook],
) -> None:
    # batched(): the slot syncs wait for the end of the epoch, after join() has drained DDP's
    # all-reduces. Checked inside the loop, a rank with more batches would wait in the guard while
    # the others wait in DDP: only the guard side can time out, and it would be one rank's error.
    with guard.batched(), model.join():
        for batch_index, (inputs, targets) in enumerate(loader):
            optimizer.zero_grad()
            loss = F.mse_loss(model(inputs), targets)
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
            for hook in on_batch_end:
                hook(batch_index)


def train(args: argparse.Namespace, rank: int, started: float) -> None:
    torch.manual_seed(0)  # same initial weights on every rank (DDP broadcasts them anyway)
    model = TinyModel()
    guard = wrap_slots(model, timeout=args.timeout)
    ddp_model = DistributedDataParallel(model)
    optimizer = torch.optim.SGD(ddp_model.parameters(), lr=0.01)
    loader = make_loader(rank, args.uneven)
    hooks = [tick_every(BATCHES_PER_TICK, [model.slot_a, model.slot_b])]
    say(f"rank {rank} pid {os.getpid()} batches {len(loader)} tag {args.run_tag}")
    for epoch in range(args.epochs):
        train_epoch(ddp_model, loader, optimizer, guard, hooks)
        alphas = " ".join(f"{slot.alpha:.6f}" for slot in (model.slot_a, model.slot_b))
        elapsed = time.monotonic() - started
        say(f"rank {rank} epoch {epoch} alphas {alphas} t {elapsed:.2f}")
    guard.unwrap()


def say(text: str, stream: TextIO | None = None) -> None:
    """Write one line in a single write: all ranks share torchrun's stdout and stderr, and
    print() writes the line and its newline separately, so lines of two ranks can interleave."""
    out = sys.stdout if stream is None else stream
    out.write(text + "\n")
    out.flush()


def destroy_process_group_quietly() -> None:
    if not dist.is_initialized():
        return
    try:
        dist.destroy_process_group()
    except (RuntimeError, ValueError) as error:  # exiting anyway; the original error matters more
        say(f"destroy_process_group failed: {error}", sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(1)
    dist.init_process_group("gloo", timeout=DEFAULT_GROUP_TIMEOUT)
    rank = dist.get_rank()
    started = time.monotonic()
    try:
        train(args, rank, started)
    except DesyncError as error:
        elapsed = time.monotonic() - started
        say(f"rank {rank}: {type(error).__name__} after {elapsed:.2f} s:\n{error}", sys.stderr)
        return EXIT_DESYNC
    finally:
        destroy_process_group_quietly()
    return 0


if __name__ == "__main__":
    exit_code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter finalization: gloo's C++ threads can still be torn down then, which
    # intermittently aborts an otherwise finished rank ("terminate called without an active
    # exception", SIGABRT; see docs/reliability.md). Everything is flushed and the process
    # group destroyed above, so nothing is lost.
    os._exit(exit_code)

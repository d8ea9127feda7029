"""Per-step cost of esper_runtime's DDP comm hook, against the same DDP model without it.

    python benchmarks/comm_hook_overhead.py [--steps 200] [--slots 1 8 64] [--features 32]
                                            [--batch 32] [--model chain|host] [--json]

Two spawned gloo ranks over loopback (CPU). For each K, three identical models are wrapped by
their own guard and DDP. ``--model chain`` (the default, the worst case: a step of about a
millisecond, so the hook's fixed cost weighs most) is K chained ``ReferenceSlot``s
(``features`` wide); ``--model host`` is shaped like an Esper model, K slots grafted into a small
convolutional host (two 3x3 convolutions of 16 channels on 32x32 images, then a linear layer
to ``features`` and the slots, then a 10-way head):

- ``plain``: DDP with its default all-reduce (C++, no comm hook);
- ``python hook``: DDP with the stock ``allreduce_hook`` registered as a Python comm hook, the
  price of any Python hook (and a measure of the noise between two models doing the same work);
- ``hooked``: DDP plus ``install_comm_hook(ddp, guard)``.

One step is forward, backward (DDP's all-reduce included) and an SGD step. The three models take
turns step by step, in an order rotated at every step, so load from elsewhere on the machine
and the position in the turn hit all three alike. Also timed,
alone: the hook's own work per backward (``SlotCheckHook.check_values``: read the K slots, pack
them, look up the 66 check values, hashing only when the slots changed), without any
communication.

Reported: the median over steps of the slowest rank's time per step, in microseconds, the
ratio hooked / plain of those medians, the "paired" ratios (the median over steps of hooked /
plain within one step's turn, less sensitive to load that comes and goes between steps), and
the hook's own work as a share of the plain step (the part of the cost that does not depend on
how busy the machine is). Target: hooked costs < 2% more than
plain (ratio < 1.02). Each rank uses one intra-op thread.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook
from torch.nn.parallel import DistributedDataParallel

from esper_runtime import wrap_slots
from esper_runtime.comm_hook import SlotCheckHook, install_comm_hook
from esper_runtime.testing import ReferenceSlot, run_on_ranks

MODES = ("plain", "python hook", "hooked")
WARMUP = 10
HOST_CHANNELS = 16
TARGET = 1.02
COLUMNS = (*MODES, "fingerprint", "paired plain", "paired python hook")


def _model(kind: str, count: int, features: int) -> nn.Sequential:
    torch.manual_seed(0)
    # A ramp long enough that no slot reaches its target during the run.
    slots = [ReferenceSlot(10**6, "cosine", features=features) for _ in range(count)]
    if kind == "chain":
        return nn.Sequential(*slots)
    host = [
        nn.Conv2d(3, HOST_CHANNELS, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(HOST_CHANNELS, HOST_CHANNELS, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(4),
        nn.Flatten(),
        nn.Linear(HOST_CHANNELS * 16, features),
    ]
    return nn.Sequential(*host, *slots, nn.Linear(features, 10))


def _input(kind: str, batch: int, features: int, generator: torch.Generator) -> torch.Tensor:
    shape = (batch, features) if kind == "chain" else (batch, 3, 32, 32)
    return torch.randn(*shape, generator=generator)


def _slowest(times: list[float]) -> list[float]:
    local = torch.tensor(times, dtype=torch.float64)
    dist.all_reduce(local, op=dist.ReduceOp.MAX)
    return [float(t) for t in local.tolist()]


def measure(
    rank: int,
    world_size: int,
    slot_counts: list[int],
    steps: int,
    features: int,
    batch: int,
    kind: str = "chain",
) -> dict[str, float]:
    """Runs on every rank; returns {"<mode>|<K>": median microseconds}."""
    torch.set_num_threads(1)  # two ranks on two cores: no intra-op threads fighting over them
    results: dict[str, float] = {}
    generator = torch.Generator().manual_seed(rank)
    for count in slot_counts:
        setups = {}
        for mode in MODES:
            model = _model(kind, count, features)
            guard = wrap_slots(model, timeout=60)
            ddp = DistributedDataParallel(model)
            if mode == "hooked":
                install_comm_hook(ddp, guard)
            elif mode == "python hook":
                ddp.register_comm_hook(ddp.process_group, allreduce_hook)
            setups[mode] = (ddp, torch.optim.SGD(ddp.parameters(), lr=1e-3), guard)
        times: dict[str, list[float]] = {mode: [] for mode in (*MODES, "fingerprint")}
        for index in range(WARMUP + steps):
            x = _input(kind, batch, features, generator)
            for mode in _turn_order(index):
                ddp, optimizer, _ = setups[mode]
                dist.barrier()
                start = time.perf_counter()
                optimizer.zero_grad()
                ddp(x).square().mean().backward()
                optimizer.step()
                if index >= WARMUP:
                    times[mode].append(time.perf_counter() - start)
            hook_state = _hook_state(setups["hooked"][0])
            start = time.perf_counter()
            hook_state.check_values(torch.float32, torch.device("cpu"))
            if index >= WARMUP:
                times["fingerprint"].append(time.perf_counter() - start)
        slowest = {mode: _slowest(step_times) for mode, step_times in times.items()}
        for mode, step_times in slowest.items():
            results[f"{mode}|{count}"] = statistics.median(step_times) * 1e6
        for baseline in ("plain", "python hook"):
            results[f"paired {baseline}|{count}"] = _paired(slowest["hooked"], slowest[baseline])
        for _, _, guard in setups.values():
            guard.unwrap()
    return results


def _turn_order(step: int) -> tuple[str, ...]:
    """The modes in the order they run at this step: rotated, so none always runs first."""
    shift = step % len(MODES)
    return MODES[shift:] + MODES[:shift]


def _paired(hooked: list[float], baseline: list[float]) -> float:
    """The median over steps of hooked / baseline within the same step's turn."""
    return statistics.median(h / b for h, b in zip(hooked, baseline, strict=True))


def _hook_state(ddp: DistributedDataParallel) -> SlotCheckHook:
    state = ddp._comm_hooks[0][1]
    assert isinstance(state, SlotCheckHook)
    return state


def format_table(rows: list[tuple[int, dict[str, float]]]) -> str:
    lines = [
        "| K | plain step (us) | python hook step (us) | hooked step (us) | hooked / plain "
        "| hooked / python hook | paired hooked / plain | paired hooked / python hook "
        "| hook's own work (us) | own work / plain step |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for count, timing in rows:
        ratio = timing["hooked"] / timing["plain"]
        versus_python = timing["hooked"] / timing["python hook"]
        share = timing["fingerprint"] / timing["plain"]
        lines.append(
            f"| {count} | {timing['plain']:.0f} | {timing['python hook']:.0f} "
            f"| {timing['hooked']:.0f} | {ratio:.3f} | {versus_python:.3f} "
            f"| {timing['paired plain']:.3f} | {timing['paired python hook']:.3f} "
            f"| {timing['fingerprint']:.0f} | {share:.4f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--slots", type=int, nargs="+", default=[1, 8, 64])
    parser.add_argument("--features", type=int, default=32)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--model", choices=("chain", "host"), default="chain")
    parser.add_argument("--json", action="store_true", help="print raw timings as JSON too")
    args = parser.parse_args(argv)

    outcomes = run_on_ranks(
        measure,
        2,
        timeout=1800,
        args=(args.slots, args.steps, args.features, args.batch, args.model),
    )
    first = outcomes[0]
    if not isinstance(first, dict):
        print(f"benchmark failed: {outcomes!r}", file=sys.stderr)
        return 1
    rows = [(count, {m: first[f"{m}|{count}"] for m in COLUMNS}) for count in args.slots]
    print(format_table(rows))
    verdicts = []
    for count, timing in rows:
        ratio = timing["hooked"] / timing["plain"]
        verdicts.append(ratio < TARGET)
        print(
            f"K={count}: hooked / plain = {ratio:.3f} (target < {TARGET}): "
            f"{'met' if ratio < TARGET else 'MISSED'}"
        )
    if args.json:
        print(json.dumps(first, indent=2))
    return 0 if all(verdicts) else 3


if __name__ == "__main__":
    raise SystemExit(main())

"""The table of sanitisers: calls that make a value the same on every rank.

Data, not code. A value computed from one rank's batch (a loss, a metric, a flag), from the wall
clock or from a random generator differs across ranks; an exit decided on it is rank-local
(ESP005). Once a reduction or a broadcast has run, the value is the same everywhere and deciding
on it is safe. ``values`` applies these entries while it walks a file; the docs
(docs/configuration.md) print the table; ``extend-sanitizers`` adds names.

How a call is recognised (``Sanitizer`` fields; an entry matches when one applies):

- ``modules``: the callee, resolved through the file's imports, is ``<module>.<name>`` for one of
  these modules (``import torch.distributed as dist``; ``dist.all_reduce(t)``);
- ``receivers``: ``obj.name(...)`` where the final name of ``obj``, lower-cased, contains one of
  these words (``accelerator``, ``self.accelerator``; ``trainer.strategy``);
- ``any_receiver``: ``name(...)`` or ``obj.name(...)`` whatever ``obj`` is.

What it makes uniform (``effect``):

- ``RESULT``: the value the call returns (``accelerator.gather(loss)``);
- ``IN_PLACE``: the arguments at ``arguments`` (positions), when they are plain names
  (``dist.all_reduce(flag)`` makes ``flag`` uniform; ``comm.Allreduce(send, recv)`` makes ``recv``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Effect(Enum):
    RESULT = "the result"
    IN_PLACE = "the buffer, in place"


@dataclass(frozen=True)
class Sanitizer:
    """One call that leaves a value the same on every rank (see the module docstring)."""

    api: str  # as its documentation names it
    library: str
    names: tuple[str, ...]
    effect: Effect
    source: str  # a documentation page that says what the call leaves on every rank
    modules: tuple[str, ...] = ()
    receivers: tuple[str, ...] = ()
    any_receiver: bool = False
    arguments: tuple[int, ...] = (0,)  # IN_PLACE: the positions of the buffers


_TORCH_DIST_DOCS = "https://docs.pytorch.org/docs/stable/distributed.html"
_TORCH_DIST_MODULES = ("torch.distributed", "deepspeed.comm")
_IN_PLACE_MODULES = (*_TORCH_DIST_MODULES, "mmengine.dist", "mmengine.dist.dist")
_MPI4PY_DOCS = "https://mpi4py.readthedocs.io/en/stable/tutorial.html#collective-communication"

SANITIZERS: tuple[Sanitizer, ...] = (
    # --- torch.distributed (and deepspeed.comm, which mirrors it) -------------------------
    Sanitizer(
        api="torch.distributed.all_reduce / broadcast / all_gather_into_tensor",
        library="torch",
        names=("all_reduce", "broadcast", "all_gather_into_tensor"),
        modules=_IN_PLACE_MODULES,
        effect=Effect.IN_PLACE,
        source=_TORCH_DIST_DOCS,
    ),
    Sanitizer(
        api="torch.distributed.all_gather / all_gather_object / broadcast_object_list",
        library="torch",
        names=("all_gather", "all_gather_object", "broadcast_object_list"),
        modules=_TORCH_DIST_MODULES,
        effect=Effect.IN_PLACE,
        source=_TORCH_DIST_DOCS,
    ),
    # --- accelerate ---------------------------------------------------------------------------
    Sanitizer(
        api="Accelerator.gather / reduce / gather_for_metrics",
        library="accelerate",
        names=("gather", "reduce", "gather_for_metrics"),
        receivers=("accelerator",),
        effect=Effect.RESULT,
        source="https://huggingface.co/docs/accelerate/package_reference/accelerator",
    ),
    Sanitizer(
        api="accelerate.utils.gather / reduce / broadcast / gather_object",
        library="accelerate",
        names=("gather", "reduce", "broadcast", "gather_object"),
        modules=("accelerate.utils", "accelerate.utils.operations"),
        effect=Effect.RESULT,
        source="https://huggingface.co/docs/accelerate/package_reference/utilities",
    ),
    Sanitizer(
        api="accelerate.utils.broadcast_object_list",
        library="accelerate",
        names=("broadcast_object_list",),
        modules=("accelerate.utils", "accelerate.utils.operations"),
        effect=Effect.IN_PLACE,
        source="https://huggingface.co/docs/accelerate/package_reference/utilities",
    ),
    # --- Lightning ----------------------------------------------------------------------------
    Sanitizer(
        api="Fabric.all_reduce / broadcast / all_gather",
        library="lightning",
        names=("all_reduce", "broadcast", "all_gather"),
        receivers=("fabric",),
        effect=Effect.RESULT,
        source="https://lightning.ai/docs/fabric/stable/api/fabric_methods.html",
    ),
    Sanitizer(
        api="Strategy.reduce / broadcast / all_gather / reduce_boolean_decision",
        library="lightning",
        names=("reduce", "broadcast", "all_gather", "reduce_boolean_decision"),
        receivers=("strategy",),
        effect=Effect.RESULT,
        source="https://lightning.ai/docs/pytorch/stable/extensions/strategy.html",
    ),
    Sanitizer(
        api="LightningModule.all_gather",
        library="lightning",
        names=("all_gather",),
        receivers=("self", "module", "model"),
        effect=Effect.RESULT,
        source="https://lightning.ai/docs/pytorch/stable/common/lightning_module.html#all-gather",
    ),
    Sanitizer(
        api="lightning.fabric.utilities.distributed.sync_ddp / sync_ddp_if_available",
        library="lightning",
        names=("sync_ddp", "sync_ddp_if_available"),
        any_receiver=True,
        effect=Effect.RESULT,
        source="https://github.com/Lightning-AI/pytorch-lightning/blob/master/src/lightning/fabric/utilities/distributed.py",
    ),
    # --- mpi4py -------------------------------------------------------------------------------
    Sanitizer(
        api="mpi4py Comm.allreduce / bcast / allgather",
        library="mpi4py",
        names=("allreduce", "bcast", "allgather"),
        receivers=("comm",),
        effect=Effect.RESULT,
        source=_MPI4PY_DOCS,
    ),
    Sanitizer(
        api="mpi4py Comm.Bcast",
        library="mpi4py",
        names=("Bcast",),
        receivers=("comm",),
        effect=Effect.IN_PLACE,
        source=_MPI4PY_DOCS,
    ),
    Sanitizer(
        api="mpi4py Comm.Allreduce / Allgather (the receive buffer)",
        library="mpi4py",
        names=("Allreduce", "Allgather"),
        receivers=("comm",),
        effect=Effect.IN_PLACE,
        arguments=(1,),
        source=_MPI4PY_DOCS,
    ),
    # --- helpers of the training libraries ----------------------------------------------------
    Sanitizer(
        api="timm.utils.reduce_tensor / mmengine.dist.all_reduce_dict",
        library="timm, mmengine",
        names=("reduce_tensor", "all_reduce_dict"),
        modules=("timm.utils", "timm.utils.distributed", "mmengine.dist", "mmengine.dist.dist"),
        effect=Effect.RESULT,
        source="https://mmengine.readthedocs.io/en/latest/api/dist.html",
    ),
)


def configured(extension: tuple[str, ...]) -> tuple[Sanitizer, ...]:
    """The table, then one entry per ``extend-sanitizers`` name (a function or method of that
    name returns a value that is the same on every rank)."""
    return SANITIZERS + tuple(_configured_entry(name) for name in extension)


def _configured_entry(name: str) -> Sanitizer:
    return Sanitizer(
        api=name,
        library="configuration",
        names=(name,),
        any_receiver=True,
        effect=Effect.RESULT,
        source="extend-sanitizers",
    )


def by_name(entries: tuple[Sanitizer, ...]) -> dict[str, tuple[Sanitizer, ...]]:
    index: dict[str, list[Sanitizer]] = {}
    for entry in entries:
        for name in entry.names:
            index.setdefault(name, []).append(entry)
    return {name: tuple(found) for name, found in index.items()}

"""The table of implicitly collective APIs: calls that look local but that every rank must make.

Data, not code: each entry says which calls it recognises, under which backends the call is a
collective, why, and where that is documented (an upstream page or issue). ``implicit``
recognises the calls from this table; ESP006 reports them when only some ranks make them; the
docs (docs/configuration.md, docs/rules/ESP006.md) print the table. No libcst here: the engine's
prefilter reads the words of this table on every run.

How a call is recognised (``ImplicitCollective`` fields; an entry matches when one applies):

- ``receivers``: ``obj.name(...)`` where the final name of ``obj``, lower-cased, contains one of
  these words (``accelerator`` matches ``accelerator``, ``self.accelerator``, ``main_accelerator``);
- ``any_receiver``: ``obj.name(...)`` whatever ``obj`` is (names distinctive enough on their own);
- ``qualified``: the callee, resolved through the file's imports, is one of these names
  (``import torch.distributed.checkpoint as dcp``; ``dcp.save(...)``);
- ``bound_to``: ``obj.name(...)`` (or, with ``calls_bound``, ``obj(...)``) where ``obj`` was bound
  in the same scope to the result of a call whose qualified name starts with one of these
  (``metric = torchmetrics.Accuracy(...)``; ``model = DDP(model)``;
  ``engine, *_ = deepspeed.initialize(...)``, whose first element is the engine);
- ``not_qualified``: never when the callee resolves through imports to one of these names, whatever
  the other fields say (``dist_autograd.backward(ctx, [loss])``, RPC's distributed autograd, is
  not ``Tensor.backward``);
- ``required_keyword``: only when the call passes this keyword with a value other than
  ``False``/``None``/``0`` (``self.log(..., sync_dist=True)``);
- ``disabled_by``: a constructor keyword that, passed as ``False``, makes the bound value's
  calls local (``DistributedDataParallel(..., broadcast_buffers=False)``).
"""

from __future__ import annotations

from dataclasses import dataclass

from esper_lint.analysis.backend_names import BACKEND_TITLES, BACKENDS, DDP, DEEPSPEED, FSDP

ALL = frozenset(BACKENDS)
SHARDED = frozenset({DEEPSPEED, FSDP})

DDP_CLASSES = (
    "torch.nn.parallel.DistributedDataParallel",
    "torch.nn.parallel.distributed.DistributedDataParallel",
)
DEEPSPEED_INITIALIZE = ("deepspeed.initialize",)
DEEPSPEED_ENGINE_WORDS = ("engine", "deepspeed")
TORCHMETRICS = ("torchmetrics.",)
DCP = "torch.distributed.checkpoint"
DCP_STATE_DICT = f"{DCP}.state_dict"


@dataclass(frozen=True)
class ImplicitCollective:
    """One implicitly collective API (see the module docstring for how it is recognised)."""

    api: str  # as its documentation names it
    library: str
    names: tuple[str, ...]  # the method or function names (for a bound call: the constructor's)
    backends: frozenset[str]
    why: str  # completes "is a collective under DeepSpeed and FSDP (...)"
    sources: tuple[str, ...]
    fix: str  # what to do instead, one clause
    receivers: tuple[str, ...] = ()
    any_receiver: bool = False
    qualified: tuple[str, ...] = ()
    bound_to: tuple[str, ...] = ()
    calls_bound: bool = False
    not_qualified: tuple[str, ...] = ()
    required_keyword: str | None = None
    disabled_by: str | None = None
    # the word whose presence the prefilter needs, when the names are not it (see prefilter_words)
    prefilter_word: str | None = None
    # a part every file holding such a call contains, besides a name (see prefilter_pairs)
    prefilter_part: str | None = None

    def prefilter_words(self) -> tuple[str, ...]:
        """Words at least one of which a file must contain to hold a call of this entry (none
        when ``prefilter_pairs`` says it instead)."""
        if self.prefilter_word is not None:
            return (self.prefilter_word,)
        if self.prefilter_part is not None or self._needs_receiver_word():
            return ()
        return self.names

    def prefilter_pairs(self) -> tuple[tuple[str, str], ...]:
        """(word, receiver part): a file holds a call of this entry only if it contains the word
        and, anywhere and in any case, the receiver part (``save_state`` and ``accelerator``)."""
        if self.prefilter_word is not None:
            return ()
        if self.prefilter_part is not None:
            return tuple((name, self.prefilter_part) for name in self.names)
        if not self._needs_receiver_word():
            return ()
        return tuple((name, receiver) for name in self.names for receiver in self.receivers)

    def _needs_receiver_word(self) -> bool:
        """Recognised by a receiver word only: constructors it is bound to spell that word
        too (``deepspeed.initialize`` contains ``deepspeed``)."""
        return (
            bool(self.receivers)
            and not self.any_receiver
            and not self.qualified
            and all(
                any(word in prefix.lower() for word in self.receivers) for prefix in self.bound_to
            )
        )


_CALL_ON_EVERY_RANK = (
    "call it on every rank (it writes the files from the main process itself) and keep only "
    "the rank-0 work (printing, uploading) under the condition"
)
_BACKWARD_ON_EVERY_RANK = "run the backward on every rank, on that rank's own batch"

IMPLICIT_COLLECTIVES: tuple[ImplicitCollective, ...] = (
    # --- accelerate -------------------------------------------------------------------------
    ImplicitCollective(
        api="Accelerator.save_state",
        library="accelerate",
        names=("save_state",),
        receivers=("accelerator",),
        backends=SHARDED,
        why="it saves the sharded model and optimizer state from every rank",
        sources=(
            "https://github.com/huggingface/accelerate/issues/1171",
            "https://github.com/huggingface/diffusers/issues/2606",
            "https://github.com/huggingface/accelerate/issues/2000",
        ),
        fix=_CALL_ON_EVERY_RANK,
    ),
    ImplicitCollective(
        api="Accelerator.load_state",
        library="accelerate",
        names=("load_state",),
        receivers=("accelerator",),
        backends=SHARDED,
        why="every rank loads its own shard of the model and optimizer state",
        sources=(
            "https://deepspeed.readthedocs.io/en/latest/model-checkpointing.html",
            "https://docs.pytorch.org/docs/stable/distributed.checkpoint.html",
        ),
        fix="call it on every rank",
    ),
    ImplicitCollective(
        api="Accelerator.get_state_dict",
        library="accelerate",
        names=("get_state_dict",),
        receivers=("accelerator",),
        backends=SHARDED,
        why="it gathers the full weights from every rank's shard",
        sources=(
            "https://github.com/huggingface/accelerate/issues/3250",
            "https://github.com/huggingface/accelerate/pull/1181",
        ),
        fix="call it on every rank, then save the result on the main process only",
    ),
    ImplicitCollective(
        api="Accelerator.save_model",
        library="accelerate",
        names=("save_model",),
        receivers=("accelerator",),
        backends=SHARDED,
        why="it gathers the full weights from every rank's shard (through get_state_dict)",
        sources=(
            "https://github.com/huggingface/accelerate/issues/3250",
            "https://github.com/huggingface/accelerate/pull/1181",
        ),
        fix=_CALL_ON_EVERY_RANK,
    ),
    ImplicitCollective(
        api="Accelerator.backward",
        library="accelerate",
        names=("backward",),
        receivers=("accelerator",),
        backends=ALL,
        why="it reduces the gradients across ranks",
        sources=("https://docs.pytorch.org/docs/stable/notes/ddp.html",),
        fix=_BACKWARD_ON_EVERY_RANK,
    ),
    # --- DeepSpeed --------------------------------------------------------------------------
    ImplicitCollective(
        api="DeepSpeedEngine.save_checkpoint",
        library="deepspeed",
        names=("save_checkpoint",),
        receivers=DEEPSPEED_ENGINE_WORDS,
        bound_to=DEEPSPEED_INITIALIZE,
        backends=frozenset({DEEPSPEED}),
        why="every rank saves its own partition of the model and optimizer state",
        sources=(
            "https://deepspeed.readthedocs.io/en/latest/model-checkpointing.html",
            "https://github.com/deepspeedai/DeepSpeed/issues/2993",
        ),
        fix="call it on every rank (DeepSpeed decides which rank writes what)",
    ),
    ImplicitCollective(
        api="DeepSpeedEngine.load_checkpoint",
        library="deepspeed",
        names=("load_checkpoint",),
        receivers=DEEPSPEED_ENGINE_WORDS,
        bound_to=DEEPSPEED_INITIALIZE,
        backends=frozenset({DEEPSPEED}),
        why="every rank loads its own partition of the model and optimizer state",
        sources=(
            "https://deepspeed.readthedocs.io/en/latest/model-checkpointing.html",
            "https://github.com/deepspeedai/DeepSpeed/pull/801",
        ),
        fix="call it on every rank",
    ),
    ImplicitCollective(
        api="DeepSpeedEngine.backward",
        library="deepspeed",
        names=("backward",),
        receivers=DEEPSPEED_ENGINE_WORDS,
        bound_to=DEEPSPEED_INITIALIZE,
        backends=frozenset({DEEPSPEED}),
        why="it reduces (or reduce-scatters) the gradients across ranks",
        sources=("https://deepspeed.readthedocs.io/en/latest/training.html",),
        fix=_BACKWARD_ON_EVERY_RANK,
    ),
    ImplicitCollective(
        api="deepspeed.zero.GatheredParameters",
        library="deepspeed",
        names=("GatheredParameters",),
        qualified=(
            "deepspeed.zero.GatheredParameters",
            "deepspeed.runtime.zero.GatheredParameters",
            "deepspeed.runtime.zero.partition_parameters.GatheredParameters",
        ),
        backends=frozenset({DEEPSPEED}),
        why="it all-gathers the partitioned parameters on entry under ZeRO-3",
        sources=("https://deepspeed.readthedocs.io/en/latest/zero3.html",),
        fix="enter it on every rank, and do the rank-0 work inside it",
    ),
    # --- FSDP and torch.distributed.checkpoint ----------------------------------------------
    ImplicitCollective(
        api="FullyShardedDataParallel.full_optim_state_dict",
        library="torch",
        names=("full_optim_state_dict",),
        any_receiver=True,
        backends=frozenset({FSDP}),
        why="it gathers the optimizer state of every rank",
        sources=(
            "https://docs.pytorch.org/docs/stable/fsdp.html",
            "https://github.com/pytorch/pytorch/issues/80581",
        ),
        fix="call it on every rank, then save the result on rank 0 only",
    ),
    ImplicitCollective(
        api="FullyShardedDataParallel.optim_state_dict",
        library="torch",
        names=("optim_state_dict",),
        receivers=("fsdp", "fullyshardeddataparallel"),
        backends=frozenset({FSDP}),
        why="it gathers (or reshards) the optimizer state of every rank",
        sources=("https://docs.pytorch.org/docs/stable/fsdp.html",),
        fix="call it on every rank, then save the result on rank 0 only",
    ),
    ImplicitCollective(
        api="FullyShardedDataParallel.summon_full_params",
        library="torch",
        names=("summon_full_params",),
        any_receiver=True,
        backends=frozenset({FSDP}),
        why="it all-gathers the full parameters on entry",
        sources=("https://docs.pytorch.org/docs/stable/fsdp.html",),
        fix="enter it on every rank, and do the rank-0 work inside it",
    ),
    ImplicitCollective(
        api="torch.distributed.checkpoint.state_dict.get_model_state_dict and its siblings",
        library="torch",
        names=(
            "get_model_state_dict",
            "get_optimizer_state_dict",
            "get_state_dict",
            "set_model_state_dict",
            "set_optimizer_state_dict",
            "set_state_dict",
        ),
        qualified=tuple(
            f"{DCP_STATE_DICT}.{name}"
            for name in (
                "get_model_state_dict",
                "get_optimizer_state_dict",
                "get_state_dict",
                "set_model_state_dict",
                "set_optimizer_state_dict",
                "set_state_dict",
            )
        ),
        backends=frozenset({FSDP}),
        why="it gathers (or scatters) the sharded state across ranks",
        sources=("https://docs.pytorch.org/docs/stable/distributed.checkpoint.html",),
        fix="call it on every rank, then save the result on rank 0 only",
    ),
    ImplicitCollective(
        api="torch.distributed.checkpoint.save / load / async_save",
        library="torch",
        names=("save", "load", "async_save", "save_state_dict", "load_state_dict"),
        qualified=(
            f"{DCP}.save",
            f"{DCP}.load",
            f"{DCP}.async_save",
            f"{DCP}.save_state_dict",
            f"{DCP}.load_state_dict",
            f"{DCP}.state_dict_saver.save",
            f"{DCP}.state_dict_saver.async_save",
            f"{DCP}.state_dict_loader.load",
        ),
        prefilter_part="dist",  # in "torch.distributed", and in the unimported `dist.` spelling
        backends=ALL,
        why="every rank writes its own shards, and the ranks agree on a global plan first",
        sources=("https://docs.pytorch.org/docs/stable/distributed.checkpoint.html",),
        fix="call it on every rank of the process group",
    ),
    ImplicitCollective(
        api="ZeroRedundancyOptimizer.consolidate_state_dict",
        library="torch",
        names=("consolidate_state_dict",),
        any_receiver=True,
        backends=frozenset({DDP}),
        why="it gathers every rank's optimizer shard onto one rank",
        sources=("https://docs.pytorch.org/docs/stable/distributed.optim.html",),
        fix="call it on every rank, then call state_dict() on the target rank only",
    ),
    # --- Lightning --------------------------------------------------------------------------
    ImplicitCollective(
        api="Trainer.save_checkpoint",
        library="lightning",
        names=("save_checkpoint",),
        receivers=("trainer",),
        backends=ALL,
        why="it ends with a barrier on every rank, and sharded strategies save from every rank",
        sources=(
            "https://github.com/ray-project/ray/issues/56997",
            "https://github.com/Lightning-AI/pytorch-lightning/issues/19045",
        ),
        fix="call it on every rank (Lightning writes the file from rank 0 itself)",
    ),
    ImplicitCollective(
        api="Fabric.save",
        library="lightning",
        names=("save",),
        receivers=("fabric",),
        backends=ALL,
        why="it ends with a barrier on every rank, and sharded strategies save from every rank",
        sources=(
            "https://lightning.ai/docs/fabric/latest/guide/checkpoint/checkpoint.html",
            "https://lightning.ai/forums/t/saving-a-fabric-model-mid-epoch-in-multi-gpu-setting/5369",
        ),
        fix="call it on every rank (Fabric writes the file from rank 0 itself)",
    ),
    ImplicitCollective(
        api="Fabric.load",
        library="lightning",
        names=("load",),
        receivers=("fabric",),
        backends=ALL,
        why="it ends with a barrier on every rank, and sharded strategies load on every rank",
        sources=("https://lightning.ai/docs/fabric/latest/guide/checkpoint/checkpoint.html",),
        fix="call it on every rank",
    ),
    ImplicitCollective(
        api="Fabric.backward",
        library="lightning",
        names=("backward",),
        receivers=("fabric",),
        backends=ALL,
        why="it reduces the gradients across ranks",
        sources=("https://docs.pytorch.org/docs/stable/notes/ddp.html",),
        fix=_BACKWARD_ON_EVERY_RANK,
    ),
    ImplicitCollective(
        api="LightningModule.log / log_dict with sync_dist=True",
        library="lightning",
        names=("log", "log_dict"),
        any_receiver=True,
        required_keyword="sync_dist",
        prefilter_word="sync_dist",
        backends=ALL,
        why="sync_dist=True all-reduces the logged value across ranks",
        sources=(
            "https://lightning.ai/docs/pytorch/stable/extensions/logging.html",
            "https://github.com/talmolab/sleap-nn/pull/476",
        ),
        fix="log on every rank, or pass rank_zero_only=True instead of sync_dist=True",
    ),
    ImplicitCollective(
        api="LightningModule.manual_backward",
        library="lightning",
        names=("manual_backward",),
        any_receiver=True,
        backends=ALL,
        why="it reduces the gradients across ranks",
        sources=("https://docs.pytorch.org/docs/stable/notes/ddp.html",),
        fix=_BACKWARD_ON_EVERY_RANK,
    ),
    # --- Hugging Face Trainer ---------------------------------------------------------------
    ImplicitCollective(
        api="transformers.Trainer.save_model",
        library="transformers",
        names=("save_model",),
        receivers=("trainer",),
        backends=SHARDED,
        why="it gathers the sharded weights from every rank",
        sources=("https://github.com/huggingface/transformers/issues/31624",),
        fix="call it on every rank (the Trainer writes from the main process itself)",
    ),
    ImplicitCollective(
        api="transformers.Trainer.evaluate / predict",
        library="transformers",
        names=("evaluate", "predict"),
        receivers=("trainer",),
        backends=ALL,
        why="its loop runs on every rank's share of the data and gathers the results",
        sources=(
            "https://github.com/huggingface/transformers/issues/24589",
            "https://github.com/huggingface/transformers/pull/4243",
        ),
        fix="call it on every rank, and use the metrics on the main process only",
    ),
    # --- torchmetrics -----------------------------------------------------------------------
    ImplicitCollective(
        api="torchmetrics Metric.compute / sync",
        library="torchmetrics",
        names=("compute", "sync"),
        bound_to=TORCHMETRICS,
        disabled_by="sync_on_compute",
        prefilter_word="torchmetrics",
        backends=ALL,
        why="it all-gathers the metric state of every rank; sync_on_compute=True is the default",
        sources=(
            "https://github.com/Lightning-AI/torchmetrics/issues/938",
            "https://lightning.ai/docs/torchmetrics/stable/references/metric.html",
        ),
        fix="call it on every rank, and use the result on rank 0 only",
    ),
    # --- DDP --------------------------------------------------------------------------------
    ImplicitCollective(
        api="DistributedDataParallel forward (calling the wrapped model)",
        library="torch",
        names=("DistributedDataParallel",),
        bound_to=DDP_CLASSES,
        calls_bound=True,
        disabled_by="broadcast_buffers",
        backends=frozenset({DDP}),
        why=(
            "its forward broadcasts the module buffers from rank 0; broadcast_buffers=True is "
            "the default, and the first forward after a training step does so even under no_grad"
        ),
        sources=(
            "https://docs.pytorch.org/docs/stable/generated/"
            "torch.nn.parallel.DistributedDataParallel.html",
            "https://github.com/pytorch/pytorch/issues/30718",
        ),
        fix="run the forward on every rank, or call the wrapped module (model.module) on rank 0",
    ),
    ImplicitCollective(
        api="Tensor.backward (loss.backward(), scaler.scale(loss).backward())",
        library="torch",
        names=("backward",),
        any_receiver=True,
        not_qualified=("torch.distributed.autograd.backward",),
        backends=ALL,
        why="it reduces the gradients across ranks",
        sources=("https://docs.pytorch.org/docs/stable/notes/ddp.html",),
        fix=_BACKWARD_ON_EVERY_RANK,
    ),
)


def configured(
    backends: tuple[str, ...], extension: tuple[str, ...]
) -> tuple[ImplicitCollective, ...]:
    """The entries collective under one of ``backends``, narrowed to those backends, and then
    one entry per ``extend-implicit-collectives`` name (a method or function of that name)."""
    chosen = frozenset(backends)
    entries = [
        _narrowed(entry, entry.backends & chosen)
        for entry in IMPLICIT_COLLECTIVES
        if entry.backends & chosen
    ]
    entries += [_configured_entry(name, chosen) for name in extension]
    return tuple(entries)


def _narrowed(entry: ImplicitCollective, backends: frozenset[str]) -> ImplicitCollective:
    if backends == entry.backends:
        return entry
    from dataclasses import replace

    return replace(entry, backends=backends)


def _configured_entry(name: str, backends: frozenset[str]) -> ImplicitCollective:
    return ImplicitCollective(
        api=name,
        library="configuration",
        names=(name,),
        any_receiver=True,
        backends=backends,
        why="it is listed in extend-implicit-collectives",
        sources=(),
        fix="call it on every rank",
    )


def prefilter_words(backends: tuple[str, ...], extension: tuple[str, ...]) -> frozenset[str]:
    """The words whose presence makes a file worth parsing for ESP006."""
    return frozenset(
        word for entry in configured(backends, extension) for word in entry.prefilter_words()
    )


def prefilter_pairs(
    backends: tuple[str, ...], extension: tuple[str, ...]
) -> frozenset[tuple[str, str]]:
    """(word, receiver part) pairs whose joint presence makes a file worth parsing for ESP006."""
    return frozenset(
        pair for entry in configured(backends, extension) for pair in entry.prefilter_pairs()
    )


def backend_list(backends: frozenset[str]) -> str:
    """``DeepSpeed and FSDP``; ``DDP, DeepSpeed and FSDP``, in the order of ``BACKENDS``."""
    titles = [BACKEND_TITLES[backend] for backend in BACKENDS if backend in backends]
    if len(titles) <= 1:
        return "".join(titles)
    return ", ".join(titles[:-1]) + " and " + titles[-1]


def recognition(entry: ImplicitCollective) -> str:
    """How the table's entry is recognised, in words (for the docs)."""
    names = " / ".join(f"`{name}`" for name in entry.names)
    ways: list[str] = []
    if entry.calls_bound:
        ways.append("calling a value bound to `" + "` or `".join(entry.bound_to) + "(...)`")
    else:
        if entry.qualified:
            ways.append(f"{names} resolved through imports to `{entry.qualified[0]}`")
        if entry.any_receiver:
            ways.append(f"{names} on any receiver")
        if entry.receivers:
            words = " or ".join(f"`{word}`" for word in entry.receivers)
            ways.append(f"{names} on a receiver whose name contains {words}")
        if entry.bound_to:
            prefixes = " or ".join(f"`{prefix}`" for prefix in entry.bound_to)
            ways.append(f"{names} on a value bound to a call of {prefixes}")
    text = "; or ".join(ways)
    if entry.not_qualified:
        text += " (not " + ", ".join(f"`{name}`" for name in entry.not_qualified) + ")"
    if entry.required_keyword is not None:
        text += f", with `{entry.required_keyword}=` not `False`"
    if entry.disabled_by is not None:
        text += f" (not when built with `{entry.disabled_by}=False`)"
    return text


def markdown_table() -> str:
    """The table as Markdown, for docs/configuration.md and ESP006's page."""
    rows = [
        "| API | Recognised as | Collective under | Why | Sources |",
        "| --- | --- | --- | --- | --- |",
    ]
    for entry in IMPLICIT_COLLECTIVES:
        sources = ", ".join(f"[{_source_label(url)}]({url})" for url in entry.sources)
        cells = (
            f"{entry.api} ({entry.library})",
            recognition(entry),
            backend_list(entry.backends),
            entry.why,
            sources,
        )
        rows.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(rows) + "\n"


def _source_label(url: str) -> str:
    """``accelerate#1171`` for an upstream issue or pull request, else the site's name."""
    parts = url.removeprefix("https://").split("/")
    if parts[0] == "github.com" and len(parts) >= 5 and parts[3] in ("issues", "pull"):
        return f"{parts[2]}#{parts[4]}"
    return parts[0]

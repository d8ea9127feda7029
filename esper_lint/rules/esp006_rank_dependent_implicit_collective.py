"""ESP006: a call that is a collective without saying so, made only on some ranks."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from esper_lint.rules.base import Finding, Rule

if TYPE_CHECKING:
    from esper_lint.analysis.facts import FileFacts
    from esper_lint.fixes.types import Fix


class RankDependentImplicitCollective(Rule):
    code = "ESP006"
    name = "rank-dependent-implicit-collective"
    summary = "Implicitly collective call that runs only on some ranks"
    what_it_does = """
        Checks for calls that are collectives under DDP, DeepSpeed or FSDP although nothing in
        their name says so, made under a rank-dependent condition or rank-only decorator (the
        ESP001 forms) or after a rank-dependent early exit (the ESP003 forms): accelerate's
        `save_state`, `load_state`, `get_state_dict`, `save_model`; a DeepSpeed engine's
        `save_checkpoint`, `load_checkpoint` and `deepspeed.zero.GatheredParameters`; FSDP's
        full-state-dict calls, `torch.distributed.checkpoint`'s `save`/`load`/`async_save` and
        its `get_*_state_dict`/`set_*_state_dict`; `ZeroRedundancyOptimizer.consolidate_state_dict`;
        Lightning's `trainer.save_checkpoint`, `fabric.save`/`fabric.load` and
        `self.log(..., sync_dist=True)`; the Hugging Face Trainer's `save_model`, `evaluate` and
        `predict`; `.compute()`/`.sync()` of a torchmetrics metric; the forward of a
        `DistributedDataParallel` model and the backward forms (`loss.backward()`,
        `accelerator.backward(loss)`, `fabric.backward(loss)`, `self.manual_backward(loss)`,
        `engine.backward(loss)`). The full table, with the backends under which each call is a
        collective and the upstream page or issue that says so, is below. Same-file helpers that
        make such a call count too.

        A condition that also decides on the backend is a *backend guard* and is not reported:
        `accelerator.is_main_process or accelerator.distributed_type == DistributedType.DEEPSPEED`
        makes `save_state` on every rank where it is a collective. So is a condition that keeps
        the call off every rank of the backends where it is one
        (`is_main_process and distributed_type == DistributedType.MULTI_GPU`).
        """
    why_bad = """
        These calls gather or exchange state with every other rank: under DeepSpeed ZeRO and FSDP
        no rank holds the whole model, so saving it means gathering the shards; Lightning's and
        Fabric's saves end with a barrier; a metric's `compute()` all-gathers its state; DDP's
        backward all-reduces the gradients. Called on rank 0 only, the call waits for ranks that
        never come: the job hangs until the NCCL timeout. Many of these calls are harmless under
        plain DDP, which is why the bug appears only when someone switches the backend.
        """
    example = """
        def save(accelerator, output_dir):
            if accelerator.is_main_process:
                accelerator.save_state(output_dir)
        """
    use_instead = """
        def save(accelerator, output_dir):
            # accelerate writes the files from the main process itself
            accelerator.save_state(output_dir)
        """
    help = (
        "Make the call on every rank (the library writes from the main process itself) and keep "
        "only the rank-0 work under the condition"
    )
    fix_description = """
        Unsafe (`--fix --unsafe-fixes`): moves the call out of the rank-dependent `if` body, to
        just after the `if` (`accelerator.save_state(path)`), or to just before it when the rest
        of the body uses the call's result (`state = accelerator.get_state_dict(model)` followed
        by `torch.save(state, path)`). Offered when the call is a statement of its own in that
        body, the body does not return, raise, break or continue, and the move reads no name the
        body binds. accelerate, DeepSpeed and Lightning write checkpoint files from the main
        process themselves, so calling them on every rank is what their docs ask for. Unsafe
        because it changes which ranks make the call. The fix is applied only if the fixed file
        parses and linting it again removes this finding and adds none.
        """
    fix_example = (
        """
        import torch


        def save(accelerator, model, path):
            if accelerator.is_main_process:
                state = accelerator.get_state_dict(model)
                torch.save(state, path)
        """,
        """
        import torch


        def save(accelerator, model, path):
            state = accelerator.get_state_dict(model)
            if accelerator.is_main_process:
                torch.save(state, path)
        """,
    )
    known_limits = """
        A call is recognised by its name and receiver (`accelerator.save_state`,
        `trainer.save_model`: the receiver's name must contain `accelerator`, `trainer`...), by
        the qualified name it resolves to through the file's imports (`dcp.save`), or, for
        metrics, DDP models and DeepSpeed engines, by the constructor the receiver was bound to
        in the same file (`model = DDP(model)`; a model passed in as a parameter is not
        followed). A `DistributedDataParallel(..., broadcast_buffers=False)` model's forward and
        a metric built with `sync_on_compute=False` are not collectives and are not reported.

        A backend guard is recognised by the words in its test (`deepspeed`, `zero3`,
        `zero_stage`, `fsdp`, `fully_shard`, `MULTI_GPU`); a guard that admits one sharded
        backend is accepted even when the call is a collective under another one as well
        (`is_main_process or distributed_type == DEEPSPEED` still hangs `save_state` under FSDP):
        set `backends = ["fsdp"]` when you train with FSDP only, and the guard no longer counts.
        Under DeepSpeed, a guard on ZeRO-3 (`is_deepspeed_zero3_enabled()`) counts as a guard
        on DeepSpeed.

        The model `accelerator.prepare` returns is not followed as a DDP model (its forward is
        not checked), nor is a metric or DDP model passed in as a parameter, kept in a container
        or built in another module. As for ESP004, two branches that make the same call in
        different shapes (rank 0 inside a nested function it hands to a library, the other ranks
        in a loop) are reported. Suppress a deliberate exception with `# noqa: ESP006`.
        """
    bad = (
        """
        def validation_epoch_end(self, outputs):
            if self.trainer.is_global_zero:
                self.log("val_acc", self.val_acc, sync_dist=True)
        """,
        """
        from torch.distributed.fsdp import FullyShardedDataParallel as FSDP


        def save(model, optimizer, rank, path):
            if rank != 0:
                return
            state = FSDP.full_optim_state_dict(model, optimizer)
            torch.save(state, path)
        """,
        """
        import torchmetrics


        class Evaluator:
            def __init__(self):
                self.accuracy = torchmetrics.Accuracy(task="binary")

            def report(self, is_main):
                if is_main:
                    print(self.accuracy.compute())
        """,
    )
    good = (
        """
        from accelerate.utils import DistributedType as DT


        def save(accelerator, output_dir):
            if accelerator.is_main_process or accelerator.distributed_type == DT.DEEPSPEED:
                accelerator.save_state(output_dir)
        """,
        """
        def save(accelerator, model, path):
            state = accelerator.get_state_dict(model)
            if accelerator.is_main_process:
                torch.save(state, path)
        """,
        """
        from torch.nn.parallel import DistributedDataParallel as DDP


        def evaluate(model, batch, rank):
            ddp_model = DDP(model)
            if rank == 0:
                print(ddp_model.module(batch))
        """,
    )

    @classmethod
    def markdown(cls) -> str:
        """The rule's page, with the table of implicit collectives it checks."""
        from esper_lint.analysis.implicit_collectives import markdown_table

        table = (
            "## Implicit collectives\n\n"
            "The table ESP006 checks (`esper_lint/analysis/implicit_collectives.py`). The "
            "`backends` setting keeps the entries collective under the listed backends, and "
            "`extend-implicit-collectives` adds names (see [Configuration]"
            "(../configuration.md#implicit-collectives)).\n\n" + markdown_table()
        )
        return super().markdown() + "\n" + table

    @classmethod
    def check(cls, facts: FileFacts) -> Iterator[Finding]:
        from esper_lint.analysis.implicit_collectives import backend_list
        from esper_lint.analysis.symbols import CallKind
        from esper_lint.rules.messages import controlled_by, skipped_by

        for call in facts.calls_of(CallKind.IMPLICIT):
            entry = call.implicit
            condition, exit_ = call.condition, call.early_exit
            if entry is None or (condition is None and exit_ is None):
                continue
            if facts.backend_guarded(call, entry.backends):
                continue
            if condition is not None:
                cause = f"{controlled_by(facts, condition)}: the other ranks never enter it"
            else:
                assert exit_ is not None
                cause = f"{skipped_by(facts, exit_)}: the ranks that leave there never reach it"
            message = (
                f"{call.text} is a collective under {backend_list(entry.backends)} "
                f"({entry.why}), but {cause}; {entry.fix}"
            )
            yield Finding(call.node, cls.code, message)

    @classmethod
    def fix(cls, facts: FileFacts, finding: Finding) -> Fix | None:
        from esper_lint.fixes.move_call import move_out_of_rank_if

        return move_out_of_rank_if(facts, finding, hoist=True)

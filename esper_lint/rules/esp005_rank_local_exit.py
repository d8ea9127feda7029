"""ESP005: an exit that only some ranks take, before a symmetric call the others wait in."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from esper_lint.rules.base import Finding, Rule

if TYPE_CHECKING:
    from esper_lint.analysis.facts import FileFacts
    from esper_lint.analysis.local_exits import LocalExit, WaitedIn

_REDUCE_FIRST = (
    "make the decision the same on every rank first (all-reduce a flag with "
    "op=dist.ReduceOp.MAX, strategy.reduce_boolean_decision(...), or broadcast rank 0's "
    "decision) and take the exit on every rank"
)
_STOP_TOGETHER = (
    "do not end the process from code that runs on some ranks only: return from it, and stop "
    "every rank together on a decision they share (broadcast from rank 0)"
)


class RankLocalExit(Rule):
    code = "ESP005"
    name = "rank-local-exit"
    summary = "Exit that only some ranks take before a symmetric call"
    what_it_does = """
        Checks for `return`, `break`, `continue`, `raise`, `assert`, `sys.exit()`, `exit()`,
        `quit()` and `os._exit()` decided by a *rank-local* condition -- one that reads a value
        that can differ across ranks and that nothing made the same on every rank: the rank's
        own loss, outputs or metrics and whatever is derived from them (`.item()`,
        `math.isfinite`, `torch.isfinite(...).all()`, comparisons, arithmetic), the wall clock
        (`time.time()`, `perf_counter()`, `datetime.now()`), random numbers, or the rank itself
        -- when a symmetric call follows that the other ranks will wait in: later in the same
        function, or anywhere in the body of the loop the exit leaves (for `continue`: later in
        the body of the loop it restarts). Symmetric calls are collectives and lifecycle calls
        (ESP001-ESP004), the implicit collectives of ESP006, and the backward forms of DDP
        (`loss.backward()`, `scaler.scale(loss).backward()`, `accelerator.backward(loss)`,
        `fabric.backward(loss)`, `self.manual_backward(loss)`, a DeepSpeed engine's
        `backward(loss)`), directly or through same-file helpers.

        A process exit under rank control (in a rank-dependent branch, after a rank-dependent
        early exit, or in a function with a rank-only decorator) is reported even when no
        symmetric call follows in that function: the other ranks wait in their next collective.
        A rank-dependent `return`/`break`/`continue`/`raise` that ESP003, ESP004 or ESP006
        already reports on the call it skips is not reported again.

        Values made the same on every rank are not rank-local: a tensor after an in-place
        `dist.all_reduce`/`dist.broadcast`/`dist.all_gather` in the same scope, the results of
        `accelerator.gather`/`reduce`/`gather_for_metrics`, `fabric.all_reduce`/`broadcast`,
        `strategy.reduce`/`broadcast`/`reduce_boolean_decision`, the list after
        `broadcast_object_list`, same-file functions whose every return is such a value, the
        names listed in `extend-sanitizers`, and configuration values, epoch and step counters.
        The full table is in [Configuration](../configuration.md#sanitizers).
        """
    why_bad = """
        `if not math.isfinite(loss.item()): sys.exit(1)` looks like a safety net, but the loss is
        this rank's own. A NaN on one rank makes that rank leave; every other rank then waits in
        the gradient all-reduce of `backward()` until the NCCL timeout (10 minutes), and the job
        hangs instead of failing. `continue` on a bad batch and `break` on a time budget do the
        same more quietly: the ranks fall out of step, and the last collective never completes.
        An exit from rank-0-only code (`@rank_zero_only`, `if is_main_process:`) leaves the other
        ranks waiting even with exit status 0.
        """
    example = """
        import math
        import sys


        def train_one_epoch(model, loader, optimizer):
            for batch in loader:
                loss = model(batch)
                loss_value = loss.item()
                if not math.isfinite(loss_value):
                    print(f"Loss is {loss_value}, stopping training")
                    sys.exit(1)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        """
    use_instead = """
        import math
        import sys

        import torch
        import torch.distributed as dist


        def train_one_epoch(model, loader, optimizer):
            for batch in loader:
                loss = model(batch)
                bad = torch.tensor(float(not math.isfinite(loss.item())))
                dist.all_reduce(bad, op=dist.ReduceOp.MAX)
                if bad.item() > 0:
                    sys.exit(1)  # every rank leaves together
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        """
    known_limits = """
        Values are followed within one file. A value made uniform by means ESP005 does not know
        (a project's own reduction helper in another module, a custom communication library) is
        still rank-local: list the helper in `extend-sanitizers`. Exits in callbacks called from
        other modules, and symmetric calls made by the caller after the function returns, are
        not seen. Paths are not counted: an exit followed by a symmetric call that the exiting
        rank would also have skipped on every other path is still reported. A value is read by
        its last binding in the scope; a buffer reduced in place through another object's
        attribute or an index (`dist.all_reduce(state.flag)`, `dist.all_reduce(flags[0])`) is not
        followed (`self.flag` is). A value that passes through an object's state
        (`metric.add_batch(gathered)`, then `metric.compute()`) is read by its name. An exception
        raised inside a `try` with handlers in the same function is taken to be caught. `raise`
        and `assert` count only on a health check (`isfinite`, `isnan`) or a loss, metric, clock
        or random value ordered against a bound; invariants (`key is not None`, `a == b`) are
        taken to hold on every rank. A test that reads only a function's name, tensor metadata
        (`t.device`, `t.numel()`) or a container's keys (`key in metrics`) is not rank-local.
        """
    bad = (
        """
        import torch


        def train(model, loader, optimizer):
            for batch in loader:
                losses = model(batch)
                assert torch.isfinite(losses).all(), "non-finite loss"
                losses.sum().backward()
                optimizer.step()
        """,
        """
        import time


        def fit(accelerator, model, loader, optimizer, budget):
            start = time.time()
            for batch in loader:
                if time.time() - start > budget:
                    break
                loss = model(batch)
                accelerator.backward(loss)
                optimizer.step()
        """,
        """
        import sys

        from lightning.pytorch.utilities import rank_zero_only


        @rank_zero_only
        def on_finished(path):
            print(f"done, checkpoint at {path}")
            sys.exit(0)
        """,
        """
        def train(model, loader, optimizer, scaler):
            for batch in loader:
                loss = model(batch)
                if loss.item() > 1e4:
                    continue
                scaler.scale(loss).backward()
                scaler.step(optimizer)
        """,
    )
    good = (
        """
        import math


        def train(accelerator, model, loader, optimizer):
            for batch in loader:
                loss = model(batch)
                mean_loss = accelerator.reduce(loss.detach(), reduction="mean")
                if not math.isfinite(mean_loss.item()):
                    break
                accelerator.backward(loss)
                optimizer.step()
        """,
        """
        def validate(model, loader, max_batches):
            for step, batch in enumerate(loader):
                if step >= max_batches:
                    break
                loss = model(batch)
                if loss.item() > 10:
                    continue
                print(loss.item())
        """,
        """
        import time


        def fit(trainer, model, loader, start, budget):
            for batch in loader:
                loss = model(batch)
                loss.backward()
                stop = trainer.strategy.reduce_boolean_decision(time.time() - start > budget)
                if stop:
                    break
        """,
    )

    @classmethod
    def check(cls, facts: FileFacts) -> Iterator[Finding]:
        for verdict in facts.local_exits:
            yield Finding(verdict.exit.node, cls.code, _message(facts, verdict))


def _message(facts: FileFacts, verdict: WaitedIn) -> str:
    exit_ = verdict.exit
    cause = _cause(facts, exit_)
    call = verdict.call
    if call is None:
        wait = (
            "the other ranks will wait in their next collective (an exit status of 0 does not "
            "make the launcher stop them)"
        )
    else:
        wait = f"the other ranks will wait in {call.text} at line {facts.line(call.node)}"
    from esper_lint.analysis.rank import DATA

    data_local = bool(exit_.bits & DATA)
    fix = _STOP_TOGETHER if exit_.process_exit and not data_local else _REDUCE_FIRST
    return f"{cause}; {wait}; {fix}"


def _cause(facts: FileFacts, exit_: LocalExit) -> str:
    import libcst as cst

    from esper_lint.analysis.control import ConditionKind, Exit

    node = exit_.node
    if isinstance(node, cst.Assert):
        test = exit_.guard_test
        assert test is not None
        explained = f"{facts.text(test)}: {exit_.why}" if exit_.why else facts.text(test)
        if exit_.guard is None:
            return (
                f"assert raises only on ranks where its condition at line {facts.line(test)} "
                f"fails ({explained})"
            )
    word = _exit_word(facts, node)
    test = exit_.guard_test
    if test is not None:
        explained = f"{facts.text(test)}: {exit_.why}" if exit_.why else facts.text(test)
        guard = exit_.guard
        if guard is not None and guard.kind is ConditionKind.MATCH:
            where = f"the match at line {facts.line(test)} selects this case"
        else:
            holds = "holds" if exit_.holds else "does not hold"
            where = f"the condition at line {facts.line(test)} {holds}"
        return f"{word} runs only on ranks where {where} ({explained})"
    controller = exit_.controller
    if isinstance(controller, Exit):
        skipped = facts.text(controller.guard.test)
        line = facts.line(controller.node)
        return (
            f"{word} runs only on the ranks that pass the rank-dependent early "
            f"{_exit_word(facts, controller.node)} at line {line} ({skipped})"
        )
    assert controller is not None
    decorator = controller.node
    assert isinstance(decorator, cst.Decorator)
    return (
        f"{word} runs only on the ranks that the rank-only decorator at line "
        f"{facts.line(decorator)} (@{facts.text(decorator.decorator)}) lets in"
    )


def _exit_word(facts: FileFacts, node: object) -> str:
    import libcst as cst

    if isinstance(node, cst.Expr) and isinstance(node.value, cst.Call):
        return f"{facts.text(node.value.func)}()"
    words = {cst.Return: "return", cst.Break: "break", cst.Continue: "continue"}
    for node_type, word in words.items():
        if isinstance(node, node_type):
            return word
    if isinstance(node, cst.Assert):
        return "assert"
    return "raise"

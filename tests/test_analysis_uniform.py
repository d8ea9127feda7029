"""ESP005's questions to the analysis: which exits are rank-local and why, what makes a value
uniform (the sanitiser table, derivations, same-file helpers, extend-sanitizers), and which
symmetric call follows an exit."""

from __future__ import annotations

from pathlib import Path

import pytest
from analysis_helpers import found, messages

from esper_lint.analysis.sanitizers import SANITIZERS
from esper_lint.config import Config

REPO_ROOT = Path(__file__).resolve().parent.parent

LOCAL_EXIT = """
import math

def train(model, loader, optimizer, sync_flag):
    for batch in loader:
        loss = model(batch)
        flag = sync_flag(not math.isfinite(loss.item()))
        if flag:
            break
        loss.backward()
"""


def test_extend_sanitizers_makes_a_result_uniform() -> None:
    assert found(LOCAL_EXIT) == {(8, "ESP005")}
    assert found(LOCAL_EXIT, Config(extend_sanitizers=("sync_flag",))) == set()


def test_a_uniform_value_mixed_with_a_local_one_is_local() -> None:
    source = """
    import torch.distributed as dist

    def train(model, loader, optimizer):
        for batch in loader:
            loss = model(batch)
            reduced = loss.detach().clone()
            dist.all_reduce(reduced)
            if reduced.item() > 10 or loss.item() > 100:
                return
            loss.backward()
    """
    assert found(source) == {(9, "ESP005")}
    assert "loss is this rank's own loss" in messages(source)[0]


@pytest.mark.parametrize(
    "reduction",
    [
        "dist.all_reduce(bad, op=dist.ReduceOp.MAX)",
        "dist.broadcast(bad, src=0)",
        "bad = accelerator.reduce(bad)",
        "bad = accelerator.gather(bad)",
        "bad = trainer.strategy.reduce_boolean_decision(bad)",
        "bad = fabric.all_reduce(bad)",
        "bad = fabric.broadcast(bad)",
    ],
)
def test_each_sanitizer_form_makes_the_exit_safe(reduction: str) -> None:
    source = f"""
    import math
    import torch
    import torch.distributed as dist

    def train(accelerator, trainer, fabric, model, loader):
        for batch in loader:
            loss = model(batch)
            bad = torch.tensor(float(not math.isfinite(loss.item())))
            {reduction}
            if bad.item():
                break
            loss.backward()
    """
    assert found(source) == set()
    unreduced = source.replace(reduction, "pass")
    assert found(unreduced) == {(11, "ESP005")}


def test_reduce_to_one_rank_is_not_a_sanitizer() -> None:
    source = """
    import torch.distributed as dist

    def train(model, loader):
        for batch in loader:
            loss = model(batch)
            dist.reduce(loss, dst=0)
            if loss.item() > 10:
                break
            loss.backward()
    """
    assert found(source) == {(8, "ESP005")}


def test_the_message_names_condition_value_and_waiting_call() -> None:
    source = """
    import math
    import sys

    def train(model, loader, loss_scaler):
        for batch in loader:
            loss = model(batch)
            loss_value = loss.item()
            if not math.isfinite(loss_value):
                sys.exit(1)
            loss_scaler.scale(loss).backward()
    """
    [message] = messages(source)
    assert message.startswith(
        "ESP005 sys.exit() runs only on ranks where the condition at line 8 holds "
        "(not math.isfinite(loss_value): loss_value is this rank's own loss, not reduced "
        "across ranks); the other ranks will wait in loss_scaler.scale(loss).backward() at line 10"
    )
    assert "op=dist.ReduceOp.MAX" in message


def test_continue_skips_only_what_follows_it_in_the_body() -> None:
    source = """
    def train(model, loader):
        for batch in loader:
            loss = model(batch)
            loss.backward()
            if loss.item() > 10:
                continue
            print(loss.item())
    """
    assert found(source) == set()
    assert found(source.replace("continue", "break")) == {(6, "ESP005")}


def test_a_rank_exit_v1_reports_is_not_reported_again() -> None:
    source = """
    import torch.distributed as dist

    def f(stats, rank):
        if rank != 0:
            return
        dist.all_reduce(stats)
    """
    assert found(source) == {(6, "ESP004")}


def test_every_sanitizer_is_documented() -> None:
    page = (REPO_ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    for entry in SANITIZERS:
        assert f"`{entry.api}`" in page, entry.api


def test_a_project_helper_summarised_as_uniform_makes_the_exit_safe() -> None:
    # The same file is rank-local alone, and safe in its project, where the summaries of
    # pkg/dist_utils.py say that all_reduce_mean and reduce_dict return reduced values.
    from esper_lint.checker import check_source
    from esper_lint.config import load_config
    from esper_lint.engine import lint_paths

    root = REPO_ROOT / "tests" / "fixtures" / "projects" / "uniform_helper_cross_file"
    engine = root / "pkg" / "engine.py"
    alone = {d.line for d in check_source(engine.read_bytes(), "engine.py", Config())}
    assert alone == {16, 27}
    result = lint_paths([root], load_config(cwd=root), jobs=1, use_cache=False)
    assert [d for d in result.diagnostics if d.code == "ESP005"] == []

"""ESP006's table, its configuration (``backends``, ``extend-implicit-collectives``), the
prefilter's words for it, and how backend guards read."""

from __future__ import annotations

import re
import shutil
import textwrap
from pathlib import Path

import libcst as cst
import pytest

from esper_lint.analysis.backend_names import BACKENDS
from esper_lint.analysis.backends import State, state_under
from esper_lint.analysis.implicit_collectives import (
    IMPLICIT_COLLECTIVES,
    backend_list,
    configured,
)
from esper_lint.analysis.names import receiver_call_names, symmetric_call_names
from esper_lint.cache import cache_key
from esper_lint.checker import check_source
from esper_lint.config import Config, ConfigError, load_config
from esper_lint.engine import lint_paths
from esper_lint.prefilter import candidate_predicate

FIXTURES = Path(__file__).parent / "fixtures"


def findings(source: str, config: Config | None = None) -> set[tuple[int, str]]:
    diagnostics = check_source(textwrap.dedent(source).encode(), "x.py", config or Config())
    return {(d.line, d.code) for d in diagnostics}


# --- the table ------------------------------------------------------------------------------


def test_every_entry_says_where_it_is_documented_and_how_it_is_recognised() -> None:
    for entry in IMPLICIT_COLLECTIVES:
        assert entry.sources, entry.api
        assert all(source.startswith("https://") for source in entry.sources), entry.api
        assert entry.backends and entry.backends <= set(BACKENDS), entry.api
        recognised = entry.receivers or entry.any_receiver or entry.qualified or entry.bound_to
        assert recognised, entry.api
        assert entry.why and entry.fix, entry.api


def test_backend_list_reads_like_prose() -> None:
    assert backend_list(frozenset({"fsdp", "deepspeed"})) == "DeepSpeed and FSDP"
    assert backend_list(frozenset(BACKENDS)) == "DDP, DeepSpeed and FSDP"
    assert backend_list(frozenset({"ddp"})) == "DDP"


def test_configured_narrows_entries_to_the_chosen_backends() -> None:
    ddp_only = {entry.api: entry for entry in configured(("ddp",), ())}
    assert "Accelerator.save_state" not in ddp_only  # sharded backends only
    assert ddp_only["Trainer.save_checkpoint"].backends == {"ddp"}
    fsdp_only = {entry.api for entry in configured(("fsdp",), ())}
    assert "DeepSpeedEngine.save_checkpoint" not in fsdp_only
    assert "Accelerator.save_state" in fsdp_only


# --- configuration --------------------------------------------------------------------------


def test_backends_and_extension_are_read_and_validated(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        '[tool.esper-lint]\nbackends = ["fsdp"]\nextend-implicit-collectives = ["sync_shards"]\n'
    )
    config = load_config(cwd=tmp_path)
    assert config.backends == ("fsdp",)
    assert config.extend_implicit_collectives == ("sync_shards",)
    assert Config().backends == BACKENDS


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('backends = ["ddp", "megatron"]', "'backends': unknown backend 'megatron'"),
        ("backends = []", "'backends' must name at least one of"),
        ('backends = "ddp"', "'backends' must be a list of strings"),
        (
            'extend-implicit-collectives = ["ckpt.save"]',
            "'extend-implicit-collectives': invalid entry 'ckpt.save'",
        ),
    ],
)
def test_bad_values_are_config_errors(tmp_path: Path, body: str, expected: str) -> None:
    (tmp_path / "pyproject.toml").write_text(f"[tool.esper-lint]\n{body}\n")
    with pytest.raises(ConfigError, match=re.escape(expected)):
        load_config(cwd=tmp_path)


def test_the_analysis_settings_are_part_of_the_cache_key() -> None:
    base = cache_key(Config())
    assert cache_key(Config(backends=("ddp",))) != base
    assert cache_key(Config(extend_implicit_collectives=("sync_shards",))) != base
    assert cache_key(Config(backends=("fsdp", "ddp"))) == cache_key(
        Config(backends=("ddp", "fsdp"))
    )


SAVE_UNDER_DEEPSPEED_GUARD = """
    def save(accelerator, trainer, output_dir):
        if accelerator.is_main_process or accelerator.distributed_type == DistributedType.DEEPSPEED:
            accelerator.save_state(output_dir)
        if accelerator.is_main_process:
            trainer.save_checkpoint(output_dir)
    """


def test_backends_limit_the_check_to_the_listed_backends() -> None:
    # Every backend: the DeepSpeed guard counts, save_checkpoint (a barrier) is reported.
    assert findings(SAVE_UNDER_DEEPSPEED_GUARD) == {(6, "ESP006")}
    # FSDP only: the DeepSpeed guard no longer admits the backend that is used.
    assert findings(SAVE_UNDER_DEEPSPEED_GUARD, Config(backends=("fsdp",))) == {
        (4, "ESP006"),
        (6, "ESP006"),
    }
    # DDP only: save_state is local under DDP; save_checkpoint still ends with a barrier.
    assert findings(SAVE_UNDER_DEEPSPEED_GUARD, Config(backends=("ddp",))) == {(6, "ESP006")}


def test_the_message_names_the_configured_backends_only() -> None:
    source = textwrap.dedent(
        """
        def f(accelerator, d):
            if accelerator.is_main_process:
                accelerator.save_state(d)
        """
    )
    (message,) = (d.message for d in check_source(source.encode(), "x.py", Config()))
    assert "a collective under DeepSpeed and FSDP (" in message
    assert "condition at line 3 (accelerator.is_main_process): the other ranks never enter it" in (
        message
    )
    (narrow,) = check_source(source.encode(), "x.py", Config(backends=("fsdp",)))
    assert "a collective under FSDP (" in narrow.message


def test_extend_implicit_collectives_adds_names_on_any_receiver() -> None:
    source = """
    def f(store, rank):
        if rank == 0:
            store.sync_shards()
    """
    assert findings(source) == set()
    config = Config(extend_implicit_collectives=("sync_shards",))
    assert findings(source, config) == {(4, "ESP006")}


# --- the prefilter --------------------------------------------------------------------------


def test_prefilter_words_cover_the_table_and_the_extension() -> None:
    config = Config(extend_implicit_collectives=("sync_shards",))
    names = symmetric_call_names(config)
    expected = {"backward", "summon_full_params", "sync_dist", "torchmetrics"}
    assert expected | {"DistributedDataParallel", "sync_shards", "bcast", "Allreduce"} <= names
    assert "log" not in names  # self.log(...) counts only with sync_dist, whose word is needed
    assert "compute" not in names  # a metric is recognised through its torchmetrics import
    assert "save" not in names  # fabric.save needs "fabric", dcp.save needs "dist"
    pairs = receiver_call_names(config)
    assert {("save_state", "accelerator"), ("save", "fabric"), ("evaluate", "trainer")} <= pairs
    assert ("save_checkpoint", "deepspeed") in pairs  # an engine bound to deepspeed.initialize
    assert ("save", "dist") in pairs  # torch.distributed.checkpoint.save, dist.checkpoint.save


def test_a_file_with_only_an_implicit_collective_is_a_candidate() -> None:
    is_candidate = candidate_predicate(Config())
    assert is_candidate(b"if rank == 0:\n    accelerator.save_state(d)\n")
    assert is_candidate(b"if rank == 0:\n    self.Accelerator.save_state(d)\n")
    assert is_candidate(b"if rank == 0:\n    self.log('x', v, sync_dist=True)\n")
    assert is_candidate(b"if rank == 0:\n    metrics = hf_trainer.evaluate()\n")
    assert not is_candidate(b"if rank == 0:\n    self.log('x', v)\n    acc.compute()\n")
    assert not is_candidate(b"if rank == 0:\n    evaluator.evaluate()\n    torch.save(m, p)\n")


@pytest.mark.parametrize(
    "config",
    [Config(), Config(backends=("fsdp",)), Config(extend_implicit_collectives=("sync_shards",))],
    ids=["default", "fsdp-only", "extended"],
)
def test_the_prefilter_changes_nothing_on_the_esp006_fixtures(
    tmp_path: Path, config: Config
) -> None:
    for fixture in FIXTURES.glob("*esp006*.py"):
        shutil.copy(fixture, tmp_path / fixture.name)
    (tmp_path / "extra.py").write_text(
        "def f(store, rank):\n    if rank:\n        store.sync_shards()\n"
    )
    with_prefilter = lint_paths([tmp_path], config, jobs=1, use_cache=False)
    without = lint_paths([tmp_path], config, jobs=1, use_cache=False, prefilter=False)
    assert with_prefilter == without
    assert any(d.code == "ESP006" for d in with_prefilter.diagnostics)


# --- backend guards -------------------------------------------------------------------------


def _states(test: str) -> list[State]:
    node = cst.parse_expression(test)

    def is_rank_dependent(part: cst.BaseExpression) -> bool:
        return "is_main" in cst.Module([]).code_for_node(part)

    return [state_under(node, backend, is_rank_dependent) for backend in BACKENDS]


@pytest.mark.parametrize(
    ("test", "expected"),
    [
        ("is_main or distributed_type == DistributedType.DEEPSPEED", ["VARIES", "TRUE", "VARIES"]),
        (
            "not is_main and distributed_type != DistributedType.DEEPSPEED",
            ["VARIES", "FALSE", "VARIES"],
        ),
        ("is_main or distributed_type in (DEEPSPEED, FSDP)", ["VARIES", "TRUE", "TRUE"]),
        ("state.deepspeed_plugin is not None or is_main", ["VARIES", "TRUE", "VARIES"]),
        ("state.deepspeed_plugin is None and is_main", ["VARIES", "FALSE", "VARIES"]),
        ("is_main and distributed_type == DistributedType.MULTI_GPU", ["VARIES", "FALSE", "FALSE"]),
        ("is_main and args.deepspeed", ["FALSE", "VARIES", "FALSE"]),
        ("step % 10 == 0", ["UNIFORM", "UNIFORM", "UNIFORM"]),
    ],
)
def test_backend_guards_read_per_backend(test: str, expected: list[str]) -> None:
    assert [state.name for state in _states(test)] == expected

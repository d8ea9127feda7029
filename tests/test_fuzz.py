"""Property tests: the analysis never fails, is deterministic, and agrees across jobs and cache.

Sources come from hypothesmith (``from_grammar()`` and ``from_node()``: arbitrary valid Python),
from the same with symmetric-call-bearing statements spliced in, and from a small grammar of the
constructs the analysis cares about (rank conditions, loader loops, early exits, helpers,
decorators, match, comprehensions...), so that the analysis paths actually run.

CI runs a bounded number of examples. ``ESPER_LINT_FUZZ_EXAMPLES=5000`` runs that many for every
single-source property; the whole-tree properties run a tenth as many (in-process engine runs) and
a hundredth as many (two CLI processes per example).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import hypothesmith
import pytest
from analysis_helpers import assert_same_parse
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from esper_lint.checker import check_source
from esper_lint.config import Config
from esper_lint.diagnostics import Diagnostic
from esper_lint.engine import lint_paths
from esper_lint.rules import known_codes

FIXTURES_DIR = Path(__file__).parent / "fixtures"
LONG_RUN = int(os.environ.get("ESPER_LINT_FUZZ_EXAMPLES", "0"))
TOO_DEEP = "file could not be analysed: nesting is too deep"
CONFIG = Config(
    extend_symmetric_calls=("sync_alpha",),
    extend_rank_sources=("is_coordinator",),
    extend_data_sources=("stream",),
)


# The project-wide 300 s per-test timeout would cut a long run short (and, firing inside data
# generation, makes Hypothesis report a flaky strategy): a long run has no per-test timeout.
pytestmark = pytest.mark.timeout(0 if LONG_RUN else 300)


def fuzz_settings(ci_examples: int, *, cost: int = 1) -> settings:
    """``ci_examples`` in CI; in a long run, ``ESPER_LINT_FUZZ_EXAMPLES // cost``."""
    long_run = max(1, LONG_RUN // cost) if LONG_RUN else 0
    return settings(
        max_examples=long_run or ci_examples,
        deadline=None,
        database=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
        ],
    )


# --- a grammar of the constructs the analysis looks at ----------------------------------------

HEADER = (
    "import os\n"
    "import time\n"
    "import torch\n"
    "import torch.distributed as dist\n"
    "from torch.distributed import all_reduce as reduce_all, barrier\n"
    "from lightning.pytorch.utilities import rank_zero_only\n"
)
CALLS = [
    "slot.step_epoch()",
    "self.slot.advance_stage()",
    "slots[0].step_epoch()",
    "dist.barrier()",
    "dist.all_reduce(tensor)",
    "torch.distributed.broadcast(tensor, src=0)",
    "barrier()",
    "reduce_all(tensor)",
    "dist.broadcast_object_list(objects)",
    "accelerator.wait_for_everyone()",
    "accelerator.gather(tensor)",
    "trainer.strategy.barrier()",
    "fabric.all_reduce(tensor)",
    "self.all_gather(tensor)",
    "sync_alpha()",
    "dist.send(tensor, 1)",
    "dist.isend(tensor, dst=0)",
    "print(rank)",
    "log(loss)",
    "helper()",
    "self.tick()",
    "Trainer.tick_all()",
]
RANK_CONDITIONS = [
    "rank == 0",
    "dist.get_rank() != 0",
    "0 == local_rank",
    "local_rank in (-1, 0)",
    "is_master",
    "not is_main()",
    "accelerator.is_main_process",
    "trainer.is_global_zero",
    "self.global_rank > 0",
    "int(os.environ['RANK']) == 0",
    "os.getenv('LOCAL_RANK') == '0'",
    "is_coordinator()",
]
SYMMETRIC_CONDITIONS = [
    "local_rank != -1",
    "dist.is_initialized()",
    "world_size > 1",
    "torch.cuda.device_count() > 1",
    "epoch > 3",
    "cfg.debug",
]
DATA_CONDITIONS = [
    "loss.item() > 1.0",
    "time.time() > deadline",
    "acc > best",
    "random.random() < 0.5",
]
ITERABLES = [
    "train_loader",
    "enumerate(val_loader)",
    "tqdm(dataset)",
    "zip(loader_a, loader_b)",
    "range(num_epochs)",
    "model.seed_slots.values()",
    "enabled_slots",
    "model.named_modules()",
    "data_stream",
    "DataLoader(ds)",
    "range(3)",
]
ASSIGNMENTS = [
    "is_master = rank == 0",
    "rank = dist.get_rank()",
    "rank = 0",
    "local_rank = int(os.environ.get('LOCAL_RANK', -1))",
    "loss = model(batch)",
    "epoch += 1",
    "deadline = time.time() + 60",
    "value = slot.step_epoch",
]
CONDITIONS = RANK_CONDITIONS + SYMMETRIC_CONDITIONS + DATA_CONDITIONS
DECORATORS = [
    "@rank_zero_only",
    "@accelerator.on_main_process",
    "@functools.cache",
    "@staticmethod",
]
WITH_ITEMS = ["accelerator.main_process_first()", "fabric.rank_zero_first()", "torch.no_grad()"]
NOQA = ["", "", "", "  # noqa", "  # noqa: ESP001", "  # noqa: ESP004,ESP002"]

Lines = list[str]
MAX_DEPTH = 3  # deeper programs grow large and slow without reaching new analysis paths


def _indent(lines: Lines) -> Lines:
    return ["    " + line for line in lines]


@st.composite
def _simple(draw: st.DrawFn) -> Lines:
    call = draw(st.sampled_from(CALLS))
    noqa = draw(st.sampled_from(NOQA))
    condition = draw(st.sampled_from(CONDITIONS))
    form = draw(st.integers(0, 6))
    if form == 0:
        return [call + noqa]
    if form == 1:
        return [draw(st.sampled_from(ASSIGNMENTS))]
    if form == 2:
        return [f"result = {call} if {condition} else None{noqa}"]
    if form == 3:
        return [f"{condition} and {call}{noqa}"]
    if form == 4:
        return [f"results = [{call} for slot in slots if {condition}]"]
    if form == 5:
        return [f"callback = lambda: {call}"]
    return ["pass"]


def _block(
    draw: st.DrawFn, depth: int, in_loop: bool, in_function: bool, size: tuple[int, int] = (1, 2)
) -> Lines:
    lines: Lines = []
    for _ in range(draw(st.integers(*size))):
        lines += _statement(draw, depth, in_loop, in_function)
    return lines or ["pass"]


def _statement(draw: st.DrawFn, depth: int, in_loop: bool, in_function: bool) -> Lines:
    kinds = ["simple", "simple", "exit"] + (["if", "for", "while", "with", "try", "match",
             "def", "class"] if depth < MAX_DEPTH else [])  # fmt: skip
    kind = draw(st.sampled_from(kinds))
    condition = draw(st.sampled_from(CONDITIONS))

    def body(loop: bool = in_loop, function: bool = in_function) -> Lines:
        return _indent(_block(draw, depth + 1, loop, function))

    if kind == "simple":
        return draw(_simple())
    if kind == "exit":
        exits = ["raise RuntimeError('stop')"]
        exits += ["break", "continue"] if in_loop else []
        exits += ["return", "return None"] if in_function else []
        return [f"if {condition}:", "    " + draw(st.sampled_from(exits))]
    if kind == "if":
        lines = [f"if {condition}:", *body()]
        for _ in range(draw(st.integers(0, 2))):
            lines += [f"elif {draw(st.sampled_from(CONDITIONS))}:", *body()]
        if draw(st.booleans()):
            lines += ["else:", *body()]
        return lines
    if kind == "for":
        target = draw(st.sampled_from(["batch", "i, batch", "rank", "slot", "_"]))
        lines = [f"for {target} in {draw(st.sampled_from(ITERABLES))}:", *body(loop=True)]
        return lines + (["else:", *body()] if draw(st.booleans()) else [])
    if kind == "while":
        test = draw(st.sampled_from([condition, "step < total", "True", "next(it, None)"]))
        return [f"while {test}:", *body(loop=True), "    step += 1"]
    if kind == "with":
        return [f"with {draw(st.sampled_from(WITH_ITEMS))}:", *body()]
    if kind == "try":
        lines = ["try:", *body(), "except Exception:", *body()]
        return lines + (["finally:", *body()] if draw(st.booleans()) else [])
    if kind == "match":
        subject = draw(st.sampled_from(["rank", "stage", "dist.get_rank()"]))
        return [
            f"match {subject}:",
            "    case 0:",
            *_indent(body()),
            "    case _:",
            *_indent(body()),
        ]
    if kind == "def":
        name = draw(st.sampled_from(["helper", "tick", "tick_all", "is_main", "train_step"]))
        decorator = draw(st.sampled_from(["", *DECORATORS]))
        lines = [decorator] if decorator else []
        lines += [f"def {name}(*args):", *body(loop=False, function=True)]
        if draw(st.booleans()):
            lines += [f"    return {draw(st.sampled_from(CONDITIONS))}"]
        return lines
    return [
        "class Trainer:",
        "    def tick(self):",
        *_indent(body(loop=False, function=True)),
        "    @classmethod",
        "    def tick_all(cls):",
        *_indent(body(loop=False, function=True)),
    ]


@st.composite
def symmetric_programs(draw: st.DrawFn) -> str:
    """A small training script made of the constructs the analysis reasons about."""
    lines = _block(draw, 0, False, False, size=(1, 5))
    if draw(st.booleans()):
        lines = ["def train(model, slots, train_loader, rank):", *_indent(lines)]
    return HEADER + "\n".join(lines) + "\n"


SNIPPETS = [
    "slot.step_epoch()",
    "dist.barrier()",
    "if rank == 0:\n    slot.step_epoch()",
    "if dist.get_rank() != 0:\n    dist.barrier()",
    "for batch in train_loader:\n    slot.advance_stage()",
    "is_master = rank == 0\nif is_master:\n    dist.all_reduce(t)",
    "with accelerator.main_process_first():\n    dist.barrier()",
]


@st.composite
def spliced(draw: st.DrawFn, base: st.SearchStrategy[str]) -> str:
    """Generated code with symmetric-call-bearing statements inserted at line starts.

    The insertion takes the indentation of the line it goes before; inside a bracket or a
    multi-line string that makes the file invalid, which is fine: it must still not crash.
    """
    lines = draw(base).splitlines() or [""]
    for _ in range(draw(st.integers(1, 3))):
        position = draw(st.integers(0, len(lines)))
        reference = lines[position] if position < len(lines) else ""
        indent = reference[: len(reference) - len(reference.lstrip(" \t"))]
        snippet = draw(st.sampled_from(SNIPPETS)).splitlines()
        lines[position:position] = [indent + line for line in snippet]
    return "import torch.distributed as dist\n" + "\n".join(lines) + "\n"


# --- the properties ---------------------------------------------------------------------------

KNOWN_CODES = frozenset(known_codes())


def _valid_python(source: str) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            compile(source, "<fuzz>", "exec", dont_inherit=True)
        except (SyntaxError, ValueError, MemoryError, RecursionError):
            return False
    return True


def assert_well_formed(source: bytes, diagnostics: list[Diagnostic]) -> None:
    assert diagnostics == sorted(diagnostics)
    line_count = max(1, len(source.splitlines()))
    for d in diagnostics:
        assert d.code in KNOWN_CODES, d
        assert d.path == "fuzz.py"
        assert 1 <= d.line <= d.end_line <= line_count + 1, d
        assert d.column >= 1 and d.end_column >= 1, d
        assert (d.line, d.column) <= (d.end_line, d.end_column), d
        assert d.message and "\n" not in d.message, d
        # Any failure other than the documented recursion limit is a bug in the analysis.
        assert d.code != "ESP901" or d.message == TOO_DEEP, d.message


def check_property(text: str) -> list[Diagnostic]:
    """check_source returns, twice identically, well-formed diagnostics."""
    source = text.encode("utf-8", "surrogatepass")
    first = check_source(source, "fuzz.py", CONFIG)
    assert check_source(source, "fuzz.py", CONFIG) == first, "not deterministic"
    assert_well_formed(source, first)
    codes = {d.code for d in first}
    if "ESP900" in codes and _valid_python(text):
        event("libcst rejects code that CPython compiles")
    for code in sorted(codes):
        event(f"reported {code}")
    return first


@pytest.mark.slow
@fuzz_settings(100)
@given(hypothesmith.from_grammar())
def test_from_grammar(source: str) -> None:
    check_property(source)


@pytest.mark.slow
@fuzz_settings(20)
@given(hypothesmith.from_node())
def test_from_node(source: str) -> None:
    check_property(source)


def check_unvalidated_parse(source: str) -> None:
    assert_same_parse(source.encode("utf-8", "surrogatepass"))


@pytest.mark.slow
@fuzz_settings(100)
@given(hypothesmith.from_grammar())
def test_the_unvalidated_parse_from_grammar(source: str) -> None:
    check_unvalidated_parse(source)


@pytest.mark.slow
@fuzz_settings(20)
@given(hypothesmith.from_node())
def test_the_unvalidated_parse_from_node(source: str) -> None:
    check_unvalidated_parse(source)


@pytest.mark.slow
@fuzz_settings(300)
@given(symmetric_programs())
def test_symmetric_programs(source: str) -> None:
    assert _valid_python(source), source
    diagnostics = check_property(source)
    assert not {d.code for d in diagnostics} & {"ESP900", "ESP901"}, diagnostics


@pytest.mark.slow
@fuzz_settings(100)
@given(spliced(hypothesmith.from_grammar()))
def test_spliced_into_grammar_code(source: str) -> None:
    check_property(source)


FIXTURE_SOURCES = [path.read_bytes() for path in sorted(FIXTURES_DIR.glob("*.py"))]
NASTY_BYTES = [b"\x00", b"\r", b"\r\n", b"\t", b"\xff", b"\xef\xbb\xbf", b"(", b"]", b":", b"\\"]


@st.composite
def mutated_fixtures(draw: st.DrawFn) -> bytes:
    """A real fixture (full of symmetric calls) with a few byte-level mutations."""
    data = bytearray(draw(st.sampled_from(FIXTURE_SOURCES)))
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, len(data)))
        action = draw(st.integers(0, 3))
        if action == 0:
            data[position:position] = draw(st.sampled_from(NASTY_BYTES))
        elif action == 1:
            data[position:position] = draw(st.binary(min_size=1, max_size=4))
        elif action == 2:
            del data[position : position + draw(st.integers(1, 40))]
        else:
            end = data.find(b"\n", position)
            data[position:position] = data[position : end + 1 if end != -1 else len(data)]
    return bytes(data)


@pytest.mark.slow
@fuzz_settings(100)
@given(mutated_fixtures())
def test_mutated_fixture_bytes(source: bytes) -> None:
    first = check_source(source, "fuzz.py", CONFIG)
    assert check_source(source, "fuzz.py", CONFIG) == first, "not deterministic"
    assert_well_formed(source, first)
    for code in sorted({d.code for d in first}):
        event(f"reported {code}")


def test_the_program_grammar_reaches_every_rule() -> None:
    """The generator is useful only if the analysis finds things in what it produces."""
    seen: set[str] = set()

    @settings(max_examples=150, deadline=None, database=None, derandomize=True)
    @given(symmetric_programs())
    def collect(source: str) -> None:
        seen.update(d.code for d in check_source(source.encode(), "fuzz.py", CONFIG))

    collect()
    assert {"ESP001", "ESP002", "ESP003", "ESP004"} <= seen


# --- whole trees: jobs, cache, prefilter and processes agree ----------------------------------

TREE_SOURCES = st.lists(
    st.one_of(
        symmetric_programs(),
        symmetric_programs(),
        spliced(hypothesmith.from_grammar()),
        hypothesmith.from_grammar(),
    ),
    min_size=10,
    max_size=16,
)
Outcome = list[tuple[str, int, int, str, str]]


def _write_tree(root: Path, sources: list[str]) -> None:
    for index, text in enumerate(sources):
        package = root / f"pkg{index % 3}"
        package.mkdir(exist_ok=True)
        (package / f"module_{index}.py").write_bytes(text.encode("utf-8", "surrogatepass"))


def _outcome(root: Path, **options: object) -> Outcome:
    result = lint_paths([root], CONFIG, **options)  # type: ignore[arg-type]
    assert not result.warnings, result.warnings
    return [
        (os.path.relpath(d.path, root), d.line, d.column, d.code, d.message)
        for d in result.diagnostics
    ]


@pytest.mark.slow
@fuzz_settings(12, cost=10)
@given(TREE_SOURCES)
def test_jobs_cache_and_prefilter_agree(sources: list[str]) -> None:
    with tempfile.TemporaryDirectory(prefix="esper-lint-fuzz-") as directory:
        root = Path(directory) / "tree"
        cache = Path(directory) / "cache"
        root.mkdir()
        _write_tree(root, sources)
        baseline = _outcome(root, jobs=1, use_cache=False)
        runs: dict[str, Callable[[], Outcome]] = {
            "jobs=2": lambda: _outcome(root, jobs=2, use_cache=False),
            "cache cold, jobs=2": lambda: _outcome(root, jobs=2, cache_dir=cache),
            "cache warm, jobs=1": lambda: _outcome(root, jobs=1, cache_dir=cache),
            "cache warm, jobs=2": lambda: _outcome(root, jobs=2, cache_dir=cache),
            "no prefilter": lambda: _outcome(root, jobs=1, use_cache=False, prefilter=False),
            "no partial parse": lambda: _outcome(root, jobs=1, use_cache=False, partial=False),
        }
        for name, run in runs.items():
            assert run() == baseline, name
        event("tree with findings" if baseline else "clean tree")


CLI_JSON = [sys.executable, "-m", "esper_lint", ".", "--output-format", "json", "--no-cache"]


def _cli_outcome(root: Path, hash_seed: str, *options: str) -> list[object]:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONDONTWRITEBYTECODE": "1"}
    completed = subprocess.run(
        [*CLI_JSON, *options], cwd=root, capture_output=True, env=env, timeout=120
    )
    assert completed.returncode in (0, 1), completed.stderr
    findings: list[object] = json.loads(completed.stdout)
    return findings


@pytest.mark.slow
@fuzz_settings(2, cost=100)
@given(TREE_SOURCES)
def test_separate_processes_with_different_hash_seeds_agree(sources: list[str]) -> None:
    """Set and dict order differ between processes: results must not depend on them."""
    with tempfile.TemporaryDirectory(prefix="esper-lint-fuzz-") as directory:
        root = Path(directory)
        _write_tree(root, sources)
        (root / "pyproject.toml").write_text(
            "[tool.esper-lint]\n"
            'extend-symmetric-calls = ["sync_alpha"]\n'
            'extend-rank-sources = ["is_coordinator"]\n'
            'extend-data-sources = ["stream"]\n',
            encoding="utf-8",
        )
        first = _cli_outcome(root, "1")
        assert _cli_outcome(root, "4242", "--jobs", "2") == first

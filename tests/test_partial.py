"""Partial parse (``esper_lint.partial``): what it blanks, and that results never change."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_fuzz import HEADER, fuzz_settings, symmetric_programs

from esper_lint.checker import check_source
from esper_lint.config import Config
from esper_lint.engine import _Run, lint_paths
from esper_lint.partial import blank_unrelated, contribution_words

FIXTURES = Path(__file__).parent / "fixtures"
CONFIG = Config(root=FIXTURES)
NAMES_ONE = contribution_words(CONFIG)
FILLER = "\n".join(f"def filler_{i}(x):\n    return x * {i} + 1\n" for i in range(12))


def _module(text: str) -> str:
    """``text`` dedented, then a dozen small unrelated functions (enough to blank)."""
    return textwrap.dedent(text) + "\n" + FILLER


def _blank(text: str, project: tuple[str, ...] = ()) -> str | None:
    source = _module(text).encode()

    def is_project(level: int, module: str) -> bool:
        return level > 0 or module.partition(".")[0] in project

    blanked = blank_unrelated(source, ast.parse(source), NAMES_ONE, is_project)
    return None if blanked is None else blanked.decode()


def _kept_functions(text: str, project: tuple[str, ...] = ()) -> set[str]:
    blanked = _blank(text, project)
    assert blanked is not None, "nothing was blanked"
    assert blanked.count("\n") == _module(text).count("\n")  # every line stays
    kept_lines = [line for line in blanked.splitlines() if line]
    assert set(kept_lines) <= set(_module(text).splitlines())  # kept lines are intact
    return {node.name for node in ast.parse(blanked).body if isinstance(node, ast.FunctionDef)}


def test_unrelated_definitions_are_blanked_and_symmetric_ones_kept() -> None:
    kept = _kept_functions(
        """
        import torch.distributed as dist

        def reduce_loss(t):
            dist.all_reduce(t)
            return t

        """
    )
    assert kept == {"reduce_loss"}


def test_helpers_callers_and_what_kept_code_reads_are_kept() -> None:
    kept = _kept_functions(
        """
        import torch.distributed as dist

        def sync():
            dist.barrier()

        def epoch_end(model):          # calls a helper that makes a collective
            sync()

        def main():                    # calls a caller, transitively
            if should_stop(3):
                return
            epoch_end(None)

        def should_stop(n):            # read by kept code
            return n > limit()

        def limit():                   # read by what kept code reads
            return 3

        def setup(state):              # assigns an attribute kept code names
            state.group = object()

        def train(state):
            dist.all_reduce(1, group=state.group)

        """
    )
    assert kept == {"sync", "epoch_end", "main", "should_stop", "limit", "setup", "train"}


def test_imports_of_project_names_and_local_imports_keep_their_users() -> None:
    kept = _kept_functions(
        """
        from .helpers import reduce_metrics
        from mypkg.slots import make_slot
        from json import dumps

        def uses_relative(m):
            return reduce_metrics(m)

        def uses_absolute():
            return make_slot()

        def imports_locally():
            from .other import thing
            return thing()

        def uses_json(m):
            return dumps(m)

        """,
        project=("mypkg",),
    )
    assert kept == {"uses_relative", "uses_absolute", "imports_locally"}


def test_an_import_inside_a_top_level_block_counts_as_a_project_import() -> None:
    kept = _kept_functions(
        """
        try:
            from .helpers import sync
        except ImportError:
            sync = None

        def epoch_end():
            sync()
        """
    )
    assert kept == {"epoch_end"}


def test_a_decorated_definition_is_blanked_with_its_decorators() -> None:
    blanked = _blank(
        """
        import functools
        import torch.distributed as dist

        @functools.lru_cache
        def cached(x):
            return x

        def sync():
            dist.barrier()

        """
    )
    assert blanked is not None
    assert "functools.lru_cache" not in blanked and "dist.barrier()" in blanked


def test_nothing_is_blanked_when_too_little_would_go_or_line_breaks_are_unusual() -> None:
    big = "def sync():\n" + "    dist.barrier()\n" * 40 + "def small():\n    pass\n"
    source = big.encode()
    assert blank_unrelated(source, ast.parse(source), NAMES_ONE, lambda *_: False) is None
    lone_cr = f"import torch.distributed as dist\rdist.barrier()\r{FILLER}".replace("\n", "\r")
    source = lone_cr.encode()
    assert blank_unrelated(source, ast.parse(source), NAMES_ONE, lambda *_: False) is None


def test_non_ascii_code_is_parsed_whole_but_non_ascii_text_is_not_a_reason() -> None:
    helper = "def ﬁnd():\n    return dist.get_rank()\n"  # NFKC: the name is `find`
    caller = "def train():\n    if find() == 0:\n        dist.barrier()\n"
    source = (f"import torch.distributed as dist\n{helper}{caller}{FILLER}").encode()
    assert blank_unrelated(source, ast.parse(source), NAMES_ONE, lambda *_: False) is None
    texts = (
        f'"""Größe: naïve."""\nimport torch.distributed as dist\n# ü\n{caller}{FILLER}'
    ).encode()
    blanked = blank_unrelated(texts, ast.parse(texts), NAMES_ONE, lambda *_: False)
    assert blanked is not None and "Größe".encode() in blanked


def test_crlf_files_keep_their_line_breaks() -> None:
    source = f"import torch.distributed as dist\ndist.barrier()\n{FILLER}".replace("\n", "\r\n")
    blanked = blank_unrelated(source.encode(), ast.parse(source), NAMES_ONE, lambda *_: False)
    assert blanked is not None
    assert blanked.count(b"\r\n") == source.count("\r\n") and b"filler" not in blanked


def _fixture_files() -> list[Path]:
    return sorted(path for path in FIXTURES.rglob("*.py") if path.is_file())


@pytest.mark.parametrize("path", _fixture_files(), ids=lambda p: str(p.relative_to(FIXTURES)))
def test_every_fixture_checks_the_same_with_and_without_partial_parse(path: Path) -> None:
    source = path.read_bytes()
    whole = check_source(source, str(path), CONFIG)
    assert check_source(source, str(path), CONFIG, partial=True) == whole


def test_partial_parse_blanks_something_in_some_fixtures() -> None:
    """The fixture comparison above exercises the blanking, not only its refusals."""

    def blanks(path: Path) -> bool:
        source = path.read_bytes()
        try:
            tree = ast.parse(source)
        except (SyntaxError, ValueError):
            return False
        return blank_unrelated(source, tree, NAMES_ONE, lambda level, _m: level > 0) is not None

    assert sum(blanks(path) for path in _fixture_files()) >= 10


# --- generated modules: many top-level definitions that call, read and shadow each other ---

NAMES = ["alpha", "beta", "gamma", "delta", "state"]


@st.composite
def _definition(draw: st.DrawFn, index: int) -> str:
    name = f"{draw(st.sampled_from(NAMES))}_{index % 3}"
    other = f"{draw(st.sampled_from(NAMES))}_{draw(st.integers(0, 2))}"
    kind = draw(st.integers(0, 6))
    if kind == 0:  # a training function from the fuzz grammar
        body = draw(symmetric_programs()).removeprefix(HEADER)
        return f"def {name}(model, slots, train_loader, rank):\n    pass\n" + textwrap.indent(
            body, "    "
        )
    if kind == 1:  # a caller of another definition, under a rank test or not
        guard = draw(
            st.sampled_from(["", "if rank == 0:\n        ", "for _ in range(3):\n        "])
        )
        return f"def {name}(rank=0):\n    {guard}{other}()\n"
    if kind == 2:  # a value a condition may read
        value = draw(st.sampled_from(["3", "dist.get_rank()", "len(data)", "os.environ['RANK']"]))
        return f"def {name}():\n    return {value}\n"
    if kind == 3:  # sets an attribute or a global that other code reads
        value = draw(st.sampled_from(["dist.new_group([0])", "[0, 1]", "None"]))
        return f"def {name}(s):\n    global {other}\n    s.group = {value}\n    {other} = 1\n"
    if kind == 4:  # reads them
        return (
            f"def {name}(s):\n    if {other}:\n        dist.all_reduce(t, group=s.group)\n"
            f"    if dist.get_rank() in s.group:\n        dist.barrier(group=s.group)\n"
        )
    if kind == 5:  # a class with a method that calls another definition
        return f"class {name.title()}({other.title()}):\n    def run(self):\n        {other}()\n"
    return f"def {name}(x):\n    return x + 1\n"


@st.composite
def modules(draw: st.DrawFn) -> str:
    count = draw(st.integers(2, 9))
    units = [draw(_definition(index)) for index in range(count)]
    tail = draw(st.sampled_from(["", "main_0()\n", "if __name__ == '__main__':\n    alpha_0()\n"]))
    return HEADER + "\n\n".join(units) + "\n" + tail


@pytest.mark.slow
@fuzz_settings(150)
@given(modules())
def test_generated_modules_check_the_same_with_and_without_partial_parse(source: str) -> None:
    data = source.encode()
    whole = check_source(data, "fuzz.py", CONFIG)
    assert check_source(data, "fuzz.py", CONFIG, partial=True) == whole


def test_a_module_another_candidate_imports_is_parsed_whole(tmp_path: Path) -> None:
    """Its tree is its summary for the importer: the engine does not blank it."""
    package = tmp_path / "pkg"
    package.mkdir()
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'pkg'\n")
    (package / "__init__.py").write_text("")
    (package / "helpers.py").write_text(
        "import torch.distributed as dist\n\ndef sync():\n    dist.barrier()\n\n" + FILLER
    )
    (package / "train.py").write_text(
        "import torch.distributed as dist\nfrom pkg.helpers import sync\n\n"
        "def fit(rank):\n    if rank == 0:\n        sync()\n\n" + FILLER
    )
    config = Config(root=tmp_path)
    run = _Run(config, None, True, tmp_path)
    for path in sorted(package.glob("*.py")):
        run.visit(path, None)
    run.allow_partial_parses()
    may_blank = {item.path.name: item.partial for item in run.pending}
    assert may_blank == {"helpers.py": False, "train.py": True}
    whole = lint_paths([tmp_path], config, jobs=1, use_cache=False, partial=False)
    partly = lint_paths([tmp_path], config, jobs=1, use_cache=False)
    assert partly == whole
    assert [d.code for d in whole.diagnostics] == ["ESP004"]


def test_the_cli_switch_turns_it_off_with_the_same_report() -> None:
    examples = Path(__file__).resolve().parent.parent / "examples"

    def lint(*options: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "esper_lint", "--no-cache", *options, str(examples)]
        return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)

    default, whole = lint(), lint("--no-partial-parse")
    assert default.returncode == whole.returncode == 1, default.stderr + whole.stderr
    assert default.stdout == whole.stdout and "ESP00" in default.stdout

"""The project model and module summaries, and the CLI over a project: partial runs, the cache."""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
from pathlib import Path

import libcst
import pytest

from esper_lint.analysis.facts import build_facts
from esper_lint.analysis.project import (
    ProjectIndex,
    find_project_root,
    imported_modules,
    resolve_relative,
)
from esper_lint.analysis.summaries import Project
from esper_lint.config import Config

PROJECTS = Path(__file__).parent / "fixtures" / "projects"


def put(root: Path, name: str, text: str) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def cli(*args: str, cwd: Path, cache: Path | None = None) -> tuple[int, str]:
    env = {**os.environ}
    command = [sys.executable, "-m", "esper_lint", "--output-format", "concise", "-q"]
    if cache is None:
        command.append("--no-cache")
    else:
        env["ESPER_LINT_CACHE_DIR"] = str(cache)
    completed = subprocess.run(
        [*command, *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=120
    )
    assert "Traceback" not in completed.stdout + completed.stderr
    return completed.returncode, completed.stdout


# --- the project model -----------------------------------------------------------------------


def test_the_root_is_the_nearest_marked_ancestor(tmp_path: Path) -> None:
    put(tmp_path, "outer/setup.cfg", "")
    put(tmp_path, "outer/inner/.git", "")
    module = put(tmp_path, "outer/inner/pkg/mod.py", "")
    assert find_project_root(module) == tmp_path / "outer" / "inner"
    assert find_project_root(tmp_path / "outer" / "x.py") == tmp_path / "outer"


def test_module_names_follow_the_src_layout_and_configured_roots(tmp_path: Path) -> None:
    put(tmp_path, "pyproject.toml", "")
    put(tmp_path, "src/pkg/__init__.py", "")
    dist = put(tmp_path, "src/pkg/utils/dist.py", "")
    lib = put(tmp_path, "lib/core/comm.py", "")
    script = put(tmp_path, "scripts/train.py", "")
    index = ProjectIndex(tmp_path, [tmp_path / "lib"])
    assert index.module_name(dist) == "pkg.utils.dist"
    assert index.module_name(tmp_path / "src/pkg/__init__.py") == "pkg"
    assert index.module_name(lib) == "core.comm"
    assert index.module_name(script) == "scripts.train"
    assert index.module_file("pkg.utils.dist") == dist
    assert index.module_file("pkg") == tmp_path / "src/pkg/__init__.py"
    assert index.module_file("torch.distributed") is None


def test_relative_imports_resolve_against_the_package() -> None:
    assert resolve_relative("pkg.engine.loop", False, 1, "hooks") == "pkg.engine.hooks"
    assert resolve_relative("pkg.engine.loop", False, 2, "utils.comm") == "pkg.utils.comm"
    assert resolve_relative("pkg.engine", True, 1, "") == "pkg.engine"
    assert resolve_relative("pkg.mod", False, 3, "x") is None  # above the top package


def test_imported_modules_reads_every_import_form() -> None:
    source = (
        b"import a.b as c, d\n"
        b"from e.f import (g,\n    h as i)\n"
        b"from . import j\n"
        b"from ..k import *\n"
        b"x = 'import nothing'\n"
    )
    found = imported_modules(source, "pkg.sub.mod", False)
    assert found == ["a.b", "d", "e.f", "e.f.g", "e.f.h", "pkg.sub", "pkg.sub.j", "pkg.k"]


def test_only_a_file_naming_a_top_level_module_or_importing_relatively_may_import_the_project(
    tmp_path: Path,
) -> None:
    put(tmp_path, "pyproject.toml", "")
    put(tmp_path, "src/trainpkg/__init__.py", "")
    put(tmp_path, "tools.py", "")
    index = ProjectIndex(tmp_path)
    assert not index.may_import_project(b"import torch\nfrom torch import nn\n")
    assert index.may_import_project(b"from trainpkg.utils import f\n")
    assert index.may_import_project(b"import tools\n")
    assert index.may_import_project(b"from .utils import f\n")
    assert index.may_import_project(b"from\t..utils import f\n")
    assert index.may_import_project(b"from \\\n.utils import f\n")
    # every file the precise reading finds importing the project passes the quick test
    for source in (b"from . import j\n", b"import trainpkg as t\n", b"from tools import x\n"):
        found = imported_modules(source, "trainpkg.mod", False)
        assert any(index.module_file(name) is not None for name in found)
        assert index.may_import_project(source)


# --- summaries ---------------------------------------------------------------------------------


def summarised(root: Path) -> Project:
    return Project(ProjectIndex(root), Config(root=root))


def test_summaries_say_what_each_function_offers(tmp_path: Path) -> None:
    shutil.copytree(PROJECTS / "rank_zero_decorator", tmp_path, dirs_exist_ok=True)
    put(
        tmp_path,
        "pkg/comm.py",
        "import torch.distributed as dist\n"
        "def mean(t):\n    dist.all_reduce(t)\n    return t.item() / 2\n"
        "def local(t):\n    return t.item() + dist.get_rank()\n",
    )
    project = summarised(tmp_path)
    decorators = project.summary("pkg.decorators")
    comm = project.summary("pkg.comm")
    assert decorators is not None and comm is not None
    assert decorators.functions["master_only"].rank_zero_decorator
    assert decorators.functions["main_or_skip"].rank_zero_decorator
    assert decorators.functions["is_main_process"].returns_rank_dependent
    assert not decorators.functions["is_main_process"].rank_zero_decorator
    assert comm.functions["mean"].returns_uniform
    assert comm.functions["mean"].chains == {"collective": ("dist.all_reduce()",)}
    assert not comm.functions["local"].returns_uniform
    assert comm.functions["local"].returns_rank_dependent


def test_a_reduced_result_is_a_queryable_uniform_fact(tmp_path: Path) -> None:
    shutil.copytree(PROJECTS / "cross_file_collective", tmp_path, dirs_exist_ok=True)
    train = put(
        tmp_path,
        "pkg/eval.py",
        "from pkg.utils.dist import all_reduce_mean\n"
        "from pkg.train import sync_stats\n"
        "loss = all_reduce_mean(t)\nother = sync_stats(t)\nplain = len(t)\n",
    )
    project = summarised(tmp_path)
    module = libcst.parse_module(train.read_bytes())
    facts = build_facts(module, Config(root=tmp_path), project.context(train))
    statements = [line.body[0] for line in module.body[2:]]
    calls = [statement.value for statement in statements if isinstance(statement, libcst.Assign)]
    assert [facts.returns_uniform(call) for call in calls if isinstance(call, libcst.Call)] == [
        True,
        True,
        False,
    ]


def test_a_module_that_mentions_nothing_is_not_parsed(tmp_path: Path) -> None:
    put(tmp_path, "pyproject.toml", "")
    put(tmp_path, "plain.py", "def helper(x):\n    return x + 1\n")
    put(tmp_path, "chain.py", "from plain import helper\ndef outer(x):\n    return helper(x)\n")
    put(tmp_path, "ranked.py", "from chain import outer\ndef r():\n    return get_rank()\n")
    project = summarised(tmp_path)
    assert not project.could_contribute("plain")
    assert not project.could_contribute("chain")
    assert project.could_contribute("ranked")
    plain = project.summary("chain")
    assert plain is not None and plain.functions == {}  # known to offer nothing, never parsed


# A ring of imports: a.start -> b.middle -> c.end -> a.sync, which makes the collective. Every
# function reaches it, whichever module's summary is asked for first.
RING = {
    "pkg/a.py": (
        "import torch.distributed as dist\nfrom pkg import b\n"
        "def start():\n    b.middle()\ndef sync():\n    dist.barrier()\n"
    ),
    "pkg/b.py": "from pkg import c\ndef middle():\n    c.end()\n",
    "pkg/c.py": "from pkg import a\ndef end():\n    a.sync()\n",
    "train.py": (
        "from pkg import a, b, c\n"
        "def epoch_end(rank):\n"
        "    if rank == 0:\n        a.start()\n"
        "    if rank == 0:\n        b.middle()\n"
        "    if rank == 0:\n        c.end()\n"
    ),
}


@pytest.mark.parametrize(
    "order",
    list(itertools.permutations(["pkg/a.py", "pkg/b.py", "pkg/c.py", "train.py"])),
    ids="-".join,
)
def test_summaries_in_an_import_cycle_do_not_depend_on_the_order_files_are_checked(
    tmp_path: Path, order: tuple[str, ...]
) -> None:
    # Pool workers and warm runs check files in other orders; before cycles were solved to a
    # fixpoint, the module summarised first saw the others as contributing nothing.
    from esper_lint import engine

    put(tmp_path, "pyproject.toml", "")
    put(tmp_path, "pkg/__init__.py", "")
    for name, text in RING.items():
        put(tmp_path, name, text)
    config = Config(root=tmp_path)
    engine._projects.clear()
    engine._indexes.clear()
    try:
        found = {
            name: engine._check_one(
                (tmp_path / name).read_bytes(), str(tmp_path / name), config, str(tmp_path)
            )[0]
            for name in order
        }
    finally:
        engine._projects.clear()
        engine._indexes.clear()
    assert [(d[0], d[4]) for d in found["train.py"]] == [
        (4, "ESP004"),
        (6, "ESP004"),
        (8, "ESP004"),
    ]
    assert all(found[name] == () for name in order if name != "train.py")


def test_a_linted_module_outside_any_import_cycle_is_remembered_without_the_offer_graph(
    tmp_path: Path,
) -> None:
    # Whether a module is in a cycle was first asked of the offer graph, which reads what every
    # module it reaches contributes: 4 to 9 % of a cold run where every file is a candidate.
    from esper_lint import engine

    put(tmp_path, "pyproject.toml", "")
    put(tmp_path, "base.py", "import torch.distributed as dist\ndef sync():\n    dist.barrier()\n")
    put(tmp_path, "helpers.py", "from base import sync\nimport torch.distributed as dist\n"
        "def both():\n    sync()\n    dist.barrier()\n")  # fmt: skip
    put(tmp_path, "ring_a.py", "import ring_b\nimport torch.distributed as dist\n"
        "def a():\n    dist.barrier()\n")  # fmt: skip
    put(tmp_path, "ring_b.py", "import ring_a\ndef b():\n    ring_a.a()\n")
    config = Config(root=tmp_path)
    engine._projects.clear()
    engine._indexes.clear()
    try:
        for name in ("helpers.py", "ring_a.py"):
            path = tmp_path / name
            engine._check_one(path.read_bytes(), str(path), config, str(tmp_path))
        project = engine._projects[str(tmp_path)]
        assert "helpers" in project.summaries and "base" in project.summaries
        assert project._offers is None or "helpers" not in project._offers.modules
        assert project.cycle_of("ring_a") == ("ring_a", "ring_b")
        assert "ring_a" not in project.summaries  # a cycle's lint walk is not its summary
    finally:
        engine._projects.clear()
        engine._indexes.clear()


WALKED_RING = {
    "pkg/a.py": (
        "import torch.distributed as dist\nfrom pkg import b\n"
        "def sync():\n    dist.barrier()\n"
        "def start(rank):\n    if rank == 0:\n        b.middle()\n"
    ),
    # b also reads its own summary, which a cycle's walks see only as it was a pass before
    "pkg/b.py": (
        "import pkg.b\nfrom pkg import c\ndef middle():\n    c.end()\n"
        "def tick(rank):\n    if rank == 0:\n        c.end()\n"
        "def again(rank):\n    if rank == 0:\n        pkg.b.middle()\n"
    ),
    "pkg/c.py": (
        "from pkg import a\ndef end():\n    a.sync()\n"
        "def flush():\n    if is_coordinator():\n        a.sync()\n"
    ),
    # reads its own summary through its own name: none while that summary is being computed
    "pkg/selfish.py": (
        "import torch.distributed as dist\nimport pkg.selfish\n"
        "def sync():\n    dist.barrier()\n"
        "def end(rank):\n    if rank == 0:\n        pkg.selfish.sync()\n"
    ),
    # a cycle the import lines do not show (x and y import only pkg): y, summarised inside x's
    # summary, sees none of x's, and x's walk reads y's summary as provisional
    "pkg/x.py": (
        "import torch.distributed as dist\nimport pkg\ndef sync():\n    dist.barrier()\n"
        "def run(rank):\n    if rank == 0:\n        pkg.y.relay()\n"
    ),
    "pkg/y.py": "import pkg\ndef relay():\n    pkg.x.sync()\n",
    "train.py": (
        "from pkg import a, selfish, x\n"
        "def main(rank):\n    a.start(rank)\n    selfish.end(rank)\n    x.run(rank)\n"
    ),
}
WALKED_ORDER = [
    "train.py",
    "pkg/a.py",
    "pkg/b.py",
    "pkg/c.py",
    "pkg/selfish.py",
    "pkg/x.py",
    "pkg/y.py",
]


def _checked(root: Path, project: Project, name: str) -> list[tuple[int, str, str]]:
    from esper_lint.checker import check_source

    path = root / name
    found = check_source(path.read_bytes(), str(path), project.config, project.context(path))
    return [(d.line, d.code, d.message) for d in found]


def test_the_check_of_a_file_reuses_its_summarys_walk_with_the_same_findings(
    tmp_path: Path,
) -> None:
    # A summary's walk of a module checked later is the walk its check would make, when the
    # summaries it read were final: 191 of the 1,730 walks of a cold transformers run.
    put(tmp_path, "pkg/__init__.py", "")
    for name, text in WALKED_RING.items():
        put(tmp_path, name, text)
    config = Config(root=tmp_path)
    reference = Project(ProjectIndex(tmp_path), config, gated=False)
    expected = {name: _checked(tmp_path, reference, name) for name in WALKED_ORDER}
    assert reference.walks == {}  # the reference walks every file for its check

    project = Project(ProjectIndex(tmp_path), config)
    found = {"train.py": _checked(tmp_path, project, "train.py")}
    kept = {os.path.relpath(path, tmp_path) for path in project.walks}
    # the ring's walks, solved to a fixpoint; not those of the modules that read their own
    # summary, nor x's, which read a provisional one
    assert kept == {os.path.join("pkg", name) for name in ("a.py", "c.py")}
    for name in WALKED_ORDER[1:]:
        found[name] = _checked(tmp_path, project, name)
    assert project.walks == {}  # each handed out once, to its own file's check
    assert found == expected
    assert [code for _, code, _ in found["pkg/a.py"]] == ["ESP004"]
    assert [code for _, code, _ in found["pkg/b.py"]] == ["ESP004", "ESP004"]
    assert [code for _, code, _ in found["pkg/selfish.py"]] == ["ESP004"]
    assert [code for _, code, _ in found["pkg/x.py"]] == ["ESP004"]


def test_a_kept_walk_is_not_used_for_other_bytes_or_another_configuration(tmp_path: Path) -> None:
    from esper_lint.checker import check_source

    put(tmp_path, "pkg/__init__.py", "")
    for name, text in WALKED_RING.items():
        put(tmp_path, name, text)
    project = Project(ProjectIndex(tmp_path), Config(root=tmp_path))
    _checked(tmp_path, project, "train.py")
    a_path = tmp_path / "pkg" / "a.py"
    assert str(a_path.resolve()) in project.walks
    # an edited a.py (the bytes differ from the tree kept): parsed and walked anew
    edited = a_path.read_bytes().replace(b"if rank == 0:", b"if True:")
    assert check_source(edited, str(a_path), project.config, project.context(a_path)) == []
    assert str(a_path.resolve()) not in project.walks
    # c.py with another configuration, under which the condition is rank-dependent
    c_path = tmp_path / "pkg" / "c.py"
    assert str(c_path.resolve()) in project.walks
    other = Config(root=tmp_path, extend_rank_sources=("is_coordinator",))
    found = check_source(c_path.read_bytes(), str(c_path), other, project.context(c_path))
    assert [d.code for d in found] == ["ESP004"]
    assert str(c_path.resolve()) not in project.walks


# --- the CLI over a project --------------------------------------------------------------------

IS_MAIN_BY_RANK = "def is_main():\n    return dist.get_rank() == 0\n"
IS_MAIN_BY_FLAG = "FLAGS = {'main': True}\ndef is_main():\n    return FLAGS['main']\n"
TRAIN = (
    "import torch.distributed as dist\n"
    "from utils.dist import is_main\n"
    "def end(t):\n"
    "    if is_main():\n"
    "        dist.barrier()\n"
)


def test_one_file_passed_still_gets_the_cross_file_finding(tmp_path: Path) -> None:
    shutil.copytree(PROJECTS / "cross_file_collective", tmp_path, dirs_exist_ok=True)
    code, out = cli("pkg/train.py", cwd=tmp_path)
    assert code == 1
    assert out.splitlines() == [
        "pkg/train.py:13:9: ESP004 sync_stats() -> pkg/utils/dist.py: all_reduce_mean() -> "
        "dist.all_reduce() is a collective that may not run on every rank: it is controlled by "
        "the rank-dependent condition at line 12 (dist.get_rank() == 0)"
    ]
    # Only the files passed are reported: the helper's own module has nothing to say.
    assert cli("pkg/utils/dist.py", cwd=tmp_path) == (0, "")


def test_one_file_passed_from_elsewhere_uses_its_own_project_root(tmp_path: Path) -> None:
    shutil.copytree(PROJECTS / "src_layout", tmp_path / "proj")
    code, out = cli(str(tmp_path / "proj" / "scripts" / "train.py"), cwd=tmp_path)
    assert code == 1 and out.count("ESP004") == 2
    assert "src/mypkg/comm.py: sync()" in out


def test_editing_a_dependency_changes_the_warm_run(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    put(root, "pyproject.toml", "")
    put(root, "utils/__init__.py", "")
    dist = put(root, "utils/dist.py", "import torch.distributed as dist\n" + IS_MAIN_BY_RANK)
    put(root, "train.py", TRAIN)
    cache = tmp_path / "cache"
    cold = cli(".", cwd=root, cache=cache)
    assert cold[0] == 1 and "train.py:5:9: ESP004" in cold[1]
    assert cli(".", cwd=root, cache=cache) == cold  # warm, nothing changed
    dist.write_text("import torch.distributed as dist\n" + IS_MAIN_BY_FLAG)
    assert cli(".", cwd=root, cache=cache) == (0, "")
    assert cli("train.py", cwd=root, cache=cache) == (0, "")  # a partial run sees it too
    dist.write_text("import torch.distributed as dist\n" + IS_MAIN_BY_RANK)
    assert cli("train.py", cwd=root, cache=cache) == cold


@pytest.mark.parametrize(
    ("relay", "chain"),
    [
        ({}, "helpers.py: finish() -> dist.barrier()"),
        (  # decided on the offers of a module between them, which the edit does not touch
            {"mid.py": "from helpers import finish\ndef finish_all():\n    finish()\n"},
            "mid.py: finish_all() -> helpers.py: finish() -> dist.barrier()",
        ),
    ],
)
def test_a_file_skipped_by_the_prefilter_is_checked_again_when_its_import_changes(
    tmp_path: Path, relay: dict[str, str], chain: str
) -> None:
    root = tmp_path / "proj"
    put(root, "pyproject.toml", "")
    helpers = put(root, "helpers.py", "def finish():\n    print('done')\n")
    for name, text in relay.items():
        put(root, name, text)
    called = "finish_all" if relay else "finish"
    source = "mid" if relay else "helpers"
    train = (
        f"from {source} import {called}\ndef end(rank):\n    if rank == 0:\n        {called}()\n"
    )
    put(root, "train.py", train)
    cache = tmp_path / "cache"
    assert cli(".", cwd=root, cache=cache) == (0, "")
    helpers.write_text("import torch.distributed as dist\ndef finish():\n    dist.barrier()\n")
    code, out = cli(".", cwd=root, cache=cache)
    assert code == 1 and out.startswith(f"train.py:4:9: ESP004 {chain}")


@pytest.mark.parametrize("name", ["import_cycle", "init_reexports"])
def test_a_project_gives_the_same_results_with_a_pool(tmp_path: Path, name: str) -> None:
    shutil.copytree(PROJECTS / name, tmp_path, dirs_exist_ok=True)
    for index in range(8):  # enough candidates for the engine to start a pool
        put(tmp_path, f"extra/m{index}.py", "import torch.distributed as dist\ndist.barrier()\n")
    serial = cli("-j", "1", ".", cwd=tmp_path)
    assert cli("-j", "2", ".", cwd=tmp_path) == serial
    assert serial[0] == 1

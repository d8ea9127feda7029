"""The offer graph: which names of a project module can give its importers anything, from text."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_analysis_project import put

from esper_lint.analysis import offers
from esper_lint.analysis.project import ProjectIndex
from esper_lint.analysis.summaries import OFFERS_ANYTHING, OFFERS_CALLS, Project
from esper_lint.config import Config


def project_of(root: Path, files: dict[str, str]) -> Project:
    put(root, "pyproject.toml", "")
    for name, text in files.items():
        put(root, name, text)
    return Project(ProjectIndex(root), Config(root=root))


def offered(project: Project, module: str, kind: int = OFFERS_ANYTHING) -> set[str]:
    graph = project._offer_graph()
    graph.offers(module, kind)
    return graph.offered[kind][module]


COMM = "import torch.distributed as dist\ndef sync():\n    dist.barrier()\ndef local():\n    pass\n"


# --- units ---------------------------------------------------------------------------------


def test_a_unit_is_a_top_level_statement_with_its_decorators_and_continuations() -> None:
    code = (
        b"@wrap\n@other(1)\ndef f():\n    pass\n"
        b"if a:\n    x = 1\nelse:\n    x = 2\n"
        b"y = g(\n1,\n)\n"
        b"z = 1 + \\\n2\n"
        b"class C:\n    pass\n"
    )
    segments = list(offers._segments(code))
    assert [offers._binds(segment) for segment in segments] == [
        {"f"},
        {"x"},
        {"y"},
        {"z"},
        {"C"},
    ]


def test_a_block_binds_what_its_lines_define_and_assign() -> None:
    block = (
        b"try:\n    import fast\nexcept ImportError as error:\n    fast = None\n"
        b"    def fallback():\n        return helper(1)\n"
        b"    for i, j in pairs:\n        registry.update(i)\n"
    )
    assert offers._binds(block) >= {"error", "fast", "fallback", "i", "j", "registry"}
    assert "helper" not in offers._binds(block)


def test_a_function_binds_its_name_and_its_globals() -> None:
    assert offers._binds(b"def f():\n    global RANK, WORLD\n    RANK = 1\n") == {
        "f",
        "RANK",
        "WORLD",
    }


# --- what a module offers --------------------------------------------------------------------


def test_only_the_names_that_reach_a_collective_offer_one(tmp_path: Path) -> None:
    project = project_of(
        tmp_path,
        {
            "comm.py": COMM,
            "steps.py": (
                "from comm import sync, local\n"
                "def finish():\n    sync()\n"
                "def relay():\n    return finish()\n"
                "def quiet():\n    local()\n"
            ),
        },
    )
    assert offered(project, "comm") == {"sync"}
    assert offered(project, "steps") == {"sync", "finish", "relay"}


def test_a_module_that_imports_only_what_offers_nothing_is_not_parsed(tmp_path: Path) -> None:
    project = project_of(
        tmp_path,
        {
            "comm.py": COMM,
            "logs.py": "from comm import local\ndef get_logger():\n    return local()\n",
        },
    )
    assert project.could_contribute("comm")
    assert not project.could_contribute("logs")
    summary = project.summary("logs")
    assert summary is not None and summary.functions == {}  # known to offer nothing
    assert "logs" not in project.summaries or not project.trees


@pytest.mark.parametrize(
    ("importer", "offers_it"),
    [
        ("import pkg.comm\ndef f():\n    pkg.comm.sync()\n", True),
        ("import pkg.comm\ndef f():\n    pkg.comm.local()\n", True),  # `pkg` reaches comm
        ("from pkg import comm\ndef f():\n    comm.sync()\n", True),
        ("from pkg import comm as c\ndef f():\n    return c\n", True),  # the module object
        ("from pkg.comm import *\ndef f():\n    sync()\n", False),  # binds nothing followed
        ("from .comm import sync as s\ndef f():\n    s()\n", True),
        ("from . import comm\ndef f():\n    comm.local()\n", True),  # re-exports the module
        ("import pkg.comm\n", True),  # `from pkg.user import pkg` reaches pkg.comm.sync
        ("import pkg.comm as c\ndef f():\n    c.local()\n", True),
        ("from pkg.comm import local\ndef f():\n    local()\n", False),
    ],
)
def test_imports_resolve_to_names_and_module_objects(
    tmp_path: Path, importer: str, offers_it: bool
) -> None:
    project = project_of(
        tmp_path, {"pkg/__init__.py": "", "pkg/comm.py": COMM, "pkg/user.py": importer}
    )
    assert project._offer_graph().offers("pkg.user", OFFERS_ANYTHING) is offers_it


@pytest.mark.parametrize(
    ("body", "offers_it"),
    [
        ("    Syncer()\n", False),  # an instance: the analysis follows no call into it
        ("    Syncer.run_all()\n", True),
        ("    return Syncer\n", False),  # read, never called
        ("    return go(sync)\n", False),  # passed as a value
        ("    sync()\n", True),
    ],
)
def test_only_calls_carry_an_offer(tmp_path: Path, body: str, offers_it: bool) -> None:
    comm = COMM + "class Syncer:\n    @staticmethod\n    def run_all():\n        sync()\n"
    project = project_of(
        tmp_path, {"comm.py": comm, "user.py": f"from comm import Syncer, sync\ndef f():\n{body}"}
    )
    assert ("f" in offered(project, "user")) is offers_it


def test_decorators_and_bases_carry_an_offer(tmp_path: Path) -> None:
    project = project_of(
        tmp_path,
        {
            "comm.py": COMM + "def on_main(fn):\n    return fn\nclass Base:\n    pass\n",
            "user.py": "import comm\n@comm.sync\ndef f():\n    pass\n"
            "class C(comm.Base):\n    pass\nclass D(comm.Syncing if X else object):\n    pass\n",
        },
    )
    assert offered(project, "user") >= {"f", "comm"}
    assert "C" not in offered(project, "user")  # Base offers nothing


def test_a_class_that_becomes_a_function_changes_the_digest(tmp_path: Path) -> None:
    body = "    def __init__(self):\n        sync()\n"
    project = project_of(tmp_path, {"comm.py": COMM + f"class Helper:\n{body}"})
    before = project._offer_graph().digest("comm", OFFERS_CALLS)
    (tmp_path / "comm.py").write_text(COMM + "def Helper():\n    sync()\n")
    after = project_of(tmp_path, {})._offer_graph().digest("comm", OFFERS_CALLS)
    assert before != after


def test_offers_reach_through_an_import_cycle(tmp_path: Path) -> None:
    project = project_of(
        tmp_path,
        {
            "a.py": "import b\ndef start():\n    b.middle()\ndef other():\n    pass\n",
            "b.py": "import a\nimport torch.distributed as dist\n"
            "def middle():\n    dist.barrier()\ndef back():\n    a.other()\n",
        },
    )
    assert offered(project, "a") == {"start", "b"}  # `b`: a module object that offers
    assert offered(project, "b") == {"middle", "a"}


def test_a_rank_source_offers_to_summaries_but_not_to_candidacy(tmp_path: Path) -> None:
    project = project_of(
        tmp_path, {"ranks.py": "import os\ndef is_main():\n    return os.environ['RANK'] == '0'\n"}
    )
    assert offered(project, "ranks", OFFERS_ANYTHING) == {"is_main"}
    assert offered(project, "ranks", OFFERS_CALLS) == set()


def test_a_class_offers_through_its_bases_and_its_methods(tmp_path: Path) -> None:
    project = project_of(
        tmp_path,
        {
            "base.py": "import torch.distributed as dist\n"
            "class Base:\n    def sync(self):\n        dist.barrier()\n",
            "mid.py": "from base import Base\nclass Mid(Base):\n    pass\nclass Plain:\n    pass\n",
        },
    )
    assert offered(project, "mid") == {"Base", "Mid"}


def test_a_dist_pair_counts_only_on_a_torch_distributed_name(tmp_path: Path) -> None:
    project = project_of(
        tmp_path,
        {
            "config.py": '"""Works in distributed runs."""\nimport json\n'
            "def read(path):\n    return json.load(path)\n",
            "ckpt.py": "import torch.distributed.checkpoint as dcp\n"
            "def write(state):\n    dcp.save(state)\n",
            "plain.py": "def write(state):\n    dist.save(state)\n",  # `dist` unimported
        },
    )
    assert offered(project, "config", OFFERS_CALLS) == set()
    assert offered(project, "ckpt", OFFERS_CALLS) == {"write"}
    assert offered(project, "plain", OFFERS_CALLS) == {"write"}


def test_a_module_not_readable_as_text_offers_everything(tmp_path: Path) -> None:
    project = project_of(tmp_path, {"user.py": "from odd import thing\ndef f():\n    thing()\n"})
    (tmp_path / "odd.py").write_bytes(b"# -*- coding: utf-16 -*-\nthing = 1\n")
    assert project._offer_graph().offers("user", OFFERS_CALLS)


# --- what a file that offers nothing depends on ------------------------------------------------


def test_a_quiet_read_depends_on_the_modules_behind_it(tmp_path: Path) -> None:
    project = project_of(
        tmp_path,
        {
            "a.py": "def helper():\n    print('done')\n",
            "b.py": "from a import helper\ndef step():\n    helper()\n",
            "c.py": "def unrelated():\n    pass\n",
        },
    )
    graph = project._offer_graph()
    assert graph.quiet_closure({"b"}, OFFERS_CALLS) == {"a", "b"}
    before = graph.digest("b", OFFERS_CALLS)
    (tmp_path / "a.py").write_text(COMM.replace("sync", "helper"))
    changed = project_of(tmp_path, {})._offer_graph()
    assert changed.digest("b", OFFERS_CALLS) != before


def test_the_gate_gives_the_results_of_summarising_every_module(tmp_path: Path) -> None:
    """Calls, instances, decorators, bases and values, each reaching a collective or not:
    the offer graph must keep exactly the summaries and candidates the analysis needs."""
    from esper_lint.engine import lint_paths

    comm = COMM + (
        "class Helper:\n    def __init__(self):\n        sync()\n"
        "    @staticmethod\n    def run_all():\n        sync()\n"
        "def on_main(fn):\n    def wrapper(*a):\n        if get_rank() == 0:\n"
        "            return fn(*a)\n    return wrapper\n"
    )
    files = {
        "comm.py": comm,
        "mid.py": "from comm import Helper, sync, local\n"
        "class Mid(Helper):\n    pass\n"
        "def relay():\n    sync()\n"
        "def make():\n    return Helper()\n"
        "def value():\n    return sync\n",
        "train.py": "from mid import Mid, relay, make, value\nfrom comm import Helper, on_main\n"
        "def end(rank):\n    if rank == 0:\n        relay()\n        make()\n        value()\n"
        "        Helper.run_all()\n        Mid()\n"
        "class T(Mid):\n    def close(self, rank):\n"
        "        if rank == 0:\n            self.run_all()\n"
        "@on_main\ndef save():\n    relay()\n",
    }
    project_of(tmp_path, files)
    config = Config(root=tmp_path)
    gated = lint_paths([tmp_path], config, jobs=1, use_cache=False)
    every = lint_paths([tmp_path], config, jobs=1, use_cache=False, prefilter=False)
    assert gated == every
    assert len(gated.diagnostics) == 4  # relay(), Helper.run_all(), self.run_all(), save()


def test_a_star_import_offers_nothing_as_the_analysis_follows_nothing_through_it(
    tmp_path: Path,
) -> None:
    """The analysis binds no name from ``from m import *``: a package ``__init__`` that
    star-imports its submodules (all of transformers' ``models``) offers nothing, its summary is
    not parsed, and a file calling through it is no candidate, with the results of summarising
    and checking every module. The explicit import beside it is the control."""
    from esper_lint.engine import lint_paths

    files = {
        "pkg/__init__.py": "from .comm import *\n",
        "pkg/comm.py": COMM,
        "star_user.py": "from pkg import *\ndef end(rank):\n    if rank == 0:\n        sync()\n",
        "named_user.py": (
            "from pkg.comm import sync\ndef end(rank):\n    if rank == 0:\n        sync()\n"
        ),
    }
    project = project_of(tmp_path, files)
    assert offered(project, "pkg") == set()
    assert not project.could_contribute("pkg")
    assert not project.imports_offering(files["star_user.py"].encode(), tmp_path / "star_user.py")
    config = Config(root=tmp_path)
    gated = lint_paths([tmp_path], config, jobs=1, use_cache=False)
    every = lint_paths([tmp_path], config, jobs=1, use_cache=False, prefilter=False)
    assert gated == every
    assert [Path(d.path).name for d in gated.diagnostics] == ["named_user.py"]


def test_a_warm_run_answers_a_file_decided_on_offers_from_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from esper_lint import engine

    root = tmp_path / "proj"
    project_of(
        root,
        {
            "low.py": "def helper():\n    print('done')\n",
            "train.py": "from low import helper\n"
            "def end(rank):\n    if rank == 0:\n        helper()\n",
        },
    )
    config = Config(root=root)
    cold = engine.lint_paths([root], config, jobs=1, cache_dir=tmp_path / "cache")
    asked: list[Path] = []
    real = engine._Run.candidate

    def counted(run: engine._Run, source: bytes, path: Path, project_root: str) -> bool:
        asked.append(path)
        return real(run, source, path, project_root)

    monkeypatch.setattr(engine._Run, "candidate", counted)
    warm = engine.lint_paths([root], config, jobs=1, cache_dir=tmp_path / "cache")
    assert warm == cold and asked == []


def test_the_offers_digests_outlive_a_run_that_changes_another_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A save prunes the digests of modules that no longer exist: not those stored by kind."""
    import json

    import esper_lint.cache
    from esper_lint import engine

    monkeypatch.setattr(esper_lint.cache, "RACY_WINDOW_NS", 0)  # trust every signature
    root = tmp_path / "proj"
    project_of(
        root,
        {
            "low.py": "def helper():\n    print('done')\n",
            "train.py": "from low import helper\ndef end():\n    helper()\n",
            "other.py": "x = 1\n",
        },
    )
    config = Config(root=root)
    engine.lint_paths([root], config, jobs=1, cache_dir=tmp_path / "cache")
    (root / "other.py").write_text("x = 2\n")
    engine.lint_paths([root], config, jobs=1, cache_dir=tmp_path / "cache")
    (document,) = (tmp_path / "cache").rglob("*.json")
    keys = json.loads(document.read_text())["summaries"]
    assert any(key.startswith("offers:") and key.endswith("low.py") for key in keys)

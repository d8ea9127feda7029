"""The results cache: hits, invalidation, untrusted documents, unwritable directories, races.

A hit is observed, without mocks, by planting a sentinel result in the stored document: if the
next run reports the sentinel, it answered from the cache; if not, it recomputed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import esper_lint
import esper_lint.cache
from esper_lint.cache import CACHE_DIR_ENV, Cache, resolve_cache_dir
from esper_lint.config import Config
from esper_lint.engine import LintResult, lint_paths

CANDIDATE = "def tick(slots):\n    for slot in slots:\n        slot.step_epoch()\n"
BROKEN_CANDIDATE = "def tick(slot):\n    slot.step_epoch(\n"
PLAIN = "import math\n\nvalue = math.pi\n"
SENTINEL = [7, 1, 7, 5, "ESP001", "planted by the test"]


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "train.py").write_text(CANDIDATE, encoding="utf-8")
    (root / "pkg" / "broken.py").write_text(BROKEN_CANDIDATE, encoding="utf-8")
    (root / "pkg" / "plain.py").write_text(PLAIN, encoding="utf-8")
    return root


def run(root: Path, config: Config | None = None, **options: object) -> LintResult:
    return lint_paths([root], config or Config(root=root), **options)  # type: ignore[arg-type]


def document_path(cache_dir: Path) -> Path:
    (document,) = cache_dir.glob("v*/*.json")
    return document


def plant_sentinel(cache_dir: Path, entry: str) -> None:
    document = document_path(cache_dir)
    data = json.loads(document.read_text(encoding="utf-8"))
    data["files"][entry][3] = [SENTINEL]
    document.write_text(json.dumps(data), encoding="utf-8")


def has_sentinel(result: LintResult) -> bool:
    return any(d.message == "planted by the test" for d in result.diagnostics)


def test_cache_lives_in_the_root_with_a_gitignore(project: Path) -> None:
    first = run(project)
    cache_dir = project / ".esper_lint_cache"
    assert (cache_dir / ".gitignore").read_text(encoding="utf-8").splitlines()[-1] == "*"
    assert (cache_dir / "CACHEDIR.TAG").exists()
    data = json.loads(document_path(cache_dir).read_text(encoding="utf-8"))
    assert data["magic"] == "esper-lint-cache" and data["format"] == 3
    assert sorted(data["files"]) == ["pkg/broken.py", "pkg/plain.py", "pkg/train.py"]
    assert run(project) == first


def test_a_hit_answers_without_recomputing(project: Path) -> None:
    run(project)
    plant_sentinel(project / ".esper_lint_cache", "pkg/train.py")
    assert has_sentinel(run(project))


def test_a_copied_file_is_answered_by_its_content_hash(project: Path) -> None:
    run(project)
    plant_sentinel(project / ".esper_lint_cache", "pkg/train.py")
    (project / "pkg" / "copy.py").write_text(CANDIDATE, encoding="utf-8")
    result = run(project)
    assert {d.path for d in result.diagnostics if d.message == "planted by the test"} == {
        str(project / "pkg" / "copy.py"),
        str(project / "pkg" / "train.py"),
    }


def test_changed_content_invalidates(project: Path) -> None:
    run(project)
    plant_sentinel(project / ".esper_lint_cache", "pkg/train.py")
    (project / "pkg" / "train.py").write_text(CANDIDATE + "\n", encoding="utf-8")
    assert not has_sentinel(run(project))


def test_same_size_rewrite_is_detected_even_with_trusted_signatures(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(esper_lint.cache, "RACY_WINDOW_NS", 0)  # trust every signature
    run(project)
    plant_sentinel(project / ".esper_lint_cache", "pkg/train.py")
    assert has_sentinel(run(project))  # the signature shortcut answers
    target = project / "pkg" / "train.py"
    before = target.stat()
    target.write_text(CANDIDATE.replace("slots", "items"), encoding="utf-8")
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))  # same size, same mtime
    assert target.stat().st_size == before.st_size
    assert not has_sentinel(run(project))  # ctime still moved


def test_tool_version_invalidates(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run(project)
    plant_sentinel(project / ".esper_lint_cache", "pkg/train.py")
    monkeypatch.setattr(esper_lint, "__version__", "99.0.0")
    assert not has_sentinel(run(project))


@pytest.mark.parametrize(
    "change",
    [
        {"extend_symmetric_calls": ("sync_alpha",)},
        {"extend_rank_sources": ("is_coordinator",)},
        {"extend_data_sources": ("stream",)},
        {"extend_sanitizers": ("sync_flag",)},
    ],
)
def test_analysis_configuration_invalidates(project: Path, change: dict[str, object]) -> None:
    run(project)
    plant_sentinel(project / ".esper_lint_cache", "pkg/train.py")
    assert not has_sentinel(run(project, Config(root=project, **change)))  # type: ignore[arg-type]
    assert has_sentinel(run(project))  # the original configuration's document is intact


def test_select_and_ignore_do_not_invalidate(project: Path) -> None:
    run(project, Config(root=project, ignore=("ESP001",)))
    plant_sentinel(project / ".esper_lint_cache", "pkg/train.py")
    assert not has_sentinel(run(project, Config(root=project, ignore=("ESP001",))))
    assert has_sentinel(run(project, Config(root=project, select=("ESP001",))))


GARBAGE = [
    b"",
    b"\x00\xff\xfe garbage",
    b'{"magic": "esper-lint-cache", "format": 1, "key": "',  # truncated
    b"[1, 2, 3]",
    b'{"magic": "someone-else", "format": 1, "files": {}}',
    b"[" * 100_000,  # deep nesting
]


@pytest.mark.parametrize("garbage", GARBAGE, ids=range(len(GARBAGE)))
def test_corrupt_documents_are_ignored_and_rebuilt(project: Path, garbage: bytes) -> None:
    expected = run(project, use_cache=False)
    run(project)
    document = document_path(project / ".esper_lint_cache")
    document.write_bytes(garbage)
    assert run(project) == expected
    assert json.loads(document.read_bytes())["magic"] == "esper-lint-cache"
    assert run(project) == expected


@pytest.mark.parametrize(
    "entry",
    [
        "not a list",
        [None, "ab", True, []],  # digest of the wrong length
        [None, "0" * 32, "yes", []],
        [None, "0" * 32, True, [[1, 2, 3]]],
        [None, "0" * 32, True, [["1", 1, 1, 1, "ESP001", "m"]]],
        [[1, 2, 3], "0" * 32, True, []],
        [[1, 2, 3, "4"], "0" * 32, True, []],
        [None, "0" * 32, True, [], "extra"],
    ],
)
def test_malformed_entries_are_ignored(project: Path, entry: object) -> None:
    expected = run(project, use_cache=False)
    run(project)
    document = document_path(project / ".esper_lint_cache")
    data = json.loads(document.read_text(encoding="utf-8"))
    data["files"] = {key: entry for key in data["files"]}
    document.write_text(json.dumps(data), encoding="utf-8")
    assert run(project) == expected


def test_a_foreign_key_is_not_trusted(project: Path) -> None:
    run(project)
    plant_sentinel(project / ".esper_lint_cache", "pkg/train.py")
    document = document_path(project / ".esper_lint_cache")
    data = json.loads(document.read_text(encoding="utf-8"))
    data["key"] = "0" * 24
    document.write_text(json.dumps(data), encoding="utf-8")
    assert not has_sentinel(run(project))


def test_no_cache_neither_reads_nor_writes(project: Path) -> None:
    run(project)
    plant_sentinel(project / ".esper_lint_cache", "pkg/train.py")
    assert not has_sentinel(run(project, use_cache=False))
    other = project.parent / "other"
    other.mkdir()
    (other / "a.py").write_text(CANDIDATE, encoding="utf-8")
    run(other, use_cache=False)
    assert not (other / ".esper_lint_cache").exists()


def test_environment_variable_moves_the_cache(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    moved = tmp_path / "elsewhere"
    monkeypatch.setenv(CACHE_DIR_ENV, str(moved))
    assert resolve_cache_dir(Config(root=project), None) == moved
    assert resolve_cache_dir(Config(root=project), tmp_path / "explicit") == tmp_path / "explicit"
    run(project)
    assert document_path(moved).exists()
    assert not (project / ".esper_lint_cache").exists()


def test_unwritable_cache_location_degrades_with_one_warning(project: Path) -> None:
    expected = run(project, use_cache=False)
    blocker = project.parent / "a-file"
    blocker.write_text("not a directory", encoding="utf-8")
    result = run(project, cache_dir=blocker / "cache")
    assert result.diagnostics == expected.diagnostics
    assert len(result.warnings) == 1
    assert "not writable" in result.warnings[0] and str(blocker / "cache") in result.warnings[0]


@pytest.fixture()
def read_only_directory(tmp_path: Path) -> Iterator[Path]:
    """A directory this process cannot write to.

    Permission bits don't stop root, so as root this is a sysfs directory, where even root
    can't create files; elsewhere it is a directory with mode 0o555.
    """
    if os.geteuid() != 0:
        directory = tmp_path / "read-only"
        directory.mkdir()
        directory.chmod(0o555)
        yield directory
        directory.chmod(0o755)
        return
    directory = Path("/sys/kernel")
    try:
        (directory / "esper-lint-probe").mkdir()
    except OSError:
        yield directory
        return
    (directory / "esper-lint-probe").rmdir()
    pytest.skip("no directory here is read-only for root")


def test_read_only_cache_directory_degrades_with_one_warning(
    project: Path, read_only_directory: Path
) -> None:
    expected = run(project, use_cache=False)
    before = sorted(os.listdir(read_only_directory))
    for _ in range(2):
        result = run(project, cache_dir=read_only_directory)
        assert result.diagnostics == expected.diagnostics
        assert len(result.warnings) == 1 and "not writable" in result.warnings[0]
    assert sorted(os.listdir(read_only_directory)) == before


CONCURRENT_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from esper_lint.config import Config
    from esper_lint.engine import lint_paths
    root = Path(sys.argv[1])
    outputs = []
    for _ in range(int(sys.argv[2])):
        result = lint_paths([root], Config(root=root), jobs=1)
        outputs.append([[d.path, d.line, d.column, d.code, d.message] for d in result.diagnostics])
    print(json.dumps(outputs))
    """
)


@pytest.mark.timeout(120)
def test_concurrent_runs_never_corrupt_results(project: Path) -> None:
    for index in range(12):
        text = CANDIDATE if index % 3 else BROKEN_CANDIDATE
        (project / "pkg" / f"extra_{index}.py").write_text(text + f"# {index}\n", encoding="utf-8")
    expected = [
        [d.path, d.line, d.column, d.code, d.message]
        for d in run(project, use_cache=False).diagnostics
    ]
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", CONCURRENT_SCRIPT, str(project), "5"],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for process in processes:
        stdout, _ = process.communicate(timeout=100)
        assert process.returncode == 0
        assert all(output == expected for output in json.loads(stdout))
    assert json.loads(document_path(project / ".esper_lint_cache").read_bytes())["files"]


def test_entry_keys_are_relative_to_the_root(project: Path, tmp_path: Path) -> None:
    cache = Cache(tmp_path / "c", Config(root=project))
    assert cache.entry_key(project / "pkg" / "train.py") == os.path.join("pkg", "train.py")
    assert cache.entry_key(tmp_path / "outside.py") == str(tmp_path / "outside.py")


def test_cleanup_never_touches_files_esper_lint_did_not_write(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = tmp_path / "shared-cache"
    foreign = shared / "othertool" / "data.json"
    stale_own = shared / "v0.0.1" / ("0" * 24 + ".json")
    for path in (foreign, stale_own):
        path.parent.mkdir(parents=True)
        path.write_text("{}", encoding="utf-8")
        os.utime(path, (0, 0))
    monkeypatch.setenv(CACHE_DIR_ENV, str(shared))
    run(project)
    assert foreign.exists()
    assert not stale_own.exists()


def test_entries_of_deleted_files_leave_the_document(project: Path) -> None:
    extra = project / "gone.py"
    extra.write_text("import torch.distributed as dist\ndist.barrier()\n", encoding="utf-8")
    run(project)
    cache_dir = project / ".esper_lint_cache"
    assert "gone.py" in json.loads(document_path(cache_dir).read_text(encoding="utf-8"))["files"]
    extra.unlink()
    (project / "new.py").write_text("x = 1\n", encoding="utf-8")
    run(project)
    files = json.loads(document_path(cache_dir).read_text(encoding="utf-8"))["files"]
    assert "gone.py" not in files and "new.py" in files


def chained_project(root: Path, trainers: int) -> Path:
    """Trainers that all reach ``pkg/comm.py``'s collective through the same two modules."""
    files = {
        "pyproject.toml": "",
        "pkg/__init__.py": "",
        "pkg/comm.py": "import torch.distributed as dist\ndef sync():\n    dist.barrier()\n",
        "pkg/mid.py": "from pkg.comm import sync\ndef sync_all():\n    sync()\n",
        "pkg/top.py": "from pkg.mid import sync_all\ndef finish():\n    sync_all()\n",
    }
    for index in range(trainers):
        files[f"train{index}.py"] = (
            "from pkg.top import finish\ndef end(rank):\n    if rank == 0:\n        finish()\n"
        )
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root


def test_files_with_the_same_dependencies_share_one_stored_set(tmp_path: Path) -> None:
    root = chained_project(tmp_path / "project", trainers=4)
    cold = run(root)
    assert [d.code for d in cold.diagnostics] == ["ESP004"] * 4
    data = json.loads(document_path(root / ".esper_lint_cache").read_text(encoding="utf-8"))
    groups = {data["files"][f"train{index}.py"][4] for index in range(4)}
    assert len(groups) == 1
    (group,) = groups
    named = sorted(data["dependencies"][index][0] for index in data["groups"][group])
    assert [os.path.relpath(path, root) for path in named] == [
        os.path.join("pkg", name) for name in ("comm.py", "mid.py", "top.py")
    ]
    assert len(data["dependencies"]) == len({tuple(pair) for pair in data["dependencies"]})
    plant_sentinel(root / ".esper_lint_cache", "train3.py")
    assert has_sentinel(run(root))  # the shared set still answers
    (root / "pkg" / "comm.py").write_text("def sync():\n    pass\n", encoding="utf-8")
    assert run(root).diagnostics == []  # and is invalidated for every file that names it


def _pair_of(data: dict[str, Any], group: int) -> list[object]:
    return data["dependencies"][data["groups"][group][0]]  # type: ignore[no-any-return]


# Each damages the table where the group named by train1.py's entry (the second argument) reads.
TABLE_DAMAGE: dict[str, Callable[[dict[str, Any], int], object]] = {
    "group index out of range": lambda data, group: data.update(groups=[]),
    "groups not a list": lambda data, group: data.update(groups="groups"),
    "empty group": lambda data, group: data["groups"].__setitem__(group, []),
    "group not a list": lambda data, group: data["groups"].__setitem__(group, 3),
    "pair index out of range": lambda data, group: data["groups"][group].append(10**6),
    "pair index not an int": lambda data, group: data["groups"][group].append("0"),
    "pair index a bool": lambda data, group: data["groups"][group].append(True),
    "bad digest": lambda data, group: _pair_of(data, group).__setitem__(1, "x"),
    "pair not a list": lambda data, group: data["dependencies"].__setitem__(
        data["groups"][group][0], "p"
    ),
    "no pairs": lambda data, group: data.pop("dependencies"),
}


@pytest.mark.parametrize("damage", TABLE_DAMAGE.values(), ids=TABLE_DAMAGE.keys())
def test_a_malformed_dependency_table_is_not_trusted(
    tmp_path: Path, damage: Callable[[dict[str, Any], int], object]
) -> None:
    root = chained_project(tmp_path / "project", trainers=2)
    expected = run(root, use_cache=False)
    run(root)
    plant_sentinel(root / ".esper_lint_cache", "train1.py")
    document = document_path(root / ".esper_lint_cache")
    data = json.loads(document.read_text(encoding="utf-8"))
    damage(data, data["files"]["train1.py"][4])
    document.write_text(json.dumps(data), encoding="utf-8")
    assert run(root) == expected
    assert run(root) == expected  # rewritten whole


def test_a_document_too_large_to_read_back_is_not_written(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(esper_lint.cache, "MAX_DOCUMENT_BYTES", 100)
    result = run(project)
    assert result.diagnostics == run(project, use_cache=False).diagnostics
    assert any("cache not written" in warning and "MiB" in warning for warning in result.warnings)
    assert not list((project / ".esper_lint_cache").glob("v*/*.json"))


# An import cycle entered from three places: linting model.py walks it with model.py's summary
# unknown, summarising model.py first (as a worker that checks train.py does) walks it from the
# top. The two summaries of model.py differ.
CYCLE = {
    "pyproject.toml": "",
    "pkg/__init__.py": "",
    "pkg/peft.py": (
        "import torch.distributed as dist\n\nfrom pkg.model import build\n\n\n"
        "class Mixin:\n    def sync(self):\n        dist.barrier()\n\n\n"
        "def load():\n    return build()\n"
    ),
    "pkg/model.py": (
        "import torch.distributed as dist\n\nfrom pkg.u1 import helper as first\n"
        "from pkg.u2 import helper as second\nfrom pkg.peft import Mixin\n\n\n"
        "def build():\n    first()\n    second()\n    dist.barrier()\n\n\n"
        "class Model(Mixin):\n    def run(self):\n        build()\n"
    ),
    "train.py": (
        "from pkg.model import Model\n\n\ndef end(rank):\n    if rank == 0:\n"
        "        Model().run()\n"
    ),
}
for _helper in ("u1", "u2"):
    CYCLE[f"pkg/{_helper}.py"] = (
        "import torch.distributed as dist\n\nfrom pkg.model import build\n\n\n"
        "def helper():\n    build()\n    dist.barrier()\n"
    )


def _write_cycle(root: Path) -> Path:
    for name, text in CYCLE.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root


def test_every_process_records_the_same_digest_for_a_module_in_a_cycle(tmp_path: Path) -> None:
    from esper_lint import engine

    root = _write_cycle(tmp_path / "project")
    config = Config(root=root)
    recorded = []
    for first in (["pkg/model.py"], []):  # two pool workers: one lints model.py first
        engine._projects.clear()
        engine._source_digests.clear()
        for name in [*first, "train.py"]:
            engine._check_one((root / name).read_bytes(), str(root / name), config, str(root))
        project = engine.project_at(str(root), config)
        recorded.append(dict(engine._dependencies(project, root / "train.py")))
    engine._projects.clear()
    engine._source_digests.clear()
    model = str(root / "pkg" / "model.py")
    assert model in recorded[0]
    assert recorded[0] == recorded[1]


def test_the_modules_of_an_import_cycle_share_one_dependency_list(tmp_path: Path) -> None:
    # Each lists every module of the cycle, itself included: in a large connected project
    # (transformers) thousands of files then share a few lists instead of building their own.
    from esper_lint import engine

    root = _write_cycle(tmp_path / "project")
    config = Config(root=root)
    engine._projects.clear()
    engine._source_digests.clear()
    cycle = ["pkg/model.py", "pkg/peft.py", "pkg/u1.py", "pkg/u2.py"]
    for name in [*cycle, "train.py"]:
        engine._check_one((root / name).read_bytes(), str(root / name), config, str(root))
    project = engine.project_at(str(root), config)
    lists = [engine._dependencies(project, root / name) for name in cycle]
    outside = engine._dependencies(project, root / "train.py")
    engine._projects.clear()
    engine._source_digests.clear()
    assert all(found is lists[0] for found in lists)
    assert sorted(dict(lists[0])) == sorted(str(root / name) for name in cycle)
    assert outside == lists[0]  # train.py, outside the cycle, depends on all of it too

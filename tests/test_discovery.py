"""Which files the engine lints: skipped tool directories, excludes, symlinks, odd entries."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from esper_lint.discovery import Discovery, discover


def touch(path: Path, text: str = "x = 1\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def found(root: Path, paths: list[Path] | None = None, exclude: tuple[str, ...] = ()) -> Discovery:
    return discover(paths if paths is not None else [root], exclude, root)


def relative(result: Discovery, root: Path) -> list[str]:
    return [f.path.relative_to(root).as_posix() for f in result.files]


def test_recurses_into_py_and_pyi_only_in_sorted_order(tmp_path: Path) -> None:
    for name in ("b.py", "a.pyi", "pkg/z.py", "pkg/sub/y.py", "notes.txt", "setup.cfg", "c.pyc"):
        touch(tmp_path / name)
    assert relative(found(tmp_path), tmp_path) == ["a.pyi", "b.py", "pkg/sub/y.py", "pkg/z.py"]


@pytest.mark.parametrize(
    "directory",
    [".git", "__pycache__", "build", "dist", ".esper_lint_cache", ".tox", ".nox", ".mypy_cache",
     "node_modules", ".venv", "venv", "env", "deep/er/build"],
)  # fmt: skip
def test_skips_tool_and_environment_directories(tmp_path: Path, directory: str) -> None:
    touch(tmp_path / directory / "hidden.py")
    touch(tmp_path / "kept.py")
    assert relative(found(tmp_path), tmp_path) == ["kept.py"]


def test_skips_any_virtualenv_by_its_pyvenv_cfg(tmp_path: Path) -> None:
    touch(tmp_path / "py311" / "pyvenv.cfg", "home = /usr/bin\n")
    touch(tmp_path / "py311" / "lib" / "site.py")
    touch(tmp_path / "src" / "kept.py")
    assert relative(found(tmp_path), tmp_path) == ["src/kept.py"]


def test_exclude_patterns_are_gitignore_style(tmp_path: Path) -> None:
    for name in (
        "src/model.py",
        "src/model_pb2.py",  # basename glob at any depth
        "src/generated/x.py",  # anchored directory
        "other/generated/kept.py",  # same name, different place
        "legacy/old.py",  # directory-only pattern
        "app/migrations/0001.py",  # ** pattern
        "app/views.py",
    ):
        touch(tmp_path / name)
    touch(tmp_path / "legacy.py")  # a file: the directory-only pattern doesn't apply
    exclude = ("*_pb2.py", "src/generated", "legacy/", "**/migrations/*.py")
    assert relative(found(tmp_path, exclude=exclude), tmp_path) == [
        "app/views.py",
        "legacy.py",
        "other/generated/kept.py",
        "src/model.py",
    ]


def test_explicit_paths_are_linted_even_when_excluded(tmp_path: Path) -> None:
    touch(tmp_path / "tests" / "fixtures" / "case.py")
    generated = touch(tmp_path / "gen_pb2.py")
    script = touch(tmp_path / "tool")  # a script without suffix, as pre-commit passes it
    exclude = ("tests/fixtures", "*_pb2.py")
    assert relative(found(tmp_path, exclude=exclude), tmp_path) == []
    explicit = found(tmp_path, [tmp_path / "tests" / "fixtures", generated, script], exclude)
    assert relative(explicit, tmp_path) == ["tests/fixtures/case.py", "gen_pb2.py", "tool"]


def test_explicit_directory_children_still_honour_excludes(tmp_path: Path) -> None:
    touch(tmp_path / "pkg" / "a.py")
    touch(tmp_path / "pkg" / "a_pb2.py")
    touch(tmp_path / "pkg" / "build" / "b.py")
    assert relative(found(tmp_path, [tmp_path / "pkg"], ("*_pb2.py",)), tmp_path) == ["pkg/a.py"]


def test_relative_paths_are_displayed_as_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    touch(tmp_path / "pkg" / "a.py")
    monkeypatch.chdir(tmp_path)
    assert [str(f.path) for f in discover([Path(".")], (), tmp_path).files] == [
        os.path.join("pkg", "a.py")
    ]
    assert [str(f.path) for f in discover([], (), tmp_path).files] == [os.path.join("pkg", "a.py")]


def test_a_file_given_twice_is_linted_once(tmp_path: Path) -> None:
    module = touch(tmp_path / "a.py")
    assert len(found(tmp_path, [module, module, tmp_path]).files) == 1


def test_symlink_loop_to_an_ancestor_warns_and_terminates(tmp_path: Path) -> None:
    touch(tmp_path / "pkg" / "a.py")
    os.symlink(tmp_path, tmp_path / "pkg" / "back")
    result = found(tmp_path)
    assert relative(result, tmp_path) == ["pkg/a.py"]
    assert len(result.warnings) == 1 and "symlink loop" in result.warnings[0]


def test_self_referencing_symlink_warns(tmp_path: Path) -> None:
    os.symlink(tmp_path / "loop.py", tmp_path / "loop.py")
    touch(tmp_path / "a.py")
    result = found(tmp_path)
    assert relative(result, tmp_path) == ["a.py"]
    assert result.warnings == [f"{tmp_path / 'loop.py'}: symlink loop, skipped"]


def test_broken_symlink_warns_and_is_skipped(tmp_path: Path) -> None:
    os.symlink(tmp_path / "missing.py", tmp_path / "dangling.py")
    touch(tmp_path / "a.py")
    result = found(tmp_path)
    assert relative(result, tmp_path) == ["a.py"]
    assert result.warnings == [f"{tmp_path / 'dangling.py'}: broken symlink, skipped"]


def test_symlinked_directory_is_followed_once(tmp_path: Path) -> None:
    touch(tmp_path / "real" / "a.py")
    os.symlink(tmp_path / "real", tmp_path / "zlink")
    result = found(tmp_path)
    assert relative(result, tmp_path) == ["real/a.py"]
    assert result.warnings == []
    assert relative(found(tmp_path, [tmp_path / "zlink"]), tmp_path) == ["zlink/a.py"]


def test_symlinked_file_is_linted(tmp_path: Path) -> None:
    target = touch(tmp_path / "data" / "impl.txt")
    os.symlink(target, tmp_path / "alias.py")
    assert relative(found(tmp_path), tmp_path) == ["alias.py"]


def test_a_directory_named_like_a_module_is_a_directory(tmp_path: Path) -> None:
    touch(tmp_path / "x.py" / "inner.py")
    (tmp_path / "empty.py").mkdir()
    result = found(tmp_path)
    assert relative(result, tmp_path) == ["x.py/inner.py"]
    assert relative(found(tmp_path, [tmp_path / "empty.py"]), tmp_path) == []
    assert result.warnings == []


@pytest.mark.timeout(10)
def test_fifo_is_skipped_with_a_warning_and_never_opened(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.py")
    touch(tmp_path / "a.py")
    result = found(tmp_path)
    assert relative(result, tmp_path) == ["a.py"]
    assert result.warnings == [f"{tmp_path / 'pipe.py'}: not a regular file, skipped"]
    explicit = found(tmp_path, [tmp_path / "pipe.py"])
    assert explicit.files == [] and len(explicit.warnings) == 1


def test_missing_explicit_path_is_reported(tmp_path: Path) -> None:
    result = found(tmp_path, [tmp_path / "nope.py"])
    assert result.files == []
    assert result.missing == [(tmp_path / "nope.py", "No such file or directory")]


def test_stat_is_recorded_for_the_cache(tmp_path: Path) -> None:
    module = touch(tmp_path / "a.py", "abc\n")
    (source,) = found(tmp_path).files
    assert source.stat is not None and source.stat.st_size == 4
    assert source.path == module

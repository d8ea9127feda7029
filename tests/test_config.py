"""Loading, validating and applying [tool.esper-lint]."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from esper_lint.config import Config, ConfigError, load_config, parse_code_list


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def load_pyproject(tmp_path: Path, body: str) -> Config:
    write(tmp_path / "pyproject.toml", body)
    return load_config(cwd=tmp_path)


def config_error(tmp_path: Path, body: str) -> str:
    with pytest.raises(ConfigError) as raised:
        load_pyproject(tmp_path, body)
    return str(raised.value)


# --- where the configuration comes from -------------------------------------------------------


def test_nearest_pyproject_walking_up_sets_values_and_root(tmp_path: Path) -> None:
    write(
        tmp_path / "pyproject.toml",
        '[tool.esper-lint]\nselect = ["ESP001"]\nextend-rank-sources = ["is_coordinator"]\n',
    )
    nested = tmp_path / "src" / "pkg"
    nested.mkdir(parents=True)

    config = load_config(cwd=nested)

    assert config.select == ("ESP001",)
    assert config.extend_rank_sources == ("is_coordinator",)
    assert config.root == tmp_path.resolve()


def test_a_file_rewritten_in_the_same_process_is_read_again(tmp_path: Path) -> None:
    """The parsed document is kept by its bytes, not by its stat: a rewrite of the same size
    within the file system's timestamp granularity still counts."""
    pyproject = tmp_path / "pyproject.toml"
    write(pyproject, '[tool.esper-lint]\nselect = ["ESP001"]\n')
    assert load_config(cwd=tmp_path).select == ("ESP001",)
    stat = pyproject.stat()
    write(pyproject, '[tool.esper-lint]\nselect = ["ESP002"]\n')
    os.utime(pyproject, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert load_config(cwd=tmp_path).select == ("ESP002",)


def test_a_pyproject_without_the_table_is_passed_over_as_ruff_does(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", '[tool.esper-lint]\nignore = ["ESP002"]\n')
    write(tmp_path / "sub" / "pyproject.toml", '[project]\nname = "sub"\n')

    config = load_config(cwd=tmp_path / "sub")

    assert config.ignore == ("ESP002",)
    assert config.root == tmp_path.resolve()


def test_the_nearest_configuration_wins_over_a_farther_one(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", '[tool.esper-lint]\nignore = ["ESP002"]\n')
    write(tmp_path / "sub" / "pyproject.toml", "[tool.esper-lint]\n")

    config = load_config(cwd=tmp_path / "sub")

    assert config.ignore == ()
    assert config.root == (tmp_path / "sub").resolve()


def test_no_pyproject_gives_defaults_rooted_at_cwd(tmp_path: Path) -> None:
    assert not any((p / "pyproject.toml").exists() for p in (tmp_path, *tmp_path.parents))

    config = load_config(cwd=tmp_path)

    assert config == Config(root=tmp_path.resolve())


def test_all_keys_are_read(tmp_path: Path) -> None:
    config = load_pyproject(
        tmp_path,
        """
[tool.esper-lint]
select = ["ESP00"]
ignore = ["ESP004"]
extend-symmetric-calls = ["sync_alpha"]
extend-rank-sources = ["is_coordinator"]
extend-data-sources = ["shards"]
extend-sanitizers = ["all_reduce_mean"]
exclude = ["legacy"]

[tool.esper-lint.per-file-ignores]
"tests/*.py" = ["ESP001", "ESP002"]
""",
    )

    assert config == Config(
        select=("ESP00",),
        ignore=("ESP004",),
        extend_symmetric_calls=("sync_alpha",),
        extend_rank_sources=("is_coordinator",),
        extend_data_sources=("shards",),
        extend_sanitizers=("all_reduce_mean",),
        exclude=("legacy",),
        per_file_ignores=(("tests/*.py", ("ESP001", "ESP002")),),
        root=tmp_path.resolve(),
    )


def test_config_option_accepts_a_dedicated_toml_with_top_level_keys(tmp_path: Path) -> None:
    dedicated = write(tmp_path / "conf" / "esper-lint.toml", 'ignore = ["ESP003"]\n')
    write(tmp_path / "pyproject.toml", '[tool.esper-lint]\nignore = ["ESP001"]\n')

    config = load_config(dedicated, cwd=tmp_path)

    assert config.ignore == ("ESP003",)
    assert config.root == (tmp_path / "conf").resolve()


def test_config_option_accepts_a_pyproject(tmp_path: Path) -> None:
    other = write(tmp_path / "other" / "pyproject.toml", '[tool.esper-lint]\nignore = ["ESP3"]\n')

    with pytest.raises(ConfigError, match="'ignore': unknown code 'ESP3'"):
        load_config(other, cwd=tmp_path)
    write(other, '[tool.esper-lint]\nignore = ["ESP003"]\n')
    assert load_config(other, cwd=tmp_path).ignore == ("ESP003",)


def test_missing_config_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="nope.toml: cannot read"):
        load_config(tmp_path / "nope.toml")


# --- errors: each names the file and the key or line ------------------------------------------


@pytest.mark.parametrize(
    ("body", "line"),
    [
        ('[tool.esper-lint]\nselect = ["ESP001"\nignore = []\n', "line 3, column 1"),
        ('[tool.esper-lint]\nselect = [\n  "ESP001",\n', "at end of document, line 4"),
        ("[tool.esper-lint\n", "line 1"),
    ],
)
def test_invalid_toml_names_file_and_line(tmp_path: Path, body: str, line: str) -> None:
    message = config_error(tmp_path, body)

    assert message.startswith(f"{tmp_path / 'pyproject.toml'}: invalid TOML: ")
    assert line in message


def test_unknown_key_is_named_with_a_suggestion(tmp_path: Path) -> None:
    message = config_error(tmp_path, '[tool.esper-lint]\nselct = ["ESP001"]\n')

    assert "unknown key 'selct'" in message
    assert "did you mean 'select'?" in message
    assert str(tmp_path / "pyproject.toml") in message


def test_snake_case_key_suggests_the_dashed_one(tmp_path: Path) -> None:
    message = config_error(tmp_path, "[tool.esper-lint]\nper_file_ignores = {}\n")

    assert "unknown key 'per_file_ignores' (did you mean 'per-file-ignores'?)" in message


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('select = "ESP001"', "'select' must be a list of strings, got a string"),
        ("exclude = [1, 2]", "'exclude' must be a list of strings, got a list containing an int"),
        ("extend-data-sources = true", "'extend-data-sources' must be a list of strings"),
        ('per-file-ignores = ["x"]', "'per-file-ignores' must be a table"),
        (
            'per-file-ignores = { "a.py" = "ESP001" }',
            "'per-file-ignores.\"a.py\"' must be a list of strings, got a string",
        ),
    ],
)
def test_wrong_type_names_key_and_expected_type(tmp_path: Path, body: str, expected: str) -> None:
    assert expected in config_error(tmp_path, f"[tool.esper-lint]\n{body}\n")


def test_tool_section_that_is_not_a_table(tmp_path: Path) -> None:
    message = config_error(tmp_path, '[tool]\nesper-lint = "on"\n')

    assert "[tool.esper-lint] must be a table, got a string" in message


@pytest.mark.parametrize(
    ("body", "key", "code"),
    [
        ('select = ["ESP999"]', "select", "ESP999"),
        ('ignore = ["ESP001", "E501"]', "ignore", "E501"),
        ('select = ["ESP5"]', "select", "ESP5"),
        ('select = [""]', "select", ""),
        ('per-file-ignores = { "t/*.py" = ["ESP0011"] }', 'per-file-ignores."t/*.py"', "ESP0011"),
    ],
)
def test_unknown_code_names_key_and_code(tmp_path: Path, body: str, key: str, code: str) -> None:
    message = config_error(tmp_path, f"[tool.esper-lint]\n{body}\n")

    assert f"'{key}': unknown code '{code}'" in message


@pytest.mark.parametrize(
    ("body", "key", "entry"),
    [
        ('extend-data-sources = [""]', "extend-data-sources", "''"),
        ('extend-data-sources = ["shard", "shard iter"]', "extend-data-sources", "'shard iter'"),
        ('extend-data-sources = ["train.loader"]', "extend-data-sources", "'train.loader'"),
        ('extend-symmetric-calls = ["a b", "("]', "extend-symmetric-calls", "'a b'"),
        ('extend-symmetric-calls = ["sync", "("]', "extend-symmetric-calls", "'('"),
        ('extend-symmetric-calls = ["obj.sync"]', "extend-symmetric-calls", "'obj.sync'"),
        ('extend-rank-sources = [""]', "extend-rank-sources", "''"),
        ('extend-sanitizers = ["utils.reduce"]', "extend-sanitizers", "'utils.reduce'"),
        ('extend-sanitizers = ["mean", ""]', "extend-sanitizers", "''"),
        ('extend-rank-sources = ["2nd_rank"]', "extend-rank-sources", "'2nd_rank'"),
        ('extend-rank-sources = ["is_coordinator()"]', "extend-rank-sources", "'is_coordinator()'"),
    ],
)
def test_extend_entries_that_are_not_names_are_rejected(
    tmp_path: Path, body: str, key: str, entry: str
) -> None:
    message = config_error(tmp_path, f"[tool.esper-lint]\n{body}\n")

    assert message.startswith(f"{tmp_path / 'pyproject.toml'}: [tool.esper-lint]: ")
    assert f"'{key}': invalid entry {entry}" in message


def test_extend_entries_are_checked_in_a_dedicated_file_too(tmp_path: Path) -> None:
    dedicated = write(tmp_path / "esper-lint.toml", 'extend-data-sources = ["ok", ""]\n')

    with pytest.raises(ConfigError) as raised:
        load_config(dedicated, cwd=tmp_path)

    assert str(raised.value).startswith(f"{dedicated}: 'extend-data-sources': invalid entry ''")


def test_extend_entries_that_are_names_or_name_parts_are_accepted(tmp_path: Path) -> None:
    config = load_pyproject(
        tmp_path,
        """
[tool.esper-lint]
extend-symmetric-calls = ["sync_alpha", "_tick", "étape"]
extend-rank-sources = ["is_coordinator", "Rank2"]
extend-data-sources = ["shard", "2d_tiles", "_iter", "Stream"]
""",
    )

    assert config.extend_symmetric_calls == ("sync_alpha", "_tick", "étape")
    assert config.extend_rank_sources == ("is_coordinator", "Rank2")
    assert config.extend_data_sources == ("shard", "2d_tiles", "_iter", "Stream")


@pytest.mark.parametrize("prefix", ["ESP", "ESP0", "ESP00", "ESP001", "ESP9", "ESP90", "ESP902"])
def test_code_prefixes_matching_known_codes_are_valid(tmp_path: Path, prefix: str) -> None:
    assert load_pyproject(tmp_path, f'[tool.esper-lint]\nselect = ["{prefix}"]\n').select == (
        prefix,
    )


# --- select / ignore / per-file-ignores -------------------------------------------------------


def test_select_restricts_codes_but_esp9xx_is_always_selected(tmp_path: Path) -> None:
    config = Config(select=("ESP001",), root=tmp_path)

    assert config.enabled("ESP001", "a.py")
    assert not config.enabled("ESP002", "a.py")
    assert config.enabled("ESP900", "a.py")
    assert config.enabled("ESP902", "a.py")


def test_ignore_drops_codes_including_esp9xx(tmp_path: Path) -> None:
    config = Config(ignore=("ESP00", "ESP901"), root=tmp_path)

    assert not config.enabled("ESP003", "a.py")
    assert not config.enabled("ESP901", "a.py")
    assert config.enabled("ESP900", "a.py")


def test_per_file_ignores_apply_to_matching_files_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    config = Config(per_file_ignores=(("tests/*.py", ("ESP001",)),), root=tmp_path)

    assert not config.enabled("ESP001", "tests/test_x.py")
    assert config.enabled("ESP002", "tests/test_x.py")
    assert config.enabled("ESP001", "src/x.py")
    # `*` does not cross directories.
    assert config.enabled("ESP001", "tests/deep/test_x.py")


def test_per_file_ignores_globs_are_relative_to_the_root_not_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "project" / "scripts").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "project" / "scripts")
    config = Config(per_file_ignores=(("scripts/*.py", ("ESP",)),), root=tmp_path / "project")

    assert not config.enabled("ESP001", "launch.py")
    assert not config.enabled("ESP001", str(tmp_path / "project" / "scripts" / "launch.py"))
    assert config.enabled("ESP001", str(tmp_path / "elsewhere" / "scripts" / "launch.py"))


@pytest.mark.parametrize(
    ("pattern", "path", "ignored"),
    [
        ("__init__.py", "pkg/sub/__init__.py", True),
        ("__init__.py", "pkg/sub/init.py", False),
        ("legacy", "legacy/old/train.py", True),
        ("legacy/", "legacy/train.py", True),
        ("**/examples/*.py", "a/b/examples/run.py", True),
        ("**/examples/*.py", "examples/run.py", True),
        ("**/examples/*.py", "a/examples/deep/run.py", False),
        ("src/**", "src/a/b/c.py", True),
        ("train_?.py", "train_1.py", True),
        ("train_[!0-4].py", "train_7.py", True),
        ("train_[!0-4].py", "train_3.py", False),
        ("./src/*.py", "src/a.py", True),
    ],
)
def test_per_file_ignore_glob_forms(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pattern: str, path: str, ignored: bool
) -> None:
    monkeypatch.chdir(tmp_path)
    config = Config(per_file_ignores=((pattern, ("ESP001",)),), root=tmp_path)

    assert config.enabled("ESP001", path) is not ignored


def test_cli_select_replaces_the_config_selection_and_its_ignores(tmp_path: Path) -> None:
    config = Config(select=("ESP001",), ignore=("ESP002",), root=tmp_path)

    overridden = config.with_overrides(("ESP00",), None)

    assert overridden.select == ("ESP00",)
    assert overridden.enabled("ESP002", "a.py")
    assert overridden.enabled("ESP003", "a.py")


def test_cli_ignore_adds_to_the_config_ignores(tmp_path: Path) -> None:
    config = Config(ignore=("ESP002",), root=tmp_path)

    overridden = config.with_overrides(None, ("ESP003",))

    assert overridden.select == ("ESP",)
    assert not overridden.enabled("ESP002", "a.py")
    assert not overridden.enabled("ESP003", "a.py")
    assert overridden.enabled("ESP001", "a.py")


def test_parse_code_list_normalises_and_validates() -> None:
    assert parse_code_list("--select", " esp001, ESP002 ,,") == ("ESP001", "ESP002")
    with pytest.raises(ConfigError, match="--ignore: unknown code 'ESP7'"):
        parse_code_list("--ignore", "ESP001,ESP7")


def test_a_leading_slash_anchors_a_per_file_ignore_at_the_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    config = Config(per_file_ignores=(("/scripts/x.py", ("ESP",)),), root=tmp_path)

    assert not config.enabled("ESP004", "scripts/x.py")
    assert config.enabled("ESP004", "src/scripts/x.py")


def test_src_entries_are_relative_to_their_own_file_even_when_inherited(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", '[tool.esper-lint]\nsrc = ["src", "../shared"]\n')
    write(tmp_path / "app" / "esper-lint.toml", 'extend = "../pyproject.toml"\n')

    config = load_config(cwd=tmp_path / "app")

    assert config.root == (tmp_path / "app").resolve()
    assert config.source_roots == (
        (tmp_path / "src").resolve(),
        (tmp_path.parent / "shared").resolve(),
    )
    assert load_config(cwd=tmp_path.parent).source_roots == (tmp_path.parent.resolve(),)

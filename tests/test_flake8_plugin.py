"""The flake8 plugin, through the real flake8."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from esper_lint import __version__
from esper_lint.flake8_plugin import encode_lines

VIOLATION = """\
import torch.distributed as dist


def train(slot):
    if dist.get_rank() == 0:
        slot.step_epoch()
"""


def flake8(*args: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flake8", "--isolated", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_flake8_registers_the_plugin(tmp_path: Path) -> None:
    completed = flake8("--version", cwd=tmp_path)

    assert f"esper-lint: {__version__}" in completed.stdout


def test_flake8_reports_esp_codes(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text(VIOLATION, encoding="utf-8")

    completed = flake8("--select", "ESP", "train.py", cwd=tmp_path)

    assert completed.returncode == 1, completed.stderr
    (line,) = completed.stdout.splitlines()
    assert line.startswith("train.py:6:9: ESP001 slot.step_epoch() may not run on every rank")


def test_flake8_noqa_and_extend_ignore(tmp_path: Path) -> None:
    source = VIOLATION.replace("slot.step_epoch()", "slot.step_epoch()  # noqa: ESP001")
    (tmp_path / "quiet.py").write_text(source, encoding="utf-8")
    (tmp_path / "train.py").write_text(VIOLATION, encoding="utf-8")

    assert flake8("--select", "ESP", "quiet.py", cwd=tmp_path).stdout == ""
    assert flake8("--select", "ESP", "--extend-ignore", "ESP001", ".", cwd=tmp_path).stdout == ""


def test_flake8_reads_stdin(tmp_path: Path) -> None:
    completed = flake8(
        "--select", "ESP", "--stdin-display-name", "t.py", "-", cwd=tmp_path, stdin=VIOLATION
    )

    assert completed.stdout.startswith("t.py:6:9: ESP001 ")


def test_flake8_reads_the_analysis_settings_from_pyproject(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.esper-lint]\nextend-symmetric-calls = ["sync_alpha"]\n', encoding="utf-8"
    )
    source = "def f(ctl, rank):\n    if rank == 0:\n        ctl.sync_alpha()\n"
    (tmp_path / "custom.py").write_text(source, encoding="utf-8")

    completed = flake8("--select", "ESP", "custom.py", cwd=tmp_path)

    assert completed.stdout.startswith("custom.py:3:9: ESP001 ")


@pytest.mark.parametrize(
    "lines",
    [
        ["# -*- coding: latin-1 -*-\n", "name = 'caf\u00e9'\n"],
        ["name = 'caf\u00e9'\n"],
        ["# coding: utf-8\n", "x = '\u2603'\n"],
    ],
)
def test_encode_lines_round_trips_through_the_declared_encoding(lines: list[str]) -> None:
    import libcst

    module = libcst.parse_module(encode_lines(lines))

    assert module.code == "".join(lines)


def test_a_broken_configuration_is_a_warning_not_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.esper-lint]\nselect = ["ESP9999"]\n')
    (tmp_path / "train.py").write_text(VIOLATION, encoding="utf-8")

    completed = flake8("--select", "ESP", "train.py", cwd=tmp_path)

    assert "Traceback" not in completed.stderr
    assert "esper-lint: warning:" in completed.stderr and "ESP9999" in completed.stderr
    assert completed.stdout.startswith("train.py:6:9: ESP001")


EVERY_KEY_PROJECT = {
    "pyproject.toml": """\
[tool.esper-lint]
select = ["ESP00"]
extend-select = ["ESP100"]
ignore = ["ESP002"]
extend-symmetric-calls = ["sync_alpha"]
extend-rank-sources = ["is_coordinator"]
extend-data-sources = ["shards"]
exclude = ["legacy"]
extend-exclude = ["*_pb2.py"]
respect-gitignore = true
force-exclude = false

[tool.esper-lint.per-file-ignores]
"tests/*.py" = ["ESP004"]
""",
    "trainer/esper-lint.toml": 'extend = "../pyproject.toml"\nignore = ["ESP003"]\n',
    "train.py": """\
import torch.distributed as dist


def step(slot, is_coordinator, shards, rank):
    if is_coordinator:
        slot.sync_alpha()
    for shard in shards:
        slot.step_epoch()
    if rank == 0:
        dist.barrier()  # noqa: ESP004
    x = 1  # noqa: ESP001
""",
    "tests/test_x.py": "import torch.distributed as dist\nif dist.get_rank() == 0:\n"
    "    dist.barrier()\n    dist.get_rank() == 0 and slot.step_epoch()\n",
    "legacy/old.py": VIOLATION,
    "api_pb2.py": VIOLATION,
    "trainer/loop.py": """\
import torch.distributed as dist


def end(slot, rank):
    if rank != 0:
        return
    slot.step_epoch()
    if rank == 0:
        slot.step_epoch()
""",
}


def test_flake8_and_the_cli_agree_on_a_config_using_every_key(tmp_path: Path) -> None:
    for name, text in EVERY_KEY_PROJECT.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    esper_lint = str(Path(sys.executable).with_name("esper-lint"))

    cli = subprocess.run(
        [esper_lint, "-n", "--output-format", "concise", "-q"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    plugin = subprocess.run(
        [sys.executable, "-m", "flake8", "--select", "ESP", "."],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )

    def findings(output: str) -> list[str]:
        return sorted(
            ":".join((line.removeprefix("./").split(":")[0], line.split(" ")[1]))
            for line in output.splitlines()
        )

    expected = [
        "tests/test_x.py:ESP001",
        "train.py:ESP001",
        "train.py:ESP100",
        "trainer/loop.py:ESP001",
    ]
    assert findings(cli.stdout) == expected, cli.stdout + cli.stderr
    assert findings(plugin.stdout) == expected, plugin.stdout + plugin.stderr


def test_a_broken_nested_configuration_is_one_warning_not_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.esper-lint]\n", encoding="utf-8")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "esper-lint.toml").write_text("select = 3\n", encoding="utf-8")
    (tmp_path / "sub" / "train.py").write_text(VIOLATION, encoding="utf-8")

    completed = subprocess.run(
        [sys.executable, "-m", "flake8", "--select", "ESP", "sub/train.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert "Traceback" not in completed.stderr
    assert "'select' must be a list of strings" in completed.stderr
    assert "ESP001" in completed.stdout  # the defaults still apply

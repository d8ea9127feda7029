"""SARIF output, validated against the official SARIF 2.1.0 JSON schema.

tests/data/sarif-schema-2.1.0.json is the OASIS schema (sarif-spec repository,
Schemata/sarif-schema-2.1.0.json, the errata01 version).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from esper_lint import __version__, rule_url
from esper_lint.cli import main
from esper_lint.diagnostics import Diagnostic
from esper_lint.report import render
from esper_lint.rules import ALL_RULES, known_codes

SCHEMA_PATH = Path(__file__).parent / "data" / "sarif-schema-2.1.0.json"

VIOLATION = """\
import torch.distributed as dist


def train(slot):
    if dist.get_rank() == 0:
        slot.step_epoch()
"""


@pytest.fixture(scope="module")
def validator() -> Any:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft4Validator.check_schema(schema)
    return jsonschema.Draft4Validator(
        schema, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER
    )


def sarif(diagnostics: list[Diagnostic], root: Path) -> dict[str, Any]:
    log: dict[str, Any] = json.loads(render("sarif", diagnostics, root=root))
    return log


def test_the_stored_schema_is_the_official_one() -> None:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))

    assert schema["id"].startswith("https://docs.oasis-open.org/sarif/sarif/v2.1.0/")
    assert schema["properties"]["version"]["enum"] == ["2.1.0"]


def test_schema_rejects_a_broken_log(validator: Any) -> None:
    # Guards the guard: a validator that accepts anything would make the tests below vacuous.
    log = sarif([], Path.cwd())
    del log["runs"][0]["tool"]["driver"]["name"]

    assert not validator.is_valid(log)


def test_empty_run_is_valid(validator: Any, tmp_path: Path) -> None:
    log = sarif([], tmp_path)

    validator.validate(log)
    assert log["version"] == "2.1.0"
    assert log["runs"][0]["results"] == []


def test_results_use_relative_uris_against_srcroot(
    validator: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path / "..")
    inside = str(Path(tmp_path.name) / "src" / "my train.py")  # relative to the cwd
    outside = str(tmp_path.parent / "elsewhere.py")
    diagnostics = [
        Diagnostic(inside, 6, 9, 6, 26, "ESP001", "slot.step_epoch() may not run on every rank"),
        Diagnostic(outside, 1, 1, 1, 1, "ESP902", "file could not be read: Permission denied"),
    ]

    log = sarif(diagnostics, tmp_path)

    validator.validate(log)
    run = log["runs"][0]
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"] == tmp_path.resolve().as_uri() + "/"
    results = {result["ruleId"]: result for result in run["results"]}
    first, second = results["ESP001"], results["ESP902"]
    assert first["level"] == "error"
    assert first["message"]["text"] == "slot.step_epoch() may not run on every rank"
    location = first["locations"][0]["physicalLocation"]
    assert location["artifactLocation"] == {"uri": "src/my%20train.py", "uriBaseId": "%SRCROOT%"}
    assert location["region"] == {"startLine": 6, "startColumn": 9, "endLine": 6, "endColumn": 26}
    # A file outside the project root cannot be relative to it: absolute file URI.
    artifact = second["locations"][0]["physicalLocation"]["artifactLocation"]
    assert artifact == {"uri": Path(outside).as_uri()}


def test_driver_describes_every_rule(validator: Any, tmp_path: Path) -> None:
    driver = sarif([], tmp_path)["runs"][0]["tool"]["driver"]

    assert driver["name"] == "esper-lint"
    assert driver["version"] == __version__
    assert driver["informationUri"].startswith("https://")
    assert [rule["id"] for rule in driver["rules"]] == list(known_codes())
    for descriptor, rule in zip(driver["rules"], ALL_RULES, strict=True):
        assert descriptor["name"] == rule.name
        assert descriptor["shortDescription"]["text"] == rule.summary
        assert descriptor["fullDescription"]["text"]
        assert descriptor["helpUri"] == rule_url(rule.code)
        assert descriptor["help"]["markdown"] == rule.markdown()


def test_result_rule_index_points_at_its_rule(tmp_path: Path) -> None:
    log = sarif([Diagnostic("a.py", 1, 1, 1, 2, "ESP004", "m")], tmp_path)
    run = log["runs"][0]
    result = run["results"][0]

    assert run["tool"]["driver"]["rules"][result["ruleIndex"]]["id"] == "ESP004"


def test_cli_sarif_end_to_end(
    validator: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.esper-lint]\n", encoding="utf-8")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "train.py").write_text(VIOLATION, encoding="utf-8")
    monkeypatch.chdir(tmp_path / "src")

    code = main(["--output-format", "sarif", "--no-cache", "."])

    log = json.loads(capsys.readouterr().out)
    validator.validate(log)
    assert code == 1
    (result,) = log["runs"][0]["results"]
    assert result["ruleId"] == "ESP001"
    location = result["locations"][0]["physicalLocation"]
    # Relative to the project root (the pyproject's directory), not to the cwd.
    assert location["artifactLocation"] == {"uri": "src/train.py", "uriBaseId": "%SRCROOT%"}
    assert location["region"]["startLine"] == 6
    assert location["region"]["startColumn"] == 9

"""docs/rules/ is generated from the rule classes; the committed pages must not be stale."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from esper_lint.rules import ALL_RULES

REPO_ROOT = Path(__file__).resolve().parent.parent
DOCS_RULES = REPO_ROOT / "docs" / "rules"
MKDOCS_YML = REPO_ROOT / "mkdocs.yml"
GENERATOR = REPO_ROOT / "scripts" / "gen_rule_docs.py"
REGENERATE = "run `python scripts/gen_rule_docs.py` and commit docs/rules/ and mkdocs.yml"


@pytest.fixture(scope="module")
def gen() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_rule_docs", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_rule_has_a_committed_page_and_an_index_row() -> None:
    assert ALL_RULES, "no rules registered"
    index = (DOCS_RULES / "index.md").read_text(encoding="utf-8")
    nav = MKDOCS_YML.read_text(encoding="utf-8")
    for rule in ALL_RULES:
        assert (DOCS_RULES / f"{rule.code}.md").is_file(), f"no page for {rule.code}: {REGENERATE}"
        assert f"[{rule.code}]({rule.code}.md)" in index, f"{rule.code} not in index: {REGENERATE}"
        assert f"rules/{rule.code}.md" in nav, f"{rule.code} not in mkdocs nav: {REGENERATE}"


def test_committed_rule_docs_are_up_to_date(gen: ModuleType) -> None:
    stale = gen.stale_files(ALL_RULES, DOCS_RULES, MKDOCS_YML)
    assert stale == [], f"stale: {[str(p.relative_to(REPO_ROOT)) for p in stale]}; {REGENERATE}"


def test_the_implicit_collectives_table_in_the_configuration_docs_is_up_to_date(
    gen: ModuleType,
) -> None:
    configuration = REPO_ROOT / "docs" / "configuration.md"
    assert not gen.stale_configuration(configuration), REGENERATE
    text = configuration.read_text(encoding="utf-8")
    assert "| Accelerator.save_state (accelerate) |" in text


def test_each_page_is_the_rule_markdown(gen: ModuleType) -> None:
    for rule in ALL_RULES:
        page = (DOCS_RULES / f"{rule.code}.md").read_text(encoding="utf-8")
        assert f"# {rule.code}: {rule.name}" in page
        # The page is the same text as `esper-lint rule CODE`, bar whitespace at line ends.
        assert [line.rstrip() for line in rule.markdown().strip().splitlines()] == [
            line.rstrip() for line in page.split("-->", 1)[1].strip().splitlines()
        ]


def test_check_mode_fails_on_stale_docs_and_passes_after_regeneration(tmp_path: Path) -> None:
    docs_dir = tmp_path / "rules"
    shutil.copytree(DOCS_RULES, docs_dir)
    mkdocs_yml = tmp_path / "mkdocs.yml"
    shutil.copy2(MKDOCS_YML, mkdocs_yml)
    first = ALL_RULES[0].code
    edited = docs_dir / f"{first}.md"
    edited.write_text(edited.read_text(encoding="utf-8") + "\nA hand edit.\n", encoding="utf-8")
    (docs_dir / "ESP999.md").write_text("# a rule that no longer exists\n", encoding="utf-8")
    (docs_dir / "index.md").unlink()

    def run(*extra: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, str(GENERATOR), "--docs-dir", str(docs_dir)]
        command += ["--mkdocs-yml", str(mkdocs_yml), *extra]
        return subprocess.run(command, capture_output=True, text=True, check=False)

    check = run("--check")
    assert check.returncode == 1
    for name in (f"{first}.md", "ESP999.md", "index.md"):
        assert name in check.stderr, check.stderr

    assert run().returncode == 0
    assert not (docs_dir / "ESP999.md").exists()
    assert run("--check").returncode == 0, run("--check").stderr
    for page in DOCS_RULES.glob("*.md"):
        assert (docs_dir / page.name).read_text(encoding="utf-8") == page.read_text(
            encoding="utf-8"
        )


def test_generated_nav_lists_every_rule_once(gen: ModuleType) -> None:
    mkdocs_text = MKDOCS_YML.read_text(encoding="utf-8")
    emptied = gen.with_generated_nav(mkdocs_text, [])
    regenerated = gen.with_generated_nav(emptied, ALL_RULES)
    assert regenerated == mkdocs_text
    for rule in ALL_RULES:
        assert regenerated.count(f"rules/{rule.code}.md") == 1

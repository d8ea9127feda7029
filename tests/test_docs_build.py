"""The documentation site builds with `mkdocs build --strict` (mkdocs-material)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import esper_lint

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("material", reason="mkdocs-material is in the dev extra")
    site_dir = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site_dir)],
        cwd=REPO_ROOT,
        # Quiet mkdocs-material's end-of-life banner; warnings still fail the strict build.
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return site_dir


@pytest.mark.slow
def test_strict_build_renders_every_page(site: Path) -> None:
    from esper_lint.rules import ALL_RULES

    pages = ["", "installation/", "configuration/", "integration/", "rules/"]
    pages += ["runtime/", "performance/", "reliability/"]
    pages += [f"rules/{rule.code}/" for rule in ALL_RULES]
    for page in pages:
        assert (site / page / "index.html").is_file(), f"missing page: {page or 'home'}"


@pytest.mark.slow
def test_rule_pages_live_where_diagnostics_link(site: Path) -> None:
    # Diagnostics and SARIF point at esper_lint.rule_url(code): the site must serve them there.
    site_url = _site_url()
    assert site_url == esper_lint.DOCS_URL
    for page in (site / "rules").glob("ESP*/index.html"):
        code = page.parent.name
        assert esper_lint.rule_url(code) == f"{site_url}rules/{code}/"
        assert code in page.read_text(encoding="utf-8")


def test_docs_home_repeats_the_readme_quickstart() -> None:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("<!-- quickstart -->", 1)[1].split("<!-- /quickstart -->", 1)[0]
    commands = [line for line in block.splitlines() if line.startswith("$ ")]
    assert len(commands) == 2, block
    home = (REPO_ROOT / "docs" / "index.md").read_text(encoding="utf-8")
    for command in commands:
        assert command in home, f"docs/index.md lacks the README command {command!r}"


def _site_url() -> str:
    for line in (REPO_ROOT / "mkdocs.yml").read_text(encoding="utf-8").splitlines():
        if line.startswith("site_url:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError("mkdocs.yml has no site_url")

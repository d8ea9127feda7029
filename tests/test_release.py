"""The release convention: the changelog has a section for the version a tag would carry."""

from __future__ import annotations

import re
from pathlib import Path

from esper_lint import __version__

REPO_ROOT = Path(__file__).resolve().parent.parent


def test_changelog_has_unreleased_and_the_current_version() -> None:
    changelog = (REPO_ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    headings = re.findall(r"^## \[([^\]]+)\]", changelog, flags=re.MULTILINE)

    assert headings[0] == "Unreleased"
    assert __version__ in headings


def test_the_docs_pin_the_current_release_tag() -> None:
    installation = (REPO_ROOT / "docs" / "installation.md").read_text(encoding="utf-8")

    assert f"rev: v{__version__}" in installation
    assert f"git+https://github.com/OWNER/esper-lint@v{__version__}" in installation
    assert "pip install ." in installation

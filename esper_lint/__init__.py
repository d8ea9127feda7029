"""esper-lint: find lifecycle calls and collectives that may not run on every DDP rank."""

__version__ = "0.1.0"

DOCS_URL = "https://esper-lint.readthedocs.io/en/latest/"


def rule_url(code: str) -> str:
    """The documentation page of one rule."""
    return f"{DOCS_URL}rules/{code}/"

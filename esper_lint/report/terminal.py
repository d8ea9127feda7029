"""When to colour, and the few ANSI styles the human formats use."""

from __future__ import annotations

from collections.abc import Mapping

BOLD = "\x1b[1m"
RED = "\x1b[31m"
CYAN = "\x1b[36m"
BLUE = "\x1b[34m"
RESET = "\x1b[0m"


def use_color(is_tty: bool, environ: Mapping[str, str]) -> bool:
    """Colour on a terminal, following https://no-color.org and https://force-color.org.

    Precedence, as in CPython 3.13's ``_colorize`` and rich: a non-empty ``NO_COLOR`` always
    wins; otherwise a non-empty ``FORCE_COLOR`` turns colour on even when not writing to a
    terminal; otherwise colour only on a terminal whose ``TERM`` is not ``dumb``.
    """
    if environ.get("NO_COLOR"):
        return False
    if environ.get("FORCE_COLOR"):
        return True
    return is_tty and environ.get("TERM") != "dumb"


def style(text: str, *codes: str, enabled: bool) -> str:
    if not enabled or not codes:
        return text
    return f"{''.join(codes)}{text}{RESET}"

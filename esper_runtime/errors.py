"""Errors raised by the runtime guard.

Both exceptions pickle cleanly (their only constructor argument is the message and extra
attributes live in ``__dict__``), so they survive the trip back from a spawned rank.
"""

from __future__ import annotations


class DesyncError(RuntimeError):
    """Ranks are out of step: they did not make the same slot calls in the same order."""


class DesyncTimeout(DesyncError):
    """A rank did not arrive at a guarded sync within the timeout (stuck, crashed or skipped it).

    ``missing_ranks`` lists the ranks known not to have arrived, or that the watchdog's verdict
    names (stopped heartbeating, finished, exited or unwrapped; empty when unknown), and
    ``call`` names the guarded call that was waited on.
    """

    def __init__(
        self, message: str, *, missing_ranks: tuple[int, ...] = (), call: str = ""
    ) -> None:
        super().__init__(message)
        self.missing_ranks = missing_ranks
        self.call = call

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_timeout, (str(self), self.missing_ranks, self.call))


def _rebuild_timeout(message: str, missing_ranks: tuple[int, ...], call: str) -> DesyncTimeout:
    return DesyncTimeout(message, missing_ranks=missing_ranks, call=call)

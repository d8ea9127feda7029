"""esper_runtime: a runtime guard that keeps seed slots in step across DDP ranks.

``guard = wrap_slots(model)`` patches every slot's ``step_epoch``/``advance_stage`` so that each
call is checked across ranks (one fingerprint ``all_gather`` on a dedicated gloo group) and,
after ``step_epoch``, every rank adopts rank ``src``'s controller state (one tensor broadcast).
A desync raises :class:`DesyncError`; a rank that never arrives makes the others raise
:class:`DesyncTimeout` within the timeout instead of hanging.
"""

from .adapters import SeedSlotAdapter, SlotAdapter
from .errors import DesyncError, DesyncTimeout
from .guard import SlotGuard, wrap_slots

__all__ = [
    "DesyncError",
    "DesyncTimeout",
    "SeedSlotAdapter",
    "SlotAdapter",
    "SlotGuard",
    "wrap_slots",
]

"""esper_runtime: a runtime guard that keeps seed slots in step across DDP ranks.

``guard = wrap_slots(model)`` patches every slot's ``step_epoch``/``advance_stage`` so that each
call is checked across ranks (one fingerprint ``all_gather`` on a dedicated gloo group) and,
after ``step_epoch``, every rank adopts rank ``src``'s controller state (one tensor broadcast).
Consecutive wrapped ``slot.step_epoch()`` calls coalesce into one sync. A desync raises
:class:`DesyncError`; a rank that never arrives makes the others raise :class:`DesyncTimeout`
within the timeout instead of hanging. The first rank to know writes a verdict to the store, and
a watchdog thread on every rank delivers it, also to ranks blocked in DDP's all-reduce.
``install_comm_hook(ddp, guard)`` also checks the slots at every backward, inside DDP's own
gradient all-reduce.
"""

from .adapters import SeedSlotAdapter, SlotAdapter
from .comm_hook import SlotCheckHook, install_comm_hook
from .errors import DesyncError, DesyncTimeout
from .guard import EsperRuntimeWarning, GuardStats, SlotGuard, wrap_slots

__all__ = [
    "DesyncError",
    "DesyncTimeout",
    "EsperRuntimeWarning",
    "GuardStats",
    "SeedSlotAdapter",
    "SlotAdapter",
    "SlotCheckHook",
    "SlotGuard",
    "install_comm_hook",
    "wrap_slots",
]

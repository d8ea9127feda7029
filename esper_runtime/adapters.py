"""Reading and writing slot state as a fixed-length vector of numbers.

The guard never touches slot internals itself: an adapter tells it what a slot is, what stage
it is in, and how to turn its controller state into floats and back. ``SeedSlotAdapter``
handles Esper's ``SeedSlot`` shape (and :class:`esper_runtime.testing.ReferenceSlot`) by duck
typing, without importing Esper. Other slot classes plug in with their own adapter.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

__all__ = ["CONTROLLER_FIELDS", "SeedSlotAdapter", "SlotAdapter"]

CONTROLLER_FIELDS = (
    "alpha",
    "alpha_start",
    "alpha_target",
    "alpha_mode",
    "alpha_curve",
    "alpha_steepness",
    "alpha_steps_total",
    "alpha_steps_done",
)


@runtime_checkable
class SlotAdapter(Protocol):
    """How the guard sees one kind of slot.

    ``read_state`` must return exactly ``state_size`` floats and be exact for every value it
    carries (float64 holds ints up to 2**53). ``write_state`` receives the source rank's vector
    and must make the slot equal to the source slot; it is only called when both slots hold a
    seed (the fingerprint check guarantees that ranks agree on that before any write).
    """

    @property
    def state_size(self) -> int: ...

    def is_slot(self, obj: object) -> bool: ...

    def stage(self, slot: Any) -> int | None:
        """The slot's stage as an int, or None when the slot holds no seed."""
        ...

    def stage_label(self, slot: Any, stage: int) -> str:
        """A readable name for ``stage`` (used in error tables)."""
        ...

    def read_state(self, slot: Any) -> Sequence[float]: ...

    def write_state(self, slot: Any, values: Sequence[float]) -> None: ...


class SeedSlotAdapter:
    """Adapter for Esper's ``SeedSlot`` shape.

    Vector layout: ``state.alpha`` followed by the eight controller fields in
    ``CONTROLLER_FIELDS`` order. Alpha is written through ``slot.set_alpha()`` so cached alpha
    tensors are dropped; enum fields are rebuilt with the slot's own enum class.
    """

    state_size = 1 + len(CONTROLLER_FIELDS)

    def is_slot(self, obj: object) -> bool:
        methods = ("step_epoch", "advance_stage", "set_alpha")
        return all(callable(getattr(obj, name, None)) for name in methods) and hasattr(obj, "state")

    def stage(self, slot: Any) -> int | None:
        state = slot.state
        return None if state is None else int(state.stage)

    def stage_label(self, slot: Any, stage: int) -> str:
        state = slot.state
        if stage < 0:
            return "empty"
        if state is not None and isinstance(state.stage, enum.IntEnum):
            try:
                return type(state.stage)(stage).name
            except ValueError:
                pass
        return str(stage)

    def read_state(self, slot: Any) -> list[float]:
        state = slot.state
        if state is None:
            return [0.0] * self.state_size
        controller = state.alpha_controller
        fields = [float(getattr(controller, name)) for name in CONTROLLER_FIELDS]
        return [float(state.alpha), *fields]

    def write_state(self, slot: Any, values: Sequence[float]) -> None:
        if len(values) != self.state_size:
            raise ValueError(f"expected {self.state_size} values, got {len(values)}")
        state = slot.state
        if state is None:
            return
        state_alpha, *controller_values = values
        controller = state.alpha_controller
        updates: dict[str, object] = {}
        for name, value in zip(CONTROLLER_FIELDS, controller_values, strict=True):
            converted = _like(getattr(controller, name), value)
            if name != "alpha" and getattr(controller, name) != converted:
                updates[name] = converted
        if updates:
            _assign_fields(state, controller, updates)
        if float(state.alpha) != state_alpha:
            slot.set_alpha(state_alpha)
        controller_alpha = controller_values[0]
        if float(state.alpha_controller.alpha) != controller_alpha:
            # The source slot's controller alpha differs from its state.alpha (not produced by
            # set_alpha); copy it as is so that every field matches the source.
            _assign_fields(state, state.alpha_controller, {"alpha": controller_alpha})


def _like(current: object, value: float) -> object:
    """Convert ``value`` to the type of the field it replaces."""
    if isinstance(current, enum.IntEnum):
        return type(current)(int(value))
    if isinstance(current, bool):
        return bool(value)
    if isinstance(current, int):
        return int(value)
    return float(value)


def _assign_fields(state: Any, controller: Any, updates: dict[str, object]) -> None:
    try:
        for name, value in updates.items():
            setattr(controller, name, value)
    except dataclasses.FrozenInstanceError:
        state.alpha_controller = dataclasses.replace(controller, **updates)

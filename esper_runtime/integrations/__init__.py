"""Integrations with training frameworks. Each submodule imports its framework on import.

- :mod:`esper_runtime.integrations.lightning`: ``EsperSlotsCallback``, a Lightning ``Callback``;
- :mod:`esper_runtime.integrations.accelerate`: ``prepare_slots`` and ``slot_epochs`` for
  Hugging Face accelerate loops.

Importing this package imports neither framework, so ``esper_runtime`` works without them.
"""

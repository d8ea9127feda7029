"""The training backends the implicit-collectives table distinguishes, by their config names.

Apart from ``implicit_collectives`` so that reading the configuration (``backends = [...]``)
does not build the whole table.
"""

DDP = "ddp"
DEEPSPEED = "deepspeed"
FSDP = "fsdp"
BACKENDS = (DDP, DEEPSPEED, FSDP)
BACKEND_TITLES = {DDP: "DDP", DEEPSPEED: "DeepSpeed", FSDP: "FSDP"}

"""The names that make a call symmetric, without importing libcst.

The engine's text prefilter needs these on every run, including runs that parse nothing, so they
live apart from the libcst-based resolution in ``symbols``.
"""

from __future__ import annotations

from esper_lint.analysis.implicit_collectives import prefilter_pairs, prefilter_words
from esper_lint.config import Config

LIFECYCLE_NAMES = frozenset({"step_epoch", "advance_stage"})

TORCH_DISTRIBUTED = "torch.distributed"
DIST_COLLECTIVES = frozenset(
    {
        "barrier",
        "monitored_barrier",
        "all_reduce",
        "reduce",
        "broadcast",
        "all_gather",
        "all_gather_into_tensor",
        "gather",
        "scatter",
        "reduce_scatter",
        "reduce_scatter_tensor",
        "all_to_all",
        "all_to_all_single",
        "broadcast_object_list",
        "all_gather_object",
        "gather_object",
        "scatter_object_list",
        "new_group",
        "new_subgroups",
        "new_subgroups_by_enumeration",
    }
)
ACCELERATE_UTILS = "accelerate.utils"
ACCELERATE_UTILS_COLLECTIVES = frozenset({"broadcast", "gather_object", "broadcast_object_list"})
# Methods distinctive enough to be collectives whatever the receiver is called.
ANY_RECEIVER_COLLECTIVES = frozenset({"wait_for_everyone", "gather_for_metrics"})
ACCELERATOR_COLLECTIVES = frozenset({"gather", "reduce", "wait_for_everyone", "gather_for_metrics"})
STRATEGY_COLLECTIVES = frozenset(
    {"barrier", "broadcast", "reduce", "all_gather", "reduce_boolean_decision"}
)
FABRIC_COLLECTIVES = frozenset({"barrier", "broadcast", "all_gather", "all_reduce"})
SELF_COLLECTIVES = frozenset({"all_gather"})  # LightningModule.all_gather
MPI4PY = "mpi4py"
# mpi4py's communicator methods that every rank of the communicator must call: the pickle-based
# lower-case ones and the buffer-based capitalised ones.
MPI_COLLECTIVES = frozenset(
    {
        "bcast",
        "Bcast",
        "allreduce",
        "Allreduce",
        "reduce",
        "Reduce",
        "gather",
        "Gather",
        "allgather",
        "Allgather",
        "scatter",
        "Scatter",
        "alltoall",
        "Alltoall",
        "barrier",
        "Barrier",
    }
)
# The part of a receiver's name that marks an mpi4py communicator (``comm``, ``self.comm``,
# ``MPI.COMM_WORLD``, ``world_comm``), in files that import mpi4py.
MPI_COMMUNICATOR_WORD = "comm"


# The final names of the process exits (``sys.exit``, ``os._exit``, ``exit``, ``quit``): one under
# rank control is ESP005 even in a file that makes no symmetric call.
PROCESS_EXIT_NAMES = frozenset({"exit", "_exit", "quit"})


def symmetric_call_names(config: Config) -> frozenset[str]:
    """Every bare name whose presence as a word makes a file worth parsing."""
    return (
        LIFECYCLE_NAMES
        | PROCESS_EXIT_NAMES
        | frozenset(config.extend_symmetric_calls)
        | DIST_COLLECTIVES
        | ACCELERATE_UTILS_COLLECTIVES
        | ACCELERATOR_COLLECTIVES
        | STRATEGY_COLLECTIVES
        | FABRIC_COLLECTIVES
        | SELF_COLLECTIVES
        | MPI_COLLECTIVES
        | prefilter_words(config.backends, config.extend_implicit_collectives)
    )


# Each family of collectives with the word through which ``symbols._is_collective`` can recognise
# it, and which a file holding one must therefore contain, in any case: torch.distributed (an
# import of it, or ``dist.`` unimported), accelerate.utils, an accelerator, a strategy or fabric
# receiver, an mpi4py import.
_FAMILY_CONTEXTS: tuple[tuple[frozenset[str], str], ...] = (
    (DIST_COLLECTIVES, "dist"),
    (ACCELERATE_UTILS_COLLECTIVES, "accelerate"),
    (ACCELERATOR_COLLECTIVES, "accelerator"),
    (STRATEGY_COLLECTIVES, "strategy"),
    (FABRIC_COLLECTIVES, "fabric"),
    (MPI_COLLECTIVES, MPI4PY),
)


def plain_call_names(config: Config) -> frozenset[str]:
    """The names of ``symmetric_call_names`` that make a file worth parsing on their own: those
    recognised whatever surrounds them (lifecycle calls, exits, configured names, the distinctive
    methods, the implicit collectives' words). The others count only with their family's word
    (``contextual_call_names``): ``gather`` alone is as likely ``torch.gather``."""
    contextual = frozenset().union(*(family for family, _word in _FAMILY_CONTEXTS))
    alone = (
        LIFECYCLE_NAMES
        | PROCESS_EXIT_NAMES
        | frozenset(config.extend_symmetric_calls)
        | ANY_RECEIVER_COLLECTIVES
        | SELF_COLLECTIVES
        | prefilter_words(config.backends, config.extend_implicit_collectives)
    )
    return (symmetric_call_names(config) - contextual) | alone


def contextual_call_names(config: Config) -> frozenset[tuple[str, str]]:
    """(name, family word) pairs for the collective names that ``plain_call_names`` leaves out."""
    alone = plain_call_names(config)
    return frozenset(
        (name, word) for family, word in _FAMILY_CONTEXTS for name in family if name not in alone
    )


def receiver_call_names(config: Config) -> frozenset[tuple[str, str]]:
    """(name, receiver part) pairs: a file that contains the name as a word and the receiver part
    anywhere, in any case, is worth parsing too (``accelerator.save_state()``: a file without
    ``accelerator`` cannot hold one, and ``save_state`` alone would not say so)."""
    return prefilter_pairs(config.backends, config.extend_implicit_collectives)

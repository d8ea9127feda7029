"""Which values depend on the rank, on data or on time: the sources, and how conditions read.

Values carry a small bit set ("taint"): RANK (differs across ranks), DATA (loss, metrics, tensors,
time, randomness: may differ across ranks), ITER (a DataLoader-like iterable, whose length may
differ across ranks) and UNIFORM (made the same on every rank by a reduction or broadcast). The
traversal in ``facts`` propagates the bits through expressions and assignments; this module only
says where they start and how a condition is shaped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

import libcst as cst

from esper_lint.analysis.sanitizers import Sanitizer, by_name
from esper_lint.analysis.sanitizers import configured as configured_sanitizers
from esper_lint.analysis.symbols import dotted_name, final_name
from esper_lint.analysis.tree import descendants
from esper_lint.config import Config

NONE = 0
RANK = 1
DATA = 2
ITER = 4
# The same on every rank: made so by a sanitiser (see ``values``). Only with neither RANK nor DATA.
UNIFORM = 8

RANK_NAMES = frozenset(
    {
        # conventional names and attributes
        "rank",
        "local_rank",
        "global_rank",
        "ddp_rank",
        "is_master",
        "master_process",
        "is_main",
        "is_main_process",
        # accelerate
        "is_local_main_process",
        "is_last_process",
        "process_index",
        "local_process_index",
        # Lightning
        "is_global_zero",
        "node_rank",
        # HF Trainer
        "is_world_process_zero",
        "is_local_process_zero",
    }
)
# mpi4py spells it `comm.Get_rank()`
RANK_CALLS = frozenset(
    {"get_rank", "get_node_local_rank", "get_group_rank", "get_global_rank", "Get_rank"}
)
# Called, a numeric name (`placement.rank()`) is somebody's rank; a flag is still this rank's.
RANK_FLAG_CALLS = frozenset(
    {
        "is_master",
        "master_process",
        "is_main",
        "is_main_process",
        "is_local_main_process",
        "is_last_process",
        "is_global_zero",
        "is_world_process_zero",
        "is_local_process_zero",
    }
)
# Numbers: truthy on every rank but rank 0.
NUMERIC_RANKS = (RANK_NAMES | RANK_CALLS) - RANK_FLAG_CALLS
RANK_ENV_VARS = frozenset(
    {"RANK", "LOCAL_RANK", "SLURM_PROCID", "SLURM_LOCALID", "NODE_RANK", "GROUP_RANK"}
)
DATA_NAME_SUBSTRINGS = ("loader", "batches", "dataset", "data_iter")
# Wrappers that keep the trip count of the iterable they wrap.
ITER_WRAPPERS = frozenset({"enumerate", "zip", "tqdm", "iter", "islice", "reversed", "chain"})
TIME_CALLS = frozenset(
    {"time", "perf_counter", "monotonic", "time_ns", "perf_counter_ns", "monotonic_ns"}
)
RANDOM_MODULES = ("random", "np.random", "numpy.random")
# Words that name a measured value (loss, metrics) rather than configuration.
DATA_WORDS = frozenset(
    {"loss", "losses", "acc", "accuracy", "metric", "metrics", "score", "ppl", "perplexity"}
)
# Receivers whose attributes are configuration (`args.loss_type`, `cfg.max_loss`): the same on
# every rank, whatever their names say (a rank attribute, `args.local_rank`, is still the rank).
CONFIG_RECEIVERS = frozenset(
    {"args", "arguments", "config", "cfg", "conf", "opt", "opts", "hparams", "hp", "flags"}
    | {"settings", "training_args", "train_args", "train_config", "training_config"}
)
# torch functions whose result is not a measured value: metadata, and constructors and loaders
# whose values come from their arguments or from a file every rank reads (`torch.tensor(0.0)`,
# `torch.load(path)`); their arguments still carry their own bits.
NOT_DATA_TORCH_CALLS = frozenset(
    {"device", "dtype", "device_count", "is_available", "Size"}
    | {"tensor", "as_tensor", "zeros", "ones", "full", "arange", "linspace", "load"}
)
SYMMETRIC_TORCH_PREFIXES = (
    "torch.cuda.",
    "torch.distributed.",
    "torch.backends.",
    "torch.version.",
)


@dataclass(frozen=True)
class Sources:
    """The rank and data sources of one configuration."""

    rank_names: frozenset[str]
    rank_calls: frozenset[str]
    data_substrings: tuple[str, ...]
    # what makes a value the same on every rank, by call name (see ``sanitizers``)
    sanitizers: dict[str, tuple[Sanitizer, ...]] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: Config) -> Sources:
        extended = frozenset(config.extend_rank_sources)
        return cls(
            RANK_NAMES | RANK_CALLS | extended,
            RANK_CALLS | RANK_FLAG_CALLS | extended,
            DATA_NAME_SUBSTRINGS + tuple(s.lower() for s in config.extend_data_sources),
            by_name(configured_sanitizers(config.extend_sanitizers)),
        )

    def name_bits(self, name: str) -> int:
        """Bits of an unbound name or of an attribute's final name."""
        return (RANK if name in self.rank_names else NONE) | self._data_bits(name)

    def called_name_bits(self, name: str) -> int:
        """Bits of the name of what a call calls (``dist.get_rank``, ``trainer.is_global_zero``)."""
        return (RANK if name in self.rank_calls else NONE) | self._data_bits(name)

    def _data_bits(self, name: str) -> int:
        bits = NONE
        lowered = name.lower()
        if any(s in lowered for s in self.data_substrings):
            bits |= ITER
        if _is_data_word(lowered):
            bits |= DATA
        return bits

    def call_bits(self, func: cst.BaseExpression, qualified: str | None) -> int:
        """Bits a call produces by what it calls (its arguments are added by the caller)."""
        name = final_name(func)
        if qualified is not None:
            # `from torch.distributed import get_rank as current_rank`
            name = qualified.rpartition(".")[2]
        bits = NONE
        if name is not None:
            if name in self.rank_calls:
                bits |= RANK
            if "loader" in name.lower():
                bits |= ITER
        if name in ("item", "tolist") or (qualified is not None and _is_data_call(qualified, name)):
            bits |= DATA
        return bits


def is_config_receiver(node: cst.BaseExpression) -> bool:
    """``args``, ``self.config``, ``cfg.train``: a value read from the run's configuration."""
    name = final_name(node)
    return name is not None and name.lower() in CONFIG_RECEIVERS


def nondeterministic_source(qualified: str | None) -> str | None:
    """``"wall clock"`` for ``time.time``/``datetime.now``, ``"random"`` for ``random.*``,
    ``torch.rand*``, ``np.random.*``; else None. These differ across ranks whatever their inputs."""
    if qualified is None:
        return None
    module, _, name = qualified.rpartition(".")
    if (module == "time" and name in TIME_CALLS) or (
        module.endswith("datetime") and name in ("now", "utcnow")
    ):
        return "wall clock"
    if module in RANDOM_MODULES or (module == "torch" and name.startswith("rand")):
        return "random"
    return None


def _is_data_word(lowered: str) -> bool:
    return any(part in DATA_WORDS for part in lowered.split("_"))


def _is_data_call(qualified: str, name: str | None) -> bool:
    module = qualified.rpartition(".")[0]
    if module == "time" and name in TIME_CALLS:
        return True
    if module.endswith("datetime") and name in ("now", "utcnow"):
        return True
    if module in RANDOM_MODULES:
        return True
    if qualified.startswith("torch.") and not qualified.startswith(SYMMETRIC_TORCH_PREFIXES):
        # tensors: their values are data
        return name not in NOT_DATA_TORCH_CALLS
    return False


def env_var_bits(node: cst.BaseExpression) -> int:
    """RANK for ``os.environ["RANK"]``, ``os.environ.get("RANK")``, ``os.getenv("RANK")``."""
    if isinstance(node, cst.Subscript):
        if final_name(node.value) == "environ" and len(node.slice) == 1:
            index = node.slice[0].slice
            if isinstance(index, cst.Index) and _string_value(index.value) in RANK_ENV_VARS:
                return RANK
        return NONE
    if isinstance(node, cst.Call) and node.args:
        func = dotted_name(node.func)
        if func is None:
            return NONE
        if func.endswith("environ.get") or func.rpartition(".")[2] == "getenv":
            if _string_value(node.args[0].value) in RANK_ENV_VARS:
                return RANK
    return NONE


def reads_rank(
    node: cst.CSTNode, sources: Sources, name_bits: Callable[[str], int] | None = None
) -> bool:
    """Whether anything in ``node`` reads the rank: a name (``name_bits``, default the sources'
    own table), an attribute, a rank environment variable or a rank call."""
    bits_of_name = name_bits or sources.name_bits
    for current in descendants(node):
        if isinstance(current, cst.Name) and bits_of_name(current.value) & RANK:
            return True
        if isinstance(current, cst.Attribute) and sources.name_bits(current.attr.value) & RANK:
            return True
        if isinstance(current, (cst.Call, cst.Subscript)) and env_var_bits(current):
            return True
        if isinstance(current, cst.Call) and sources.call_bits(current.func, None) & RANK:
            return True
    return False


def _string_value(node: cst.BaseExpression) -> str | None:
    if not isinstance(node, cst.SimpleString):
        return None
    try:
        value = node.evaluated_value
    except (SyntaxError, ValueError):  # `"\x"`, `"\N{NO SUCH NAME}"`: not an env var's name
        return None
    return value if isinstance(value, str) else None


def is_minus_one(node: cst.BaseExpression) -> bool:
    return (
        isinstance(node, cst.UnaryOperation)
        and isinstance(node.operator, cst.Minus)
        and isinstance(node.expression, cst.Integer)
        and node.expression.value == "1"
    )


def is_distributed_mode_check(node: cst.Comparison) -> bool:
    """Whether a rank is set at all, not which one: the same answer on every rank of a DDP job.

    ``local_rank == -1``, ``!= -1``, ``> -1``, ``<= -1``, ``>= 0``, ``< 0``, either side.
    """
    if len(node.comparisons) != 1:
        return False
    operator, constant = node.comparisons[0].operator, node.comparisons[0].comparator
    if is_minus_one(node.left) or _is_zero(node.left):
        operator, constant = _mirror(operator), node.left
    if is_minus_one(constant):
        return isinstance(
            operator,
            (cst.Equal, cst.NotEqual, cst.Is, cst.IsNot, cst.GreaterThan, cst.LessThanEqual),
        )
    return _is_zero(constant) and isinstance(operator, (cst.GreaterThanEqual, cst.LessThan))


class Polarity(Enum):
    """Which ranks a condition selects, relative to its subject."""

    ZERO = "zero"
    NONZERO = "nonzero"


def condition_polarity(
    test: cst.BaseExpression,
    is_symmetric: Callable[[cst.BaseExpression], bool] = lambda _: False,
) -> tuple[str, Polarity] | None:
    """(subject, polarity) of a rank test, to recognise complementary "rank 0 first" pairs.

    ``rank == 0``, ``rank in (-1, 0)``, ``is_main``, ``not rank`` select rank 0; their negations
    select the other ranks. A bare subject is read by its name: a number (``rank``) is true on
    the other ranks, anything else (``is_main``, ``is_last_process``) is a flag.
    In ``rank != 0 and not evaluate``, one conjunct is the rank test and the others, when
    ``is_symmetric`` says they are the same on every rank, join the subject as written.
    """
    if isinstance(test, cst.BooleanOperation) and isinstance(test.operator, cst.And):
        return _conjunction_polarity(test, is_symmetric)
    if isinstance(test, cst.UnaryOperation) and isinstance(test.operator, cst.Not):
        inner = condition_polarity(test.expression)
        if inner is None:
            return None
        subject, polarity = inner
        flipped = Polarity.NONZERO if polarity is Polarity.ZERO else Polarity.ZERO
        return subject, flipped
    bare = dotted_name(test) or _call_subject(test)
    if bare is not None:
        return bare, _truthiness_polarity(bare)
    if isinstance(test, cst.Comparison) and len(test.comparisons) == 1:
        return _comparison_polarity(test)
    return None


def _conjunction_polarity(
    test: cst.BooleanOperation, is_symmetric: Callable[[cst.BaseExpression], bool]
) -> tuple[str, Polarity] | None:
    conjuncts = _conjuncts(test)
    ranked = [conjunct for conjunct in conjuncts if not is_symmetric(conjunct)]
    if len(ranked) != 1:
        return None
    shape = condition_polarity(ranked[0])
    if shape is None:
        return None
    empty = cst.Module(body=[])
    texts = [" ".join(empty.code_for_node(c).split()) for c in conjuncts if c is not ranked[0]]
    subject, polarity = shape
    return " and ".join([subject, *texts]), polarity


def _conjuncts(test: cst.BaseExpression) -> list[cst.BaseExpression]:
    if isinstance(test, cst.BooleanOperation) and isinstance(test.operator, cst.And):
        return [*_conjuncts(test.left), *_conjuncts(test.right)]  # parentheses change nothing
    return [test]


def _truthiness_polarity(subject: str) -> Polarity:
    # Any other name is read as a flag: `x` and `not x` still pair with each other, and only a
    # known number (`rank`) is true on the other ranks, so `not rank` pairs with `rank != 0`.
    name = subject.removesuffix("()").rpartition(".")[2]
    return Polarity.NONZERO if name in NUMERIC_RANKS else Polarity.ZERO


def _call_subject(test: cst.BaseExpression) -> str | None:
    if isinstance(test, cst.Call) and not test.args:
        func = dotted_name(test.func)
        return f"{func}()" if func is not None else None
    return None


def _comparison_polarity(test: cst.Comparison) -> tuple[str, Polarity] | None:
    target = test.comparisons[0]
    left, right, op = test.left, target.comparator, target.operator
    if _is_zero(left) and not _is_zero(right):
        left, right = right, left
        op = _mirror(op)
    subject = dotted_name(left) or _call_subject(left)
    if subject is None:
        return None
    if _is_zero(right):
        if isinstance(op, (cst.Equal, cst.Is, cst.LessThanEqual)):
            return subject, Polarity.ZERO
        if isinstance(op, (cst.NotEqual, cst.IsNot, cst.GreaterThan)):
            return subject, Polarity.NONZERO
    if isinstance(right, cst.Integer) and right.value == "1":
        if isinstance(op, cst.LessThan):
            return subject, Polarity.ZERO
        if isinstance(op, cst.GreaterThanEqual):
            return subject, Polarity.NONZERO
    if isinstance(right, (cst.Tuple, cst.List, cst.Set)) and any(
        _is_zero(element.value) for element in right.elements
    ):
        if isinstance(op, cst.In):
            return subject, Polarity.ZERO
        if isinstance(op, cst.NotIn):
            return subject, Polarity.NONZERO
    return None


def _is_zero(node: cst.BaseExpression) -> bool:
    return isinstance(node, cst.Integer) and node.value == "0"


def _mirror(op: cst.BaseCompOp) -> cst.BaseCompOp:
    if isinstance(op, cst.LessThan):
        return cst.GreaterThan()
    if isinstance(op, cst.GreaterThan):
        return cst.LessThan()
    if isinstance(op, cst.LessThanEqual):
        return cst.GreaterThanEqual()
    if isinstance(op, cst.GreaterThanEqual):
        return cst.LessThanEqual()
    return op

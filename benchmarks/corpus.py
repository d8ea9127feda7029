"""Generate a realistic training-codebase corpus for the lint speed benchmark.

Shapes found in a real DDP training package: model modules (``nn.Module`` classes with
docstrings), data pipelines, configuration dataclasses, metrics and logging utilities, tests.
A fraction of files (``candidate_ratio``) are training loops that drive seed slots and collectives
under rank checks: those mention symmetric calls, the rest never do. Deterministic for a seed.

    python benchmarks/corpus.py OUT_DIR [--files 640] [--lines 210000] [--every-file-candidate]
        [--cross-imports]
    python benchmarks/corpus.py OUT_DIR --esper-shaped --lines 211000   # issue 14's tree

With ``--cross-imports`` the corpus is a package (``__init__.py`` files) whose modules import each
other as real ones do: training loops call a collective helper and a rank test from
``trainpkg/utils/dist_helpers.py``, and about a third of the other modules import a sibling
module (``from trainpkg.utils import utils_0003``), so whole-project analysis has imports to follow.

``generate_esper_shaped`` (``--esper-shaped``) builds a tree shaped like Esper's own: about 640
files and 211k lines, 13% of the files and 28% of the bytes parse candidates (``generate``'s
default gives 6% of the files; it is kept as it was so that older numbers stay reproducible).
"""

from __future__ import annotations

import argparse
import random
import shutil
from pathlib import Path

PACKAGES = ("models", "data", "training", "utils", "metrics", "configs", "tests", "scripts")
IMPORTS = (
    "import math",
    "import os",
    "import json",
    "import logging",
    "import time",
    "from dataclasses import dataclass, field",
    "from pathlib import Path",
    "from typing import Any, Optional",
    "import numpy as np",
    "import torch",
    "import torch.nn as nn",
    "import torch.nn.functional as F",
    "from torch.utils.data import DataLoader, Dataset",
)
WORDS = (
    "hidden", "embed", "proj", "norm", "scale", "bias", "weight", "head", "block", "layer",
    "token", "query", "key", "value", "mask", "alpha", "gate", "slot", "seed", "stage",
    "window", "stride", "kernel", "patch", "feature", "channel", "residual", "dropout",
)  # fmt: skip


def _name(rng: random.Random, parts: int = 2) -> str:
    return "_".join(rng.choice(WORDS) for _ in range(parts))


def _class_name(rng: random.Random) -> str:
    return "".join(rng.choice(WORDS).capitalize() for _ in range(2))


def _docstring(rng: random.Random, indent: str) -> list[str]:
    summary = f"Compute the {rng.choice(WORDS)} {rng.choice(WORDS)} of the input."
    body = [
        f'{indent}"""{summary}',
        "",
        f"{indent}Args:",
        f"{indent}    x: a tensor of shape (batch, {rng.choice(WORDS)}, {rng.choice(WORDS)}).",
        f"{indent}    {_name(rng)}: optional {rng.choice(WORDS)} override.",
        "",
        f"{indent}Returns:",
        f"{indent}    The transformed tensor, same dtype as the input.",
        f'{indent}"""',
    ]
    return body


def _method(rng: random.Random, indent: str) -> list[str]:
    name = _name(rng)
    lines = [f"{indent}def {name}(self, x: torch.Tensor, {_name(rng)}: int = 4) -> torch.Tensor:"]
    inner = indent + "    "
    lines += _docstring(rng, inner)
    for _ in range(rng.randint(3, 9)):
        target = _name(rng)
        choice = rng.randrange(6)
        if choice == 0:
            lines.append(f"{inner}{target} = self.{_name(rng)}(x) * {rng.random():.4f}")
        elif choice == 1:
            lines.append(f"{inner}{target} = F.layer_norm(x, x.shape[-1:])")
        elif choice == 2:
            lines += [
                f"{inner}if x.dim() > {rng.randint(2, 4)}:",
                f"{inner}    x = x.flatten(start_dim={rng.randint(1, 2)})",
            ]
        elif choice == 3:
            lines += [
                f"{inner}for index in range(self.num_{rng.choice(WORDS)}s):",
                f"{inner}    x = x + self.{_name(rng)}[index](x)  # residual",
            ]
        elif choice == 4:
            lines.append(f"{inner}{target} = torch.cat([x, x.mean(dim=-1, keepdim=True)], dim=-1)")
        else:
            lines.append(f'{inner}logger.debug("{target} shape %s", tuple(x.shape))')
    lines.append(f"{inner}return x")
    return lines


def _module_class(rng: random.Random) -> list[str]:
    name = _class_name(rng)
    lines = [
        f"class {name}(nn.Module):",
        f'    """A {rng.choice(WORDS)} block with a learned {rng.choice(WORDS)}."""',
        "",
        f"    def __init__(self, dim: int = {rng.choice((128, 256, 512))}) -> None:",
        "        super().__init__()",
    ]
    for _ in range(rng.randint(2, 6)):
        lines.append(f"        self.{_name(rng)} = nn.Linear(dim, dim)")
    for _ in range(rng.randint(2, 5)):
        lines.append("")
        lines += _method(rng, "    ")
    return lines


def _config_class(rng: random.Random) -> list[str]:
    lines = ["@dataclass", f"class {_class_name(rng)}Config:"]
    lines.append(f'    """Settings for the {rng.choice(WORDS)} stage."""')
    lines.append("")
    for _ in range(rng.randint(5, 14)):
        kind = rng.randrange(3)
        if kind == 0:
            lines.append(f"    {_name(rng)}: int = {rng.randint(1, 4096)}")
        elif kind == 1:
            lines.append(f"    {_name(rng)}: float = {rng.random():.5f}")
        else:
            lines.append(f"    {_name(rng)}: list[str] = field(default_factory=list)")
    return lines


def _function(rng: random.Random) -> list[str]:
    lines = [f"def {_name(rng, 3)}(values: list[float], {_name(rng)}: float = 0.5) -> float:"]
    lines += _docstring(rng, "    ")
    lines += [
        "    total = 0.0",
        "    for value in values:",
        f"        if value > {rng.random():.3f}:",
        "            total += math.log1p(value)",
        "        else:",
        "            total -= value ** 2",
        f"    return total / max(len(values), {rng.randint(1, 8)})",
    ]
    return lines


def _dataset_class(rng: random.Random) -> list[str]:
    name = _class_name(rng)
    return [
        f"class {name}Dataset(Dataset):",
        '    """Synthetic samples read from a directory of shards."""',
        "",
        "    def __init__(self, root: Path, length: int = 1024) -> None:",
        "        self.root = Path(root)",
        "        self.length = length",
        "",
        "    def __len__(self) -> int:",
        "        return self.length",
        "",
        "    def __getitem__(self, index: int) -> dict[str, Any]:",
        f'        shard = self.root / f"shard-{{index % {rng.randint(4, 64)}:05d}}.json"',
        "        with open(shard) as stream:",
        "            record = json.load(stream)",
        '        return {"x": torch.tensor(record["x"]), "y": int(record["y"])}',
    ]


def _test_function(rng: random.Random) -> list[str]:
    return [
        f"def test_{_name(rng, 3)}() -> None:",
        f"    x = torch.randn({rng.randint(1, 8)}, {rng.choice((16, 32, 64))})",
        "    y = x.clone()",
        "    assert torch.allclose(x, y)",
        f"    assert x.shape[0] == {rng.randint(1, 8)} or x.numel() > 0",
    ]


def _training_loop(rng: random.Random, violating: bool) -> list[str]:
    """A file that drives seed slots and collectives: a parse candidate."""
    guard = rng.choice(("rank == 0", "dist.get_rank() == 0", "args.local_rank in (-1, 0)"))
    lines = [
        "def train_one_epoch(model, slots, train_loader, optimizer, rank, epoch: int) -> float:",
        '    """One epoch of training; every rank must advance the seed slots together."""',
        "    model.train()",
        "    running = 0.0",
        "    for step, batch in enumerate(train_loader):",
        "        optimizer.zero_grad(set_to_none=True)",
        '        loss = model(batch["x"]).float().mean()',
        "        loss.backward()",
        "        optimizer.step()",
        "        running += loss.item()",
        "    for slot in slots:",
        "        slot.step_epoch()",
        "    dist.barrier()",
        f"    if {guard}:",
        '        logger.info("epoch %d loss %.4f", epoch, running)',
    ]
    if violating:
        lines += ["        slots[0].advance_stage()", "        dist.all_reduce(torch.zeros(1))"]
    lines.append("    return running")
    return lines


DIST_HELPERS = '''"""Distributed helpers shared by the training loops."""
import torch
import torch.distributed as dist


def is_main_process() -> bool:
    return dist.get_rank() == 0


def all_reduce_mean(value: float) -> float:
    tensor = torch.tensor([value])
    dist.all_reduce(tensor)
    return tensor.item() / dist.get_world_size()
'''


def _file_lines(
    rng: random.Random,
    package: str,
    target_lines: int,
    candidate: bool,
    sibling: str | None = None,
) -> list[str]:
    summary = f"{package.capitalize()} utilities for the {rng.choice(WORDS)} pipeline."
    lines = [f'"""{summary}"""', ""]
    lines += sorted(set(rng.sample(IMPORTS, rng.randint(4, len(IMPORTS)))))
    if sibling is not None:
        package_name, _, module = sibling.rpartition(".")
        lines.append(f"from {package_name} import {module}")
    if candidate and sibling is not None:
        lines.append("from trainpkg.utils.dist_helpers import all_reduce_mean, is_main_process")
    lines += ["import torch", "import torch.nn as nn", "import torch.nn.functional as F"]
    lines += ["import torch.distributed as dist"] if candidate else []
    lines += ["", "logger = logging.getLogger(__name__)", ""]
    makers = {**_FILLER_MAKERS, "scripts": (_function, _config_class)}[package]
    if candidate:
        lines += ["", ""] + _training_loop(rng, violating=rng.random() < 0.5)
        if sibling is not None:
            lines += [
                "",
                "",
                "def log_epoch(running: float) -> float:",
                "    mean = all_reduce_mean(running)",
                "    if is_main_process():",
                '        logger.info("mean loss %.4f", mean)',
                "    return mean",
            ]
    while len(lines) < target_lines:
        lines += ["", ""] + rng.choice(makers)(rng)
    return lines


def generate(
    out: Path,
    *,
    files: int = 640,
    lines: int = 210_000,
    candidate_ratio: float = 0.06,
    every_file_candidate: bool = False,
    seed: int = 20240901,
    cross_imports: bool = False,
) -> list[Path]:
    """Write the corpus under ``out`` (replacing it) and return the files in order."""
    rng = random.Random(seed)
    if out.exists():
        shutil.rmtree(out)
    candidates = set(rng.sample(range(files), round(files * candidate_ratio)))
    mean = lines / files
    written: list[Path] = []
    for index in range(files):
        package = PACKAGES[index % len(PACKAGES)]
        # Real file sizes are skewed: many short modules, a few long ones.
        target = max(20, int(rng.lognormvariate(0, 0.6) * mean / 1.197))
        candidate = every_file_candidate or index in candidates
        sibling = None
        if cross_imports and (candidate or rng.random() < 1 / 3) and index > 0:
            other = rng.randrange(index)
            other_package = PACKAGES[other % len(PACKAGES)]
            sibling = f"trainpkg.{other_package}.{other_package}_{other:04d}"
        body = _file_lines(rng, package, target, candidate, sibling)
        if every_file_candidate and index not in candidates:
            body += ["", "", "def _tick(slots) -> None:", "    for slot in slots:",
                     "        slot.step_epoch()"]  # fmt: skip
        path = out / "trainpkg" / package / f"{package}_{index:04d}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(body) + "\n", encoding="utf-8")
        written.append(path)
    if cross_imports:
        for init in [out / "trainpkg", *(out / "trainpkg" / package for package in PACKAGES)]:
            init.mkdir(parents=True, exist_ok=True)
            (init / "__init__.py").write_text("", encoding="utf-8")
        helpers = out / "trainpkg" / "utils" / "dist_helpers.py"
        helpers.write_text(DIST_HELPERS, encoding="utf-8")
        (out / "pyproject.toml").write_text('[project]\nname = "trainpkg"\n', encoding="utf-8")
        written.append(helpers)
    return written


# --- Esper-shaped tree (issue 14) ---------------------------------------------------------------
# Measured on the real Esper tree: 638 files, 211k lines, 83 parse candidates (13% of the files,
# 28% of the bytes). Its candidates are long training modules; the rest are models, data, configs.
ESPER_PACKAGES = ("kasmina", "tamiyo", "tolaria", "simic", "nissa", "leyline", "karn", "urza")
ESPER_FILLER_KINDS = ("models", "data", "training", "utils", "metrics", "configs", "tests")
ESPER_CANDIDATE_FILES = 0.13
ESPER_CANDIDATE_BYTES = 0.28

ESPER_DIST_HELPERS = '''"""Distributed helpers: every rank calls these, rank 0 decides."""
from __future__ import annotations

import torch
import torch.distributed as dist


def is_main_process() -> bool:
    return not dist.is_initialized() or dist.get_rank() == 0


def all_reduce_mean(value: float) -> float:
    tensor = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(tensor)
    return tensor.item() / dist.get_world_size()


def all_reduce_flag(flag: bool) -> bool:
    """True on every rank when any rank set it (a reduced decision, safe under rank checks)."""
    tensor = torch.tensor([1 if flag else 0])
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return bool(tensor.item())


def broadcast_decisions(decisions: list[object]) -> list[object]:
    holder = [decisions]
    dist.broadcast_object_list(holder, src=0)
    return list(holder[0])
'''


def _esper_train_epoch(rng: random.Random, helpers: str, violating: bool) -> list[str]:
    """A training epoch that ticks seed slots one by one, as Esper's loops do."""
    guard = rng.choice(("rank == 0", "dist.get_rank() == 0", f"{helpers}.is_main_process()"))
    head = [
        f"def train_epoch_{_name(rng)}(model, loader, optimizer, rank: int, epoch: int) -> float:",
        '    """One epoch; every rank ticks every seed slot once, in the same order."""',
        "    model.train()",
        "    running = 0.0",
        "    for step, batch in enumerate(loader):",
        "        optimizer.zero_grad(set_to_none=True)",
        f'        loss = model(batch["x"]).float().pow({rng.randint(1, 2)}).mean()',
        "        loss.backward()",
        "        optimizer.step()",
        "        running += loss.item()",
        "    for slot_id in sorted(model.seed_slots):",
        "        model.seed_slots[slot_id].step_epoch()",
    ]
    tail = [
        f"    mean = {helpers}.all_reduce_mean(running)",
        f"    if {guard}:",
        '        logger.info("epoch %d mean loss %.4f", epoch, mean)',
    ]
    if violating:
        kind = rng.randrange(3)
        if kind == 0:  # a lifecycle collective on rank 0 only
            tail += [
                "        for slot in model.seed_slots.values():",
                "            slot.advance_stage()",
            ]
        elif kind == 1:  # a barrier only rank 0 reaches
            tail += ["        dist.barrier()"]
        else:  # a rank-local exit before a collective every rank must make
            head += ["    if not math.isfinite(running):", "        return running"]
    return [*head, *tail, "    return mean"]


def _esper_lifecycle(rng: random.Random, helpers: str, violating: bool) -> list[str]:
    """Gate decisions taken on rank 0 and broadcast before every rank advances its slots."""
    lines = [
        f"def advance_{_name(rng)}(slots, metrics: dict[str, float], rank: int) -> int:",
        '    """Rank 0 decides which seeds advance; every rank applies the same decisions."""',
        "    decisions: list[object] = []",
        "    if rank == 0:",
        f"        threshold = {rng.random():.3f}",
        "        decisions = [metrics.get(str(i), 0.0) > threshold for i in range(len(slots))]",
        f"    decisions = {helpers}.broadcast_decisions(decisions)",
        "    advanced = 0",
        "    for slot, decision in zip(slots, decisions):",
        "        if decision:",
        "            slot.advance_stage()",
        "            advanced += 1",
    ]
    if violating:
        lines += [
            "    if rank == 0 and advanced:",
            "        dist.all_reduce(torch.tensor([advanced]))",
        ]
    return [*lines, "    return advanced"]


def _esper_validate(rng: random.Random, helpers: str, violating: bool) -> list[str]:
    """Validation metrics reduced over every rank, with a reduced early-stop decision."""
    lines = [
        f"def validate_{_name(rng)}(model, loader, rank: int) -> dict[str, float]:",
        '    """Validation accuracy over every rank\'s shard."""',
        "    model.eval()",
        "    correct = 0",
        "    total = 0",
        "    with torch.no_grad():",
        "        for batch in loader:",
        '            logits = model(batch["x"])',
        '            correct += int((logits.argmax(-1) == batch["y"]).sum())',
        '            total += int(batch["y"].numel())',
        "    counts = torch.tensor([correct, total], dtype=torch.float64)",
        "    dist.all_reduce(counts)",
        f"    if {helpers}.all_reduce_flag(bool(counts[1] == 0)):",
        '        return {"accuracy": 0.0}',
    ]
    if violating:
        lines += [
            "    if rank != 0:",
            '        return {"accuracy": float(counts[0] / counts[1])}',
            "    dist.barrier()",
        ]
    return [*lines, '    return {"accuracy": float(counts[0] / counts[1])}']


ESPER_MAKERS = (_esper_train_epoch, _esper_lifecycle, _esper_validate)
_FILLER_MAKERS = {
    "models": (_module_class, _module_class, _function),
    "data": (_dataset_class, _function, _config_class),
    "training": (_module_class, _function, _config_class),
    "utils": (_function, _function, _config_class),
    "metrics": (_function, _module_class),
    "configs": (_config_class, _config_class, _function),
    "tests": (_test_function, _test_function, _function),
}


def _esper_header(
    rng: random.Random, package: str, candidate: bool, imports: list[str]
) -> list[str]:
    summary = f"{package.capitalize()}: the {rng.choice(WORDS)} {rng.choice(WORDS)} subsystem."
    lines = [f'"""{summary}"""', "", "from __future__ import annotations", ""]
    lines += sorted(set(rng.sample(IMPORTS, rng.randint(4, len(IMPORTS)))))
    lines += ["import torch", "import torch.nn as nn", "import torch.nn.functional as F"]
    lines += ["import torch.distributed as dist"] if candidate else []
    return [*lines, *imports, "", "logger = logging.getLogger(__name__)", ""]


def _size(lines: list[str]) -> int:
    return sum(len(line.encode("utf-8")) + 1 for line in lines)


def generate_esper_shaped(
    out: Path,
    *,
    files: int = 640,
    lines: int = 211_000,
    candidate_files: float = ESPER_CANDIDATE_FILES,
    candidate_bytes: float = ESPER_CANDIDATE_BYTES,
    every_file_candidate: bool = False,
    seed: int = 20261201,
) -> list[Path]:
    """A package shaped like Esper's tree, under ``out`` (replaced); returns the files in order.

    ``candidate_files`` of the files name a symmetric call and hold ``candidate_bytes`` of the
    bytes: long training modules that tick seed slots one by one (``step_epoch``), advance them
    on rank 0's broadcast decisions (``advance_stage``), reduce metrics and call the package's
    distributed helpers (``dist.all_reduce``, ``broadcast_object_list``); 40% of them hold
    violations (a collective under a rank check, a rank-local exit before one). The
    helper modules are candidates too. The other files are models, datasets, configurations and
    tests; a third of them import a sibling module but none imports a candidate, so the files
    the engine parses are the ones the prefilter selects. The candidates' byte budget is set
    from the other files' bytes, so the byte share holds whatever the line lengths. With
    ``every_file_candidate`` each other file also ticks a slot (the worst case).
    """
    rng = random.Random(seed)
    if out.exists():
        shutil.rmtree(out)
    # ``files`` counts the packages' (empty) ``__init__.py`` files, as a real tree's count does
    modules = max(1, files - len(ESPER_PACKAGES) - 1)
    count = min(modules, max(1, round(files * candidate_files)))
    candidates = sorted(rng.sample(range(modules), count))
    helper_indexes = set(candidates[:: max(1, count // max(1, count // 12))][: max(1, count // 12)])
    is_candidate = set(candidates)

    def module_of(index: int) -> tuple[str, str]:
        package = ESPER_PACKAGES[index % len(ESPER_PACKAGES)]
        stem = "dist_helpers" if index in helper_indexes else package
        return package, f"{stem}_{index:04d}"

    helper_modules = [".".join(("esperpkg", *module_of(i))) for i in sorted(helper_indexes)]
    # lines as a stand-in for bytes; each file overshoots its target by part of a block (about 6%)
    mean_other = lines * (1 - candidate_bytes) / max(1, modules - count) / 1.065
    bodies: dict[int, list[str]] = {}
    for index in range(modules):  # the other files first: their bytes set the candidates' budget
        if index in is_candidate:
            continue
        kind = ESPER_FILLER_KINDS[index % len(ESPER_FILLER_KINDS)]
        imports = []
        sibling = rng.randrange(index) if index > 0 and rng.random() < 1 / 3 else None
        if sibling is not None and sibling not in is_candidate:
            imports.append("from esperpkg.{} import {}".format(*module_of(sibling)))
        body = _esper_header(rng, kind, False, imports)
        target = max(20, int(rng.lognormvariate(0, 0.6) * mean_other / 1.197))
        while len(body) < target:
            body += ["", "", *rng.choice(_FILLER_MAKERS[kind])(rng)]
        if every_file_candidate:
            body += ["", "", "def _tick(slots) -> None:", "    for slot in slots:",
                     "        slot.step_epoch()"]  # fmt: skip
        bodies[index] = body
    other_bytes = sum(_size(body) for body in bodies.values())
    helper_bytes = len(ESPER_DIST_HELPERS.encode("utf-8")) * len(helper_indexes)
    # each candidate overshoots its share by part of its last block (about 3%)
    budget = (other_bytes * candidate_bytes / (1 - candidate_bytes) - helper_bytes) / 1.03
    trainers = [index for index in candidates if index not in helper_indexes]
    weights = {index: rng.lognormvariate(0, 0.5) for index in trainers}
    total_weight = sum(weights.values()) or 1.0
    others = [index for index in range(modules) if index not in is_candidate]
    for index in trainers:
        imports = [f"import {rng.choice(helper_modules)} as dist_helpers"]
        earlier = [other for other in others if other < index]
        if earlier:
            imports.append("from esperpkg.{} import {}".format(*module_of(rng.choice(earlier))))
        body = _esper_header(rng, module_of(index)[0], True, imports)
        byte_target = budget * weights[index] / total_weight
        violations = 0.3 if rng.random() < 0.4 else 0.0  # 40% of the training modules violate
        while _size(body) < byte_target or len(body) < 20:
            if rng.random() < 0.45 or len(body) < 20:  # a candidate opens with training code
                maker = rng.choice(ESPER_MAKERS)
                body += ["", "", *maker(rng, "dist_helpers", rng.random() < violations)]
            else:
                kind = rng.choice(ESPER_FILLER_KINDS)
                body += ["", "", *rng.choice(_FILLER_MAKERS[kind])(rng)]
        bodies[index] = body
    package_root = out / "esperpkg"
    for directory in [package_root, *(package_root / name for name in ESPER_PACKAGES)]:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "__init__.py").write_text("", encoding="utf-8")
    (out / "pyproject.toml").write_text('[project]\nname = "esperpkg"\n', encoding="utf-8")
    written = [package_root / "__init__.py"]
    written += [package_root / name / "__init__.py" for name in ESPER_PACKAGES]
    for index in range(modules):
        package, module = module_of(index)
        path = package_root / package / f"{module}.py"
        text = ESPER_DIST_HELPERS if index in helper_indexes else "\n".join(bodies[index]) + "\n"
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--files", type=int, default=640)
    parser.add_argument("--lines", type=int, default=210_000)
    parser.add_argument("--candidate-ratio", type=float, default=0.06)
    parser.add_argument("--every-file-candidate", action="store_true")
    parser.add_argument("--seed", type=int, default=20240901)
    parser.add_argument("--cross-imports", action="store_true")
    parser.add_argument(
        "--esper-shaped",
        action="store_true",
        help="the Esper-shaped tree: 13%% of the files, 28%% of the bytes are candidates",
    )
    args = parser.parse_args()
    if args.esper_shaped:
        written = generate_esper_shaped(
            args.out,
            files=args.files,
            lines=args.lines,
            every_file_candidate=args.every_file_candidate,
        )
    else:
        written = generate(
            args.out,
            files=args.files,
            lines=args.lines,
            candidate_ratio=args.candidate_ratio,
            every_file_candidate=args.every_file_candidate,
            seed=args.seed,
            cross_imports=args.cross_imports,
        )
    total = sum(len(path.read_bytes().splitlines()) for path in written)
    print(f"{len(written)} files, {total} lines under {args.out}")


if __name__ == "__main__":
    main()

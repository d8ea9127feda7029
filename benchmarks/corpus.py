"""Generate a realistic training-codebase corpus for the lint speed benchmark.

Shapes found in a real DDP training package: model modules (``nn.Module`` classes with
docstrings), data pipelines, configuration dataclasses, metrics and logging utilities, tests.
A fraction of files (``candidate_ratio``) are training loops that drive seed slots and collectives
under rank checks: those mention symmetric calls, the rest never do. Deterministic for a seed.

    python benchmarks/corpus.py OUT_DIR [--files 640] [--lines 210000] [--every-file-candidate]
        [--cross-imports]

With ``--cross-imports`` the corpus is a package (``__init__.py`` files) whose modules import each
other as real ones do: training loops call a collective helper and a rank test from
``trainpkg/utils/dist_helpers.py``, and about a third of the other modules import a sibling
module (``from trainpkg.utils import utils_0003``), so whole-project analysis has imports to follow.
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
    makers = {
        "models": (_module_class, _module_class, _function),
        "data": (_dataset_class, _function, _config_class),
        "training": (_module_class, _function, _config_class),
        "utils": (_function, _function, _config_class),
        "metrics": (_function, _module_class),
        "configs": (_config_class, _config_class, _function),
        "tests": (_test_function, _test_function, _function),
        "scripts": (_function, _config_class),
    }[package]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--files", type=int, default=640)
    parser.add_argument("--lines", type=int, default=210_000)
    parser.add_argument("--candidate-ratio", type=float, default=0.06)
    parser.add_argument("--every-file-candidate", action="store_true")
    parser.add_argument("--seed", type=int, default=20240901)
    parser.add_argument("--cross-imports", action="store_true")
    args = parser.parse_args()
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

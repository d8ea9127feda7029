"""The pre-commit hook, through the real pre-commit: `pre-commit try-repo <checkout> esper-lint`.

pre-commit installs the hook's environment from the package index (virtualenv + `pip install .`),
so these tests take tens of seconds; they are marked slow, and CI runs them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

VIOLATING_SCRIPT = """\
import torch.distributed as dist


def train(model, slot, num_epochs):
    for epoch in range(num_epochs):
        model.train_one_epoch()
        if dist.get_rank() == 0:
            slot.step_epoch()
"""
VIOLATION = "train.py:8:13: ESP001 "

FIXED_SCRIPT = """\
import torch.distributed as dist


def train(model, slot, num_epochs):
    for epoch in range(num_epochs):
        model.train_one_epoch()
        if dist.get_rank() == 0:
            model.save_checkpoint()
        slot.step_epoch()
"""

GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "esper-lint tests",
    "GIT_AUTHOR_EMAIL": "tests@esper-lint.invalid",
    "GIT_COMMITTER_NAME": "esper-lint tests",
    "GIT_COMMITTER_EMAIL": "tests@esper-lint.invalid",
}


@pytest.fixture(scope="session")
def tool_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment for git and pre-commit: a private PRE_COMMIT_HOME, no user git config."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    home = tmp_path_factory.mktemp("pre-commit-home")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PRE_COMMIT", "GIT_"))}
    env.pop("SKIP", None)
    env.update(GIT_IDENTITY)
    env.update(
        PRE_COMMIT_HOME=str(home),
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_CONFIG_NOSYSTEM="1",
        NO_COLOR="1",
    )
    return env


@pytest.fixture(scope="session")
def hook_repo(tmp_path_factory: pytest.TempPathFactory, tool_env: dict[str, str]) -> Path:
    """A committed snapshot of this checkout's working tree.

    try-repo on a checkout with uncommitted changes only carries tracked files over, so new,
    not yet added files would silently be missing; a snapshot tests exactly what is on disk.
    """
    if not (REPO_ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    listing = _git(
        REPO_ROOT, tool_env, "ls-files", "-z", "--cached", "--others", "--exclude-standard"
    )
    snapshot = tmp_path_factory.mktemp("esper-lint-checkout")
    for name in filter(None, listing.split("\0")):
        source, target = REPO_ROOT / name, snapshot / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():  # as git stores it: the link, not its target
            target.symlink_to(os.readlink(source))
        elif source.is_file():  # listed but deleted on disk: leave it out, as git add -A would
            shutil.copy2(source, target)
    _git(snapshot, tool_env, "init", "-q")
    _commit_all(snapshot, tool_env)
    return snapshot


@pytest.fixture
def user_repo(tmp_path: Path, tool_env: dict[str, str]) -> Iterator[Path]:
    repo = tmp_path / "user-project"
    repo.mkdir()
    _git(repo, tool_env, "init", "-q")
    yield repo


def test_try_repo_reports_esp001_then_passes_once_fixed(
    hook_repo: Path, user_repo: Path, tool_env: dict[str, str]
) -> None:
    script = user_repo / "train.py"
    script.write_text(VIOLATING_SCRIPT, encoding="utf-8")
    # types_or: [python, pyi]: a stub reaches the hook, a text file does not.
    stub = user_repo / "train_stub.pyi"
    stub.write_text(VIOLATING_SCRIPT, encoding="utf-8")
    (user_repo / "notes.txt").write_text(VIOLATING_SCRIPT, encoding="utf-8")
    _commit_all(user_repo, tool_env)

    failing = _try_repo(hook_repo, user_repo, tool_env)

    assert failing.returncode == 1, failing.stdout
    assert "esper-lint" in failing.stdout and "Failed" in failing.stdout, failing.stdout
    assert VIOLATION in failing.stdout, failing.stdout
    assert "train_stub.pyi:8:13: ESP001 " in failing.stdout, failing.stdout
    assert failing.stdout.count(" ESP00") == 2, failing.stdout

    script.write_text(FIXED_SCRIPT, encoding="utf-8")
    stub.write_text(FIXED_SCRIPT, encoding="utf-8")
    _commit_all(user_repo, tool_env)

    passing = _try_repo(hook_repo, user_repo, tool_env)

    assert passing.returncode == 0, passing.stdout
    assert "Passed" in passing.stdout and "ESP00" not in passing.stdout, passing.stdout


def test_hook_environment_has_esper_lint_and_no_torch(
    hook_repo: Path, tmp_path: Path, tool_env: dict[str, str]
) -> None:
    # try-repo installs into a throwaway store; install the same hook into PRE_COMMIT_HOME
    # through an ordinary config so the environment can be inspected.
    project = tmp_path / "project"
    project.mkdir()
    _git(project, tool_env, "init", "-q")
    revision = _git(hook_repo, tool_env, "rev-parse", "HEAD").strip()
    (project / ".pre-commit-config.yaml").write_text(
        f"repos:\n  - repo: {hook_repo}\n    rev: {revision}\n    hooks:\n      - id: esper-lint\n",
        encoding="utf-8",
    )
    _commit_all(project, tool_env)

    install = _run([sys.executable, "-m", "pre_commit", "install-hooks"], project, tool_env)
    assert install.returncode == 0, install.stdout

    pythons = sorted(Path(tool_env["PRE_COMMIT_HOME"]).glob("repo*/py_env-*/bin/python"))
    assert len(pythons) == 1, pythons
    probe = (
        "import importlib.util, json; "
        "print(json.dumps({m: importlib.util.find_spec(m) is not None "
        "for m in ('esper_lint', 'libcst', 'torch')}))"
    )
    found = _run([str(pythons[0]), "-c", probe], project, tool_env)
    assert found.stdout.strip() == '{"esper_lint": true, "libcst": true, "torch": false}', (
        found.stdout
    )


def _try_repo(
    hook_repo: Path, user_repo: Path, env: Mapping[str, str]
) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable,
        "-m",
        "pre_commit",
        "try-repo",
        str(hook_repo),
        "esper-lint",
        "--all-files",
        "--color",
        "never",
    ]
    return _run(command, user_repo, env)


def _run(command: list[str], cwd: Path, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command,
        cwd=cwd,
        env=dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )


def _git(repo: Path, env: Mapping[str, str], *args: str) -> str:
    result = _run(["git", *args], repo, env)
    assert result.returncode == 0, f"git {' '.join(args)}: {result.stdout}"
    return result.stdout


def _commit_all(repo: Path, env: Mapping[str, str]) -> None:
    _git(repo, env, "add", "-A")
    _git(repo, env, "-c", "commit.gpgsign=false", "commit", "-q", "--allow-empty", "-m", "snapshot")


def test_a_repository_uses_the_hook_at_a_release_tag_and_excludes_hold(
    hook_repo: Path, tmp_path: Path, tool_env: dict[str, str]
) -> None:
    """docs/installation.md's setup: `repo:` this repository, `rev:` a release tag. The hook
    passes --force-exclude, so the project's `exclude` holds although pre-commit names every
    file explicitly."""
    tag = "v0.0.0-test"
    _git(hook_repo, tool_env, "tag", "-f", tag)
    project = tmp_path / "tagged-user"
    project.mkdir()
    _git(project, tool_env, "init", "-q")
    (project / ".pre-commit-config.yaml").write_text(
        f"repos:\n  - repo: {hook_repo}\n    rev: {tag}\n    hooks:\n      - id: esper-lint\n",
        encoding="utf-8",
    )
    (project / "pyproject.toml").write_text(
        '[tool.esper-lint]\nexclude = ["legacy"]\n', encoding="utf-8"
    )
    (project / "train.py").write_text(VIOLATING_SCRIPT, encoding="utf-8")
    (project / "legacy").mkdir()
    (project / "legacy" / "old_train.py").write_text(VIOLATING_SCRIPT, encoding="utf-8")
    _commit_all(project, tool_env)

    command = [sys.executable, "-m", "pre_commit", "run", "--all-files", "--color", "never"]
    result = _run(command, project, tool_env)

    assert result.returncode == 1, result.stdout
    assert VIOLATION in result.stdout, result.stdout
    assert "old_train.py" not in result.stdout, result.stdout


def test_pip_installs_from_a_git_url_at_a_tag(
    hook_repo: Path, tmp_path: Path, tool_env: dict[str, str]
) -> None:
    """docs/installation.md: `pip install "esper-lint @ git+URL@TAG"`, into a fresh venv."""
    tag = "v0.0.1-test"
    _git(hook_repo, tool_env, "tag", "-f", tag)
    venv = tmp_path / "venv"
    created = _run([sys.executable, "-m", "venv", str(venv)], tmp_path, tool_env)
    assert created.returncode == 0, created.stdout
    python = venv / "bin" / "python"
    url = f"esper-lint @ git+file://localhost{hook_repo}@{tag}"  # PEP 508 needs a host
    install = _run([str(python), "-m", "pip", "install", "-q", url], tmp_path, tool_env)
    assert install.returncode == 0, install.stdout
    (tmp_path / "train.py").write_text(VIOLATING_SCRIPT, encoding="utf-8")

    lint = _run([str(venv / "bin" / "esper-lint"), "-n", "train.py"], tmp_path, tool_env)

    assert lint.returncode == 1, lint.stdout
    assert VIOLATION in lint.stdout, lint.stdout

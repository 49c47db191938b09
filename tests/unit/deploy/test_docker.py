"""The Docker images as far as they can be checked without a Docker engine: hadolint
passes, they install from uv.lock with their extra as a non-root user, the entrypoint
module exists and the build context leaves local state out."""

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
DOCKERFILES = {"gpu": ROOT / "docker" / "Dockerfile", "cpu": ROOT / "docker" / "Dockerfile.cpu"}


def _hadolint() -> str:
    found = Path(sys.executable).parent / "hadolint"
    return str(found) if found.exists() else shutil.which("hadolint") or ""


@pytest.mark.parametrize("extra", DOCKERFILES)
def test_hadolint_passes(extra):
    hadolint = _hadolint()
    assert hadolint, "hadolint is missing: it comes with the dev extra (make install)"
    done = subprocess.run(
        [hadolint, "--config", str(ROOT / ".hadolint.yaml"), str(DOCKERFILES[extra])],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = path.read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [tuple(line.split(maxsplit=1)) for line in lines if line and not line.startswith("#")]


@pytest.mark.parametrize("extra", DOCKERFILES)
def test_installs_from_the_lock_as_a_non_root_user(extra):
    steps = _instructions(DOCKERFILES[extra])
    runs = [args for op, args in steps if op == "RUN"]
    syncs = [r for r in runs if "uv sync" in r]
    assert syncs and all("--frozen" in r and f"--extra {extra}" in r for r in syncs)
    assert any(op == "COPY" and "uv.lock" in args for op, args in steps)
    users = [args for op, args in steps if op == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root")
    assert ("EXPOSE", "6379 8265 10001") in steps


@pytest.mark.parametrize("extra", DOCKERFILES)
def test_the_entrypoint_module_exists(extra):
    (entry,) = [
        json.loads(args) for op, args in _instructions(DOCKERFILES[extra]) if op == "ENTRYPOINT"
    ]
    assert entry[:2] == ["python", "-m"]
    assert importlib.util.find_spec(entry[2]) is not None


def test_the_build_context_leaves_local_state_out():
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".git", ".venv", ".cache", "runs", "wandb"} <= ignored

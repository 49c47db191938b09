"""What a policy spec on the command line names: ``PATH`` or ``NAME=PATH``, where PATH
is a Hugging Face folder, a checkpoint folder, a run folder (its newest complete
checkpoint) or ``fixture:NAME``. Resolved cheaply, before any engine starts."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from cpe.models.paths import check_model_path
from cpe.trainer.checkpoint import MARKER, CheckpointManager

_NAME = re.compile(r"^[A-Za-z0-9._-]+$")
HF_SUBDIR = "policy_hf"


@dataclass(frozen=True)
class PolicySpec:
    name: str  # file-safe: names the policy's cache files and its results row
    path: str  # what the user gave (a fixture name stays unresolved until engines start)
    model_path: str  # the HF folder or fixture the engines load


def parse_policy(spec: str, key: str) -> PolicySpec:
    """``NAME=PATH`` or ``PATH``; raises ValueError naming ``key`` when it is unusable."""
    name, sep, path = spec.partition("=")
    if not sep:
        name, path = "", spec
    path = path.strip()
    if not path:
        raise ValueError(f"{key}={spec!r}: empty path")
    model_path = _model_folder(path, key)
    name = name.strip() or default_name(path, model_path)
    if not _NAME.match(name):
        raise ValueError(f"{key}={spec!r}: name {name!r} may use only letters, digits, . _ -")
    return PolicySpec(name=name, path=path, model_path=model_path)


def parse_policies(specs: list[str], key: str = "eval.policies") -> list[PolicySpec]:
    policies = [parse_policy(s, f"{key}[{i}]") for i, s in enumerate(specs)]
    names = [p.name for p in policies]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"{key}: two policies are named {dupes[0]!r}; name them NAME=PATH")
    return policies


def default_name(path: str, model_path: str) -> str:
    """``fixture:smollm2`` -> ``smollm2``; ``runs/demo-x/checkpoints/step_000004/policy_hf``
    -> ``demo-x-step4``; a plain folder -> its name."""
    if path.startswith("fixture:"):
        return path.split(":", 1)[1]
    folder = Path(model_path)
    if folder.name == HF_SUBDIR and folder.parent.parent.name == "checkpoints":
        step = int(folder.parent.name.removeprefix("step_"))
        return f"{folder.parent.parent.parent.name}-step{step}"
    return folder.name


def _model_folder(path: str, key: str) -> str:
    if path.startswith("fixture:"):
        check_model_path(path, key)
        return path
    folder = Path(path)
    if (folder / "checkpoints").is_dir():  # a run folder: its newest complete checkpoint
        latest = CheckpointManager(folder).latest()
        if latest is None:
            raise ValueError(f"{key}={path!r}: the run folder has no complete checkpoint")
        folder = latest
    if (folder / MARKER).exists() or (folder / HF_SUBDIR).is_dir():
        folder = folder / HF_SUBDIR
    if not (folder / "config.json").is_file():
        raise ValueError(
            f"{key}={path!r}: not a Hugging Face model folder, checkpoint or run folder "
            f"({folder / 'config.json'} is missing)"
        )
    return str(folder)

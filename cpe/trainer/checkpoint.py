"""Checkpoint folders: written under a temporary name, marked complete last, renamed.

A crash mid-write leaves ``step_N.partial`` (ignored and cleaned up later), never a
folder that looks complete. Layout of ``<run_dir>/checkpoints/step_000010/``::

    policy_hf/      the policy in Hugging Face format (transformers / vLLM loadable)
    policy_state/   DeepSpeed state of the policy ranks (weights, optimizer, lr schedule)
    value_state/    the same for the value ranks
    driver.json     step, data cursor, RNG states
    COMPLETE        written last
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

_STEP_DIR = re.compile(r"^step_(\d{6,})$")
MARKER = "COMPLETE"


class CheckpointManager:
    def __init__(self, run_dir: str | Path, keep: int = 2):
        # Absolute: learner ranks write their shards here from their own working dirs.
        self.root = Path(run_dir).resolve() / "checkpoints"
        self.keep = keep

    def begin(self, step: int) -> Path:
        """A fresh temporary folder to write checkpoint ``step`` into."""
        tmp = self.root / f"step_{step:06d}.partial"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        return tmp

    def commit(self, tmp: Path, step: int, driver_state: dict[str, Any]) -> Path:
        (tmp / "driver.json").write_text(json.dumps(driver_state, indent=1))
        (tmp / MARKER).write_text(str(step))
        final = self.root / f"step_{step:06d}"
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        self._prune()
        return final

    def complete(self) -> list[tuple[int, Path]]:
        if not self.root.exists():
            return []
        found = []
        for child in self.root.iterdir():
            match = _STEP_DIR.match(child.name)
            if match and (child / MARKER).exists():
                found.append((int(match.group(1)), child))
        return sorted(found)

    def latest(self) -> Path | None:
        done = self.complete()
        return done[-1][1] if done else None

    def _prune(self) -> None:
        for _, path in self.complete()[: -self.keep]:
            shutil.rmtree(path, ignore_errors=True)
        for stale in self.root.glob("*.partial"):
            shutil.rmtree(stale, ignore_errors=True)


def read_driver_state(checkpoint: Path) -> dict[str, Any]:
    return json.loads((checkpoint / "driver.json").read_text())


def resolve_resume(resume: str, manager: CheckpointManager) -> Path | None:
    """``auto``: the newest complete checkpoint, if any; ``never``; or an explicit folder."""
    if resume == "never":
        return None
    if resume == "auto":
        return manager.latest()
    path = Path(resume)
    if not (path / MARKER).exists():
        raise FileNotFoundError(
            f"trainer.resume={resume!r} is not a complete checkpoint (no {MARKER} file)"
        )
    return path

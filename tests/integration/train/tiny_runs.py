"""The command line of a tiny_cpu training in its own process (tests that kill it, fill
its disk or break its GRM need a process of its own)."""

from __future__ import annotations

import sys
from pathlib import Path

QUIET = ("logging.wandb_mode=disabled", "logging.progress=false")


def train_command(run_dir: Path, *overrides: str) -> list[str]:
    """``python -m cpe.train experiment=tiny_cpu`` into ``run_dir``, no wandb, no bar."""
    return [
        sys.executable,
        "-m",
        "cpe.train",
        "experiment=tiny_cpu",
        f"logging.run_dir={run_dir}",
        *QUIET,
        *overrides,
    ]

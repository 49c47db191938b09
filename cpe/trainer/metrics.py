"""Per-step metrics to ``metrics.jsonl`` in the run folder and to wandb; sample tables.

The JSONL file is the source of truth a person can read and plot (``python -m cpe.report``);
wandb mirrors it, offline unless configured otherwise, with its files inside the run folder.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class MetricsLogger:
    def __init__(
        self,
        run_dir: str | Path,
        wandb_mode: str = "offline",
        project: str = "cpe",
        entity: str | None = None,
        config: dict | None = None,
        resume_step: int = 0,
        group: str | None = None,
    ):
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.run_dir / "metrics.jsonl"
        self.samples_dir = self.run_dir / "samples"
        self.samples_dir.mkdir(exist_ok=True)
        truncate_after(self.path, resume_step)
        self._wandb = _start_wandb(self.run_dir, wandb_mode, project, entity, config, group)

    def log(self, step: int, metrics: dict[str, Any]) -> None:
        row = {"step": step, **{k: _clean(v) for k, v in sorted(metrics.items())}}
        with self.path.open("a") as fh:
            fh.write(json.dumps(row) + "\n")
        if self._wandb is not None:
            self._wandb.log({k: v for k, v in row.items() if v is not None}, step=step)

    def samples(self, step: int, rows: list[dict[str, Any]]) -> Path:
        path = self.samples_dir / f"step_{step:06d}.jsonl"
        with path.open("w") as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        if self._wandb is not None and rows:
            import wandb

            columns = list(rows[0])
            table = wandb.Table(
                columns=columns, data=[[str(r.get(c, "")) for c in columns] for r in rows]
            )
            self._wandb.log({"samples": table}, step=step)
        return path

    def close(self) -> None:
        if self._wandb is not None:
            self._wandb.finish()
            self._wandb = None


def truncate_after(path: Path, step: int) -> None:
    """Drop rows logged after ``step``: a resumed run re-does those steps, and the file
    must not hold them twice."""
    if not path.exists():
        return
    kept = [
        line for line in path.read_text().splitlines() if line and json.loads(line)["step"] <= step
    ]
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(line + "\n" for line in kept))
    tmp.replace(path)


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line]


def _start_wandb(
    run_dir: Path,
    mode: str,
    project: str,
    entity: str | None,
    config: dict | None,
    group: str | None,
):
    if mode == "disabled":
        return None
    import wandb

    wandb_dir = run_dir / "wandb"
    wandb_dir.mkdir(exist_ok=True)
    for var, sub in (
        ("WANDB_CACHE_DIR", "cache"),
        ("WANDB_CONFIG_DIR", "config"),
        ("WANDB_DATA_DIR", "data"),
    ):
        os.environ.setdefault(var, str(wandb_dir / sub))
    return wandb.init(
        project=project,
        entity=entity,
        dir=str(run_dir),
        mode=mode,
        config=config,
        name=run_dir.name,
        group=group,  # the preset (CPEConfig.name): runs of one setup side by side
        reinit="finish_previous",
        settings=wandb.Settings(silent=True),
    )

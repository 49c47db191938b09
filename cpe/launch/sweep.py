"""The sweep summary: one row per point of a Hydra multirun (its run folder under the
sweep folder), the keys the sweep varied, and each point's final figures.

``python -m cpe.train -m ...`` writes it at the end of the sweep through Hydra's
``on_multirun_end`` callback (``conf/config.yaml``);
``python -m cpe.launch summary DIR`` rewrites it, e.g. after a point was resumed.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback

from cpe.config import OTHER_TOOLS_NODES
from cpe.report.runs import Run, differing_keys, load_run
from cpe.report.table import aligned, fmt

#: Final figures per point: reward, the three GRM scores, length, eval win rates.
FIGURES = (
    "original/reward_mean",
    "original/helpfulness",
    "original/personalization",
    "original/naturalness",
    "original/length_tokens",
    "eval/win_rate",
    "eval/lc_win_rate",
)
#: Keys that differ between points by construction, not because the sweep varied them.
PER_POINT = ("logging.run_dir", "logging.wandb_group", *OTHER_TOOLS_NODES)
SUMMARY_CSV, SUMMARY_TXT, FAILED_TXT = "summary.csv", "summary.txt", "failed.txt"


def sweep_points(sweep_dir: Path) -> list[Run]:
    """The run folders under ``sweep_dir`` that hold a run (a config and metrics)."""
    folders = sorted(
        (p for p in sweep_dir.iterdir() if (p / "metrics.jsonl").exists()),
        key=lambda p: (len(p.name), p.name),  # 0, 1, ..., 10 in numeric order
    )
    return [load_run(p, p.name) for p in folders]


def summary_rows(points: list[Run]) -> tuple[list[str], list[list[Any]]]:
    """Header and one row per point: folder, swept keys, steps, final figures."""
    swept = [k for k in differing_keys([p.config for p in points]) if not k.startswith(PER_POINT)]
    figures = [f for f in FIGURES if any(latest(p, f) is not None for p in points)]
    header = ["point", *swept, "steps", *figures]
    rows = [
        [p.name, *(p.config.get(k) for k in swept), p.last_step, *(latest(p, f) for f in figures)]
        for p in points
    ]
    return header, rows


def latest(point: Run, key: str) -> Any:
    """The last value ``key`` took in the point's metrics (eval rows are not every step)."""
    return next((row[key] for row in reversed(point.rows) if key in row), None)


def write_summary(sweep_dir: str | Path) -> Path | None:
    """``summary.csv`` and an aligned ``summary.txt`` in ``sweep_dir``; the text is also
    printed. None when no point holds a run."""
    sweep_dir = Path(sweep_dir)
    points = sweep_points(sweep_dir) if sweep_dir.is_dir() else []
    if not points:
        print(f"sweep {sweep_dir}: no point holds a run", file=sys.stderr)
        return None
    header, rows = summary_rows(points)
    with (sweep_dir / SUMMARY_CSV).open("w", newline="") as fh:
        csv.writer(fh).writerows([header, *rows])
    text = aligned([header, *([fmt(v) for v in row] for row in rows)])
    (sweep_dir / SUMMARY_TXT).write_text(text + "\n")
    print(f"sweep {sweep_dir} ({len(points)} points):\n{text}")
    return sweep_dir / SUMMARY_CSV


def record_failed_point(hydra_cfg, code: int) -> None:
    """Note a point that exited with ``code`` in ``<sweep dir>/failed.txt``."""
    line = f"{hydra_cfg.job.num}\texit {code}\t{' '.join(hydra_cfg.overrides.task)}\n"
    with (Path(hydra_cfg.sweep.dir) / FAILED_TXT).open("a") as fh:
        fh.write(line)
    print(
        f"sweep point {hydra_cfg.job.num} failed (exit {code}); the sweep goes on", file=sys.stderr
    )


class SweepSummary(Callback):
    """Hydra callback: the summary once every point of a multirun has run; the sweep
    exits 1 when a point failed."""

    def on_multirun_end(self, config, **kwargs) -> None:
        write_summary(config.hydra.sweep.dir)
        failed = Path(config.hydra.sweep.dir) / FAILED_TXT
        if failed.exists():
            lines = failed.read_text().splitlines()
            print(f"{len(lines)} sweep points failed:\n" + "\n".join(lines), file=sys.stderr)
            raise SystemExit(1)


def main(argv: list[str]) -> int:
    """``python -m cpe.launch summary SWEEP_DIR``."""
    if len(argv) != 1:
        print("usage: python -m cpe.launch summary SWEEP_DIR", file=sys.stderr)
        return 2
    return 0 if write_summary(argv[0]) else 1

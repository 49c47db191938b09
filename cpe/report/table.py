"""Per-step text tables and the CSV export of metrics.jsonl."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from cpe.logs import PHASES
from cpe.report.runs import Row, has_key

DEFAULT_KEYS = (
    "original/reward_mean",
    "edit/reward_mean",
    "selected_edit/count",
    "grm/invalid_rate",
    "original/length_tokens",
    "edit/length_tokens",
    "policy/policy_loss",
    "value/value_loss",
    "policy/grad_norm",
    "sync/logprob_gap_max",
    "perf/gen_tokens_per_s",
    "eval/win_rate",
    "eval/lc_win_rate",
)


def fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


def table(rows: list[Row], keys: list[str]) -> str:
    header = ["step", *keys]
    return aligned([header] + [[fmt(r.get("step")), *(fmt(r.get(k)) for k in keys)] for r in rows])


def aligned(lines: list[list[str]]) -> str:
    """Text cells as right-aligned columns, two spaces apart."""
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    return "\n".join(
        "  ".join(cell.rjust(w) for cell, w in zip(line, widths, strict=True)) for line in lines
    )


def default_keys(rows: list[Row]) -> list[str]:
    # A ppo run has no edit/* and most runs no eval/*: columns of dashes only are dropped.
    return [k for k in DEFAULT_KEYS if has_key(rows, k)]


def timing_keys(rows: list[Row]) -> list[str]:
    """time/* keys in step order (cpe.logs.PHASES), then any other phase by name."""
    present = {k for r in rows for k in r if k.startswith("time/")}
    ordered = [f"time/{phase}" for phase, _ in PHASES if f"time/{phase}" in present]
    return ordered + sorted(present - set(ordered))


def write_csv(runs: list[tuple[str, list[Row]]], path: Path) -> None:
    """Every metric of every step of every run, one line per (run, step)."""
    columns = sorted({k for _, rows in runs for r in rows for k in r} - {"step"})
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["run", "step", *columns])
        writer.writeheader()
        for name, rows in runs:
            writer.writerows({"run": name, **r} for r in rows)

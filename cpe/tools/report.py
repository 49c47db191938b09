"""Print a run's per-step metrics as a table, or export them as CSV for plotting.

python -m cpe.tools.report runs/demo-20261124-120000
python -m cpe.tools.report runs/demo-... --csv metrics.csv --keys original/reward_mean time/update
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from cpe.trainer.metrics import read_metrics

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
)


def table(rows: list[dict], keys: list[str]) -> str:
    header = ["step", *keys]
    lines = [header] + [[str(r["step"]), *(_fmt(r.get(k)) for k in keys)] for r in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.rjust(w) for cell, w in zip(line, widths, strict=True)) for line in lines
    )


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Per-step metrics of a cpe run")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--keys", nargs="*", default=list(DEFAULT_KEYS))
    parser.add_argument("--timings", action="store_true", help="show the time/* columns instead")
    parser.add_argument(
        "--csv", type=Path, help="write every metric of every step to this CSV file"
    )
    args = parser.parse_args(argv)
    path = args.run_dir / "metrics.jsonl"
    if not path.exists():
        print(f"error: {path} does not exist", file=sys.stderr)
        return 2
    rows = read_metrics(path)
    keys = (
        sorted({k for r in rows for k in r if k.startswith("time/")}) if args.timings else args.keys
    )
    print(table(rows, keys))
    if args.csv:
        columns = sorted({k for r in rows for k in r} - {"step"})
        with args.csv.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=["step", *columns])
            writer.writeheader()
            writer.writerows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())

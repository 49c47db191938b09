"""``python -m cpe.report RUN_DIR [RUN_DIR ...]``: tables on stdout, plots and report.html."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cpe.report.page import render
from cpe.report.plots import write_plots
from cpe.report.runs import Run, load_runs, missing_runs
from cpe.report.table import default_keys, table, timing_keys, write_csv


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m cpe.report",
        description="Per-step metrics of cpe runs: tables, CSV, PNG plots and report.html",
    )
    parser.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR")
    parser.add_argument(
        "--out", type=Path, help="folder for the plots and report.html (default: RUN_DIR/report)"
    )
    parser.add_argument("--keys", nargs="*", help="columns of the stdout table")
    parser.add_argument("--timings", action="store_true", help="show the time/* columns instead")
    parser.add_argument(
        "--csv", type=Path, help="write every metric of every step (of every run) to this CSV"
    )
    parser.add_argument("--quiet", action="store_true", help="print no tables, only the files")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if missing := missing_runs(args.run_dirs):
        for path in missing:
            print(f"error: {path} does not exist", file=sys.stderr)
        return 2
    runs = load_runs(args.run_dirs)
    if not args.quiet:
        print_tables(runs, args.keys, args.timings)
    for path in write_outputs(runs, args.out or args.run_dirs[0] / "report", args.csv):
        print(f"wrote {path}")
    return 0


def print_tables(runs: list[Run], keys: list[str] | None, timings: bool) -> None:
    for i, run in enumerate(runs):
        if len(runs) > 1:
            print(("\n" if i else "") + f"== {run.name} ({run.path})")
        columns = timing_keys(run.rows) if timings else keys or default_keys(run.rows)
        print(table(run.rows, columns))


def write_outputs(runs: list[Run], out: Path, csv_path: Path | None) -> list[Path]:
    written = []
    if csv_path is not None:
        write_csv([(r.name, r.rows) for r in runs], csv_path)
        written.append(csv_path)
    out.mkdir(parents=True, exist_ok=True)
    images = write_plots(runs, out)
    page = out / "report.html"
    page.write_text(render(runs, images), encoding="utf-8")
    return [*written, *images, page]

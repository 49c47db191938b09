"""``python -m cpe.launch sweep [--address URL] [--runs DIR] -- OVERRIDES``: a Hydra-style
sweep (``key=a,b``) on a Ray cluster, one job per point.

Points are numbered as ``python -m cpe.train -m`` numbers them (Hydra's own sweeper
expands the grid) and run one after another, each training with the whole cluster,
into ``<runs>/sweep-<time>/<n>`` with the sweep as their wandb group; the summary table is
written there at the end (docs/sweeps.md). Hydra's Ray launcher plugin pins an old Ray,
so points go through Ray's Job SDK like ``cpe.launch submit``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from cpe.launch.submit import (
    DEFAULT_ADDRESS,
    RUNTIME_ENV,
    Job,
    connect,
    load_runtime_env,
    submit,
    wait,
)
from cpe.launch.sweep import write_summary


def sweep_points(overrides: list[str]) -> list[list[str]]:
    """The grid's points in Hydra's multirun order."""
    # Hydra's BasicSweeper is what `-m` runs; its grid expansion is a static method.
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(overrides)
    return [point for batch in BasicSweeper.split_arguments(parsed, None) for point in batch]


def sweep_jobs(overrides: list[str], runs: Path, stamp: str) -> list[Job]:
    sweep = f"sweep-{stamp}"
    jobs = []
    for n, point in enumerate(sweep_points(overrides)):
        run_dir = str(runs.resolve() / sweep / str(n))
        extra = [f"logging.run_dir={run_dir}", f"logging.wandb_group={sweep}"]
        jobs.append(Job(f"cpe-{sweep}-{n}", run_dir, [*point, *extra]))
    return jobs


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="python -m cpe.launch sweep",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--address", default=DEFAULT_ADDRESS)
    p.add_argument(
        "--runs",
        type=Path,
        default=Path("runs"),
        help="where the sweep folder goes, on storage the cluster's nodes see",
    )
    p.add_argument("--runtime-env", type=Path, default=RUNTIME_ENV)
    p.add_argument("overrides", nargs="*", help="Hydra overrides, swept keys as key=a,b")
    args = p.parse_args(argv)
    jobs = sweep_jobs(args.overrides, args.runs, time.strftime("%Y%m%d-%H%M%S"))
    print(f"{len(jobs)} points into {Path(jobs[0].run_dir).parent}")
    client, env = connect(args.address), load_runtime_env(args.runtime_env)
    failed = []
    for job in jobs:
        submit(client, job, env)
        status = wait(client, job.job_id)
        print(f"job {job.job_id}: {status}")
        if status != "SUCCEEDED":
            failed.append(job.job_id)
    write_summary(Path(jobs[0].run_dir).parent)
    if failed:
        print(f"{len(failed)} of {len(jobs)} points failed: {', '.join(failed)}")
    return 1 if failed else 0

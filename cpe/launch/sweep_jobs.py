"""``python -m cpe.launch sweep [--address URL] [--runs DIR] -- OVERRIDES``: a Hydra-style
sweep (``key=a,b``) on a Ray cluster, one job per point.

Points are numbered as ``python -m cpe.train -m`` numbers them (Hydra's own sweeper
expands the grid) and run one after another, each training with the whole cluster,
into ``<runs>/sweep-<time>/<n>`` with the sweep as their wandb group; the summary table is
written there at the end (docs/sweeps.md). Hydra's Ray launcher plugin pins an old Ray,
so points go through Ray's Job SDK like ``cpe.launch submit``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from cpe.launch.submit import (
    Job,
    cluster_parser,
    connect,
    failure_report,
    load_runtime_env,
    runs_root,
    submit,
    wait,
)
from cpe.launch.sweep import write_summary


def configured_params(overrides: list[str]) -> list[str]:
    """``hydra.sweeper.params`` of the composed config (``+sweep=NAME`` files set them)
    as overrides."""
    from hydra import compose, initialize_config_dir
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from cpe.compose import CONF_DIR

    parsed = OverridesParser.create().parse_overrides(overrides)
    fixed = [o.input_line for o in parsed if not o.is_sweep_override()]  # composable
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=fixed, return_hydra_config=True)
    return [f"{key}={value}" for key, value in (cfg.hydra.sweeper.get("params") or {}).items()]


def sweep_points(overrides: list[str]) -> list[list[str]]:
    """The grid's points in Hydra's multirun order."""
    # Hydra's BasicSweeper is what `-m` runs; its grid expansion is a static method.
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    # As BasicSweeper.sweep does: config params, then the command line (which wins).
    everything = [*configured_params(overrides), *overrides]
    parsed = OverridesParser.create().parse_overrides(everything)
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
    p = cluster_parser("python -m cpe.launch sweep", __doc__)
    args = p.parse_args(argv)
    args.runs = runs_root(p, args)
    jobs = sweep_jobs(args.overrides, args.runs, time.strftime("%Y%m%d-%H%M%S"))
    sweep_dir = Path(jobs[0].run_dir).parent
    print(f"{len(jobs)} points into {sweep_dir}")
    client, env = connect(args.address), load_runtime_env(args.runtime_env)
    failed: dict[str, str] = {}
    for job in jobs:
        submit(client, job, env)
        status = wait(client, job.job_id)
        print(f"job {job.job_id}: {status}")
        if status != "SUCCEEDED":
            failed[job.job_id] = status
    if not write_summary(sweep_dir):
        print(f"no summary here: run python -m cpe.launch summary {sweep_dir} where it is seen")
    for job_id, status in failed.items():
        print(failure_report(client, job_id, status), file=sys.stderr)
    if failed:
        print(f"{len(failed)} of {len(jobs)} points failed: {', '.join(failed)}")
    return 1 if failed else 0

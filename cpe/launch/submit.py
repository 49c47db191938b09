"""``python -m cpe.launch submit [--address URL] [--runs DIR] [--no-wait] -- OVERRIDES``:
one cpe training as a Ray job on a running cluster.

The plain equivalent (what this does, with the job id and run folder chosen for you)::

    ray job submit --address http://127.0.0.1:8265 --runtime-env launch/runtime_env.yaml \\
        -- python -m cpe.train experiment=tiny_cpu logging.run_dir=/shared/runs/my-run

The job runs in Ray's copy of the working dir, which goes when the cluster goes, so the
run folder is an absolute path (``--runs``: a folder every node sees); ``cpe.train``
refuses a relative one inside a job. Ray's Job SDK does the submission; this adds the
runtime env, the run folder, token authentication and the printed outcome.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import yaml

ROOT = Path(__file__).resolve().parents[2]
RUNTIME_ENV = ROOT / "launch" / "runtime_env.yaml"
DEFAULT_ADDRESS = "http://127.0.0.1:8265"
TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")


def cluster_parser(prog: str, doc: str | None) -> argparse.ArgumentParser:
    """The options ``submit`` and ``sweep`` share: where the cluster is, where runs go."""
    p = argparse.ArgumentParser(
        prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--address",
        default=os.environ.get("RAY_API_SERVER_ADDRESS", DEFAULT_ADDRESS),
        help="the cluster's dashboard (Jobs API) address (default: %(default)s)",
    )
    p.add_argument(
        "--runs",
        type=Path,
        help="folder for run folders, on storage the cluster's nodes see (default: ./runs, "
        "for a cluster on this machine only)",
    )
    p.add_argument("--runtime-env", type=Path, default=RUNTIME_ENV)
    p.add_argument("overrides", nargs="*", help="Hydra overrides for cpe.train (after --)")
    return p


def runs_root(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Path:
    """``--runs``; only a cluster on this machine may default to ``./runs``."""
    if args.runs is not None:
        return args.runs
    host = urlparse(args.address if "//" in args.address else f"//{args.address}").hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        parser.error(
            f"--runs is required for the cluster at {args.address}: a folder its nodes see"
        )
    return Path("runs")


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = cluster_parser("python -m cpe.launch submit", __doc__)
    p.add_argument("--no-wait", action="store_true", help="print the job id and return")
    args = p.parse_args(argv)
    args.runs = runs_root(p, args)
    return args


def enable_token_auth() -> str | None:
    """Ray 2.60 clusters started with ``ray start`` use token authentication by default,
    but a client sends the token only when ``RAY_AUTH_MODE=token`` is set. Set it when a
    token is at hand and the user chose no mode; return where the token comes from."""
    if "RAY_AUTH_MODE" in os.environ:
        return None
    for var in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        if os.environ.get(var):
            os.environ["RAY_AUTH_MODE"] = "token"
            return f"${var}"
    default = Path.home() / ".ray" / "auth_token"
    if default.is_file():
        os.environ["RAY_AUTH_MODE"] = "token"
        return str(default)
    return None


def experiment_of(overrides: list[str]) -> str:
    return next((o.split("=", 1)[1] for o in overrides if o.startswith("experiment=")), "demo")


@dataclass(frozen=True)
class Job:
    job_id: str
    run_dir: str
    overrides: list[str]  # what cpe.train gets, logging.run_dir included


def job_plan(overrides: list[str], runs: Path) -> Job:
    """A job id and a run folder named after it under ``runs``; a run folder the user
    gives is kept as it is."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    job_id = f"cpe-{experiment_of(overrides)}-{stamp}-{secrets.token_hex(2)}"
    given = next((o.split("=", 1)[1] for o in overrides if o.startswith("logging.run_dir=")), None)
    if given is not None:
        return Job(job_id, given, overrides)
    run_dir = str(runs.resolve() / job_id)
    return Job(job_id, run_dir, [*overrides, f"logging.run_dir={run_dir}"])


def entrypoint(overrides: list[str]) -> str:
    """The shell command that trains with ``overrides`` (a job's or a RayJob's)."""
    return shlex.join(["python", "-m", "cpe.train", *overrides])


def load_runtime_env(path: Path) -> dict:
    env = yaml.safe_load(path.read_text()) or {}
    if not isinstance(env, dict):
        raise SystemExit(f"error: {path}: a runtime env is a mapping, got {type(env).__name__}")
    env.setdefault("working_dir", str(ROOT))
    return env


def connect(address: str):
    """A Jobs API client for ``address``, with the token sent when one is at hand."""
    token_from = enable_token_auth()
    from ray.job_submission import JobSubmissionClient

    client = JobSubmissionClient(address)
    auth = f" (token from {token_from})" if token_from else ""
    print(f"cluster {address}{auth}")
    return client


#: What the Jobs API answers while a fresh cluster's job agent is still starting.
AGENT_NOT_READY = "No available agent to submit job"


def submit(client, job: Job, runtime_env: dict, agent_wait_s: float = 120.0) -> None:
    """Submit ``job``; a cluster whose job agent is still starting is waited for."""
    deadline = time.monotonic() + agent_wait_s
    while True:
        try:
            client.submit_job(
                entrypoint=entrypoint(job.overrides),
                submission_id=job.job_id,
                runtime_env=runtime_env,
            )
            break
        except RuntimeError as exc:
            if AGENT_NOT_READY not in str(exc) or time.monotonic() > deadline:
                raise
            print("the cluster's job agent is starting; retrying in 2 s", flush=True)
            time.sleep(2.0)
    print(f"job {job.job_id} submitted; run folder: {job.run_dir}")


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    client = connect(args.address)
    job = job_plan(args.overrides, args.runs)
    submit(client, job, load_runtime_env(args.runtime_env))
    print(f"logs: ray job logs --address {args.address} -f {job.job_id}")
    if args.no_wait:
        return 0
    status = wait(client, job.job_id)
    print(f"job {job.job_id}: {status}; run folder: {job.run_dir}")
    if status != "SUCCEEDED":
        print(failure_report(client, job.job_id, status), file=sys.stderr)
        return 1
    return 0


def failure_report(client, job_id: str, status: str, lines: int = 30) -> str:
    """Why a job did not succeed: Ray's status message and the last ``lines`` of its log,
    so the reason is in the final lines of a long streamed output."""
    message = client.get_job_info(job_id).message or ""
    tail = client.get_job_logs(job_id).splitlines()[-lines:]
    return "\n".join([f"job {job_id} {status}: {message}".rstrip(), *tail])


def wait(client, job_id: str) -> str:
    """Stream the job's log to stdout until it ends; its final status."""
    import asyncio

    async def stream() -> None:
        async for lines in client.tail_job_logs(job_id):
            sys.stdout.write(lines)
            sys.stdout.flush()

    asyncio.run(stream())
    while (status := str(client.get_job_status(job_id).value)) not in TERMINAL:
        time.sleep(1.0)  # the log can close a moment before the status is final
    return status

"""The submit helper's plan: job id, run folder, entrypoint, runtime env, token auth."""

from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from cpe.launch import submit
from cpe.launch.submit import enable_token_auth, entrypoint, job_plan, load_runtime_env


def test_the_run_folder_is_absolute_and_named_like_the_job(tmp_path):
    job = job_plan(["experiment=tiny_cpu", "trainer.total_steps=1"], tmp_path)
    assert job.job_id.startswith("cpe-tiny_cpu-")
    assert job.run_dir == str(tmp_path.resolve() / job.job_id)
    assert job.overrides == [
        "experiment=tiny_cpu",
        "trainer.total_steps=1",
        f"logging.run_dir={job.run_dir}",
    ]


def test_a_given_run_folder_is_kept(tmp_path):
    given = ["logging.run_dir=/shared/runs/mine"]
    job = job_plan(given, tmp_path)
    assert (job.run_dir, job.overrides) == ("/shared/runs/mine", given)


def test_overrides_reach_the_entrypoint_quoted():
    assert entrypoint(["experiment=demo", "logging.run_dir=/a b/${now:%H}"]) == (
        "python -m cpe.train experiment=demo 'logging.run_dir=/a b/${now:%H}'"
    )


def test_the_shipped_runtime_env_keeps_local_state_home():
    env = load_runtime_env(submit.RUNTIME_ENV)
    assert env["working_dir"] == str(submit.ROOT)
    assert {".venv/", ".cache/", "runs/", ".git/"} <= set(env["excludes"])
    assert "env_vars" not in env  # cpe sets its actors' env; Ray refuses the same key twice


def test_a_runtime_env_that_is_not_a_mapping_is_named(tmp_path):
    bad = tmp_path / "env.yaml"
    bad.write_text(yaml.safe_dump(["working_dir"]))
    with pytest.raises(SystemExit, match=f"{bad}: a runtime env is a mapping"):
        load_runtime_env(bad)


@pytest.fixture
def no_auth_env(monkeypatch, tmp_path):
    for var in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        monkeypatch.setenv(var, "")  # recorded, so what the helper sets is undone after
        monkeypatch.delenv(var)
    monkeypatch.setattr(Path, "home", lambda: tmp_path)
    return tmp_path


def test_token_auth_follows_a_token_file(no_auth_env, monkeypatch):
    import os

    assert enable_token_auth() is None and "RAY_AUTH_MODE" not in os.environ
    (no_auth_env / ".ray").mkdir()
    (no_auth_env / ".ray" / "auth_token").write_text("t")
    assert enable_token_auth() == str(no_auth_env / ".ray" / "auth_token")
    assert os.environ["RAY_AUTH_MODE"] == "token"


def test_a_chosen_auth_mode_is_respected(no_auth_env, monkeypatch):
    import os

    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    monkeypatch.setenv("RAY_AUTH_TOKEN", "t")
    assert enable_token_auth() is None
    assert os.environ["RAY_AUTH_MODE"] == "disabled"


def test_a_job_sweep_numbers_points_as_hydra_multirun_does(tmp_path):
    from cpe.launch.sweep_jobs import sweep_jobs

    jobs = sweep_jobs(
        [
            "experiment=tiny_cpu",
            "algorithm.selection=random,conditional",
            "algorithm.edit_ratio=0.25,0.5",
        ],
        tmp_path,
        "20261130-101500",
    )
    sweep = tmp_path.resolve() / "sweep-20261130-101500"
    assert [j.job_id for j in jobs] == [f"cpe-sweep-20261130-101500-{n}" for n in range(4)]
    assert [j.run_dir for j in jobs] == [str(sweep / str(n)) for n in range(4)]
    assert jobs[2].overrides == [
        "experiment=tiny_cpu",
        "algorithm.selection=conditional",
        "algorithm.edit_ratio=0.25",
        f"logging.run_dir={sweep / '2'}",
        "logging.wandb_group=sweep-20261130-101500",
    ]


def test_the_launch_command_names_its_subcommands(capsys):
    from cpe.launch.__main__ import main

    assert main(["deploy"]) == 2
    assert "usage: python -m cpe.launch {submit,sweep,k8s,summary}" in capsys.readouterr().err


def test_a_remote_cluster_needs_a_runs_folder_it_sees(capsys):
    from cpe.launch.submit import parse_args

    assert parse_args(["--", "experiment=tiny_cpu"]).runs == Path("runs")
    assert parse_args(["--address=http://localhost:8265"]).runs == Path("runs")
    assert parse_args(["--address=http://head:8265", "--runs=/shared"]).runs == Path("/shared")
    with pytest.raises(SystemExit):
        parse_args(["--address=http://head:8265", "--", "experiment=tiny_cpu"])
    assert "--runs is required for the cluster at http://head:8265" in capsys.readouterr().err


def test_a_sweep_file_grid_expands_and_the_command_line_wins():
    from cpe.launch.sweep_jobs import sweep_points

    assert sweep_points(["experiment=tiny_cpu", "+sweep=selection"]) == [
        ["algorithm.selection=random", "experiment=tiny_cpu", "+sweep=selection"],
        ["algorithm.selection=reward_rank", "experiment=tiny_cpu", "+sweep=selection"],
        ["algorithm.selection=conditional", "experiment=tiny_cpu", "+sweep=selection"],
    ]
    points = sweep_points(
        ["+sweep=edit_ratio", "algorithm.edit_ratio=0.1,0.2", "algorithm=cpe,ppo"]
    )
    assert points == [
        ["algorithm.edit_ratio=0.1", "+sweep=edit_ratio", "algorithm=cpe"],
        ["algorithm.edit_ratio=0.1", "+sweep=edit_ratio", "algorithm=ppo"],
        ["algorithm.edit_ratio=0.2", "+sweep=edit_ratio", "algorithm=cpe"],
        ["algorithm.edit_ratio=0.2", "+sweep=edit_ratio", "algorithm=ppo"],
    ]


class StartingCluster:
    """A Jobs API client whose job agent answers after ``busy`` refusals."""

    def __init__(self, busy: int, error: str = "No available agent to submit job, try later"):
        self.busy, self.error, self.submitted = busy, error, []

    def submit_job(self, **kwargs):
        if self.busy:
            self.busy -= 1
            raise RuntimeError(f"Request failed with status code 500: {self.error}.")
        self.submitted.append(kwargs)


def test_submit_waits_for_a_starting_job_agent(monkeypatch, tmp_path):
    monkeypatch.setattr(submit.time, "sleep", lambda s: None)
    client, job = StartingCluster(busy=2), job_plan(["experiment=tiny_cpu"], tmp_path)
    submit.submit(client, job, {"working_dir": "."})
    assert [k["submission_id"] for k in client.submitted] == [job.job_id]


def test_other_submit_errors_are_not_retried(tmp_path):
    client = StartingCluster(busy=1, error="runtime_env is invalid")
    with pytest.raises(RuntimeError, match="runtime_env is invalid"):
        submit.submit(client, job_plan([], tmp_path), {})
    assert client.submitted == []


class FinishedCluster:
    """The Job SDK calls a failure report makes, on a job that ended."""

    def __init__(self, message: str, log: str):
        self.message, self.log = message, log

    def get_job_info(self, job_id):
        return SimpleNamespace(message=self.message)

    def get_job_logs(self, job_id):
        return self.log


def test_a_failed_job_is_reported_with_ray_message_and_its_last_log_lines():
    log = "".join(f"line {i}\n" for i in range(100)) + "ValueError: data.train_path missing\n"
    client = FinishedCluster("Job entrypoint command failed with exit code 1", log)
    report = submit.failure_report(client, "cpe-x-0", "FAILED", lines=3)
    assert report.splitlines() == [
        "job cpe-x-0 FAILED: Job entrypoint command failed with exit code 1",
        "line 98",
        "line 99",
        "ValueError: data.train_path missing",
    ]

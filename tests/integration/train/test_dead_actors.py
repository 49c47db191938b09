"""Real process kills (SIGKILL) in the middle of a step.

- A rollout engine and a GRM engine killed while they generate in step 2: both are
  rebuilt, the rollout one gets the policy of step 1, the calls are re-issued, and the
  run's samples equal an uninterrupted run's (same prompts, answers, critiques, edits).
- A policy rank killed while it trains in step 2: ``python -m cpe.train`` stops within
  seconds with a LearnerDied line naming the rank and its pid and exits 1;
  ``trainer.resume=auto`` then finishes the run, every step on the prompts the data
  cursor deals it (a Python GRM here: this test needs no GRM engine).

A victim is found by its Ray process title (``ray::VLLMEngine.generate`` while it runs
``generate``), polled until the call is under way, so every kill lands inside a call.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from cpe.trainer.metrics import read_metrics

STEPS = 2
OVERRIDES = [
    f"trainer.total_steps={STEPS}",
    "trainer.save_every=1",
    "trainer.keep_checkpoints=5",
    "logging.sample_rows=64",  # every original of a step, not the first few
]
# A GRM that is a Python function: the learner test needs no GRM engine.
PYTHON_GRM = [
    "grm=python",
    "grm.python_function=cpe.reward.rules:letter_reward",
    "cluster.pools.grm.engines=0",
]
KILL_WITHIN_S = 600  # the victim's call must start by then (a loaded 2-core box is slow)
LEARNER_DEATH_REPORTED_S = 30  # kill -> the run has exited with its message


def _title(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return b""


def kill_in_call(pid: int, call: str, timeout_s: float = KILL_WITHIN_S) -> float:
    """SIGKILL ``pid`` once its process title shows it running ``call``
    (``Class.method``); returns when it was killed."""
    wanted = f"ray::{call}".encode()
    deadline = time.monotonic() + timeout_s
    while not _title(pid).startswith(wanted):
        if time.monotonic() > deadline:
            raise TimeoutError(f"pid {pid} never ran {call}")
        time.sleep(0.002)
    os.kill(pid, signal.SIGKILL)
    return time.monotonic()


class Killer(threading.Thread):
    """Kills each ``(pid, call)`` in turn, each once it runs that call."""

    def __init__(self, victims: list[tuple[int, str]]):
        super().__init__(daemon=True)
        self.victims, self.killed_at, self.error = victims, [], None

    def run(self) -> None:
        try:
            for pid, call in self.victims:
                self.killed_at.append(kill_in_call(pid, call))
        except Exception as exc:  # noqa: BLE001 - reported by the test after join
            self.error = exc


def _samples(run_dir: Path) -> list[list[dict]]:
    return [
        [json.loads(line) for line in (run_dir / "samples" / f"step_{s:06d}.jsonl").open()]
        for s in range(1, STEPS + 1)
    ]


def _config(run_dir: Path, *extra: str):
    from cpe.compose import load_config

    quiet = ["logging.wandb_mode=disabled", "logging.progress=false"]
    return load_config(["experiment=tiny_cpu", f"logging.run_dir={run_dir}", *quiet, *extra])


def _build(run_dir: Path, *extra: str):
    from cpe.trainer.preflight import load_split, resume_checkpoint
    from cpe.trainer.system import build_driver

    cfg = _config(run_dir, *OVERRIDES, *extra)
    train = load_split("bundled:train", None, None, None)
    return build_driver(cfg, train, STEPS, resume_checkpoint(cfg))


def _fit(run_dir: Path, *extra: str) -> None:
    driver, system = _build(run_dir, *extra)
    try:
        driver.fit()
    finally:
        driver.logger.close()
        system.shutdown()


@pytest.fixture(scope="module")
def straight_run(ray_session, tmp_path_factory):
    """The uninterrupted run every faulty one is compared with (tiny_cpu, GRM on vLLM)."""
    run_dir = tmp_path_factory.mktemp("straight")
    _fit(run_dir)
    return run_dir


@pytest.mark.slow
def test_killed_rollout_and_grm_engines_are_rebuilt_and_the_run_matches(
    straight_run, tmp_path, caplog
):
    driver, system = _build(tmp_path)
    try:
        driver.timer.start()
        driver.run_step()
        rollout_pid = system.rollout.health()[0]["pid"]
        grm_pid = system.grm_pool.health()[0]["pid"]
        # Step 2 generates its answers (rollout engine), then critiques them (GRM engine).
        killer = Killer([(rollout_pid, "VLLMEngine.generate"), (grm_pid, "VLLMEngine.generate")])
        killer.start()
        with caplog.at_level(logging.WARNING, logger="cpe.faults"):
            driver.run_step()
        killer.join()
        assert killer.error is None and len(killer.killed_at) == 2
        new_pids = [system.rollout.health()[0]["pid"], system.grm_pool.health()[0]["pid"]]
    finally:
        driver.logger.close()
        system.shutdown()

    assert new_pids[0] != rollout_pid and new_pids[1] != grm_pid
    rows = read_metrics(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in rows] == [1, 2]
    assert [r["faults/engine_restarts"] for r in rows] == [0.0, 2.0]
    warnings = [r.getMessage() for r in caplog.records if r.name == "cpe.faults"]
    assert [w.split(" (")[0] for w in warnings] == [
        "rollout engine 0 died during generate at step 2",
        "grm engine 0 died during generate at step 2",
    ]
    # Same prompts, and the same answers: the rebuilt rollout engine sampled with the
    # policy of step 1, not the base model; critiques, edits and scores follow.
    assert _samples(tmp_path) == _samples(straight_run)


@pytest.mark.slow
def test_a_killed_learner_rank_stops_the_run_at_once_and_resume_finishes_it(ray_session, tmp_path):
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "cpe.train", "experiment=tiny_cpu", f"logging.run_dir={run_dir}"]
    cmd += ["logging.wandb_mode=disabled", "logging.progress=false", *OVERRIDES, *PYTHON_GRM]
    log_path = tmp_path / "killed_run.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        step_1 = run_dir / "checkpoints" / "step_000001" / "COMPLETE"
        pid = _wait_for_policy_rank(proc, step_1)
        killed_at = kill_in_call(pid, "PolicyWorker.train_step")
        rc = proc.wait(timeout=LEARNER_DEATH_REPORTED_S)
        elapsed = time.monotonic() - killed_at
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    output = log_path.read_text()
    assert rc == 1, output[-3000:]
    assert elapsed < LEARNER_DEATH_REPORTED_S
    banner = (
        rf"cpe FAILED: LearnerDied: policy rank [01] \(pid {pid}\) died during train at step 2;"
    )
    assert re.search(banner, output), output[-3000:]
    assert "resume from the last checkpoint with trainer.resume=auto" in output
    assert not (run_dir / "checkpoints" / "step_000002").exists()

    _fit(run_dir, *PYTHON_GRM, "trainer.resume=auto")
    assert [r["step"] for r in read_metrics(run_dir / "metrics.jsonl")] == [1, 2]
    # Step 1 from the killed run, step 2 from the resumed one: the cursor's prompts.
    got = [list(dict.fromkeys(row["id"] for row in rows)) for rows in _samples(run_dir)]
    assert got == _cursor_ids(_config(run_dir, *OVERRIDES))


def _cursor_ids(cfg) -> list[list[str]]:
    """The prompt ids of each step, as the data cursor deals them."""
    from cpe.data.cursor import PromptCursor
    from cpe.trainer.preflight import load_split

    train = load_split("bundled:train", None, None, None)
    cursor = PromptCursor(train, cfg.trainer.rollout_batch_prompts, seed=cfg.data.seed)
    return [[r.id for r in cursor.next_batch()] for _ in range(STEPS)]


def _wait_for_policy_rank(proc: subprocess.Popen, marker: Path) -> int:
    """A policy rank of ``proc``'s own Ray (its session) once ``marker`` exists."""
    deadline = time.monotonic() + KILL_WITHIN_S
    while not marker.exists():
        assert proc.poll() is None, "the run exited before its first checkpoint"
        assert time.monotonic() < deadline, "no checkpoint in time"
        time.sleep(0.2)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and _title(int(entry.name)).startswith(b"ray::PolicyWorker"):
            try:
                if os.getsid(int(entry.name)) == proc.pid:
                    return int(entry.name)
            except ProcessLookupError:
                continue
    raise AssertionError("no policy rank found in the run's session")

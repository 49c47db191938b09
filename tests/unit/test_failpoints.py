"""Fault injection points: a named point at a named step kills the process, nothing else."""

import os
import subprocess
import sys

import pytest

from cpe import failpoints

PROBE = (
    "from cpe import failpoints; failpoints.at_step(2); failpoints.point('update'); print('alive')"
)


def run_probe(fault: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != failpoints.ENV}
    if fault is not None:
        env[failpoints.ENV] = fault
    return subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True)


@pytest.mark.parametrize("fault", [None, "update:3", "generate:2", "checkpoint:2"])
def test_a_point_not_named_for_this_step_lets_the_process_live(fault):
    done = run_probe(fault)
    assert (done.returncode, done.stdout) == (0, "alive\n")


def test_the_named_point_at_the_named_step_is_a_sigkill():
    done = run_probe("update:2")
    assert done.returncode == -9 and done.stdout == ""


@pytest.mark.parametrize("spec", ["update", "update:x", "train:2", ":2"])
def test_a_malformed_fault_is_named(monkeypatch, spec):
    monkeypatch.setenv(failpoints.ENV, spec)
    with pytest.raises(ValueError, match=f"CPE_FAILPOINT={spec!r}"):
        failpoints.planned()

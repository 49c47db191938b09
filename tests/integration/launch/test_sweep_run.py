"""A real Hydra multirun of tiny trainings: two points, two run folders, one summary
of the swept key only; a point's folder then refuses a resume under other settings.
(Summaries of several swept keys: tests/unit/launch/test_sweep.py.)"""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest
import yaml

pytestmark = pytest.mark.slow

POINTS = ["random", "conditional"]
RATIO = 0.25  # set for every point: not a swept key


def _train(*args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cpe.train", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_a_two_point_sweep_gives_two_runs_and_a_summary_of_the_swept_key(tiny_training, tmp_path):
    sweep = tmp_path / "sweep"
    done = _train(
        "-m",
        *tiny_training,
        "algorithm.selection=random,conditional",
        f"algorithm.edit_ratio={RATIO}",
        f"hydra.sweep.dir={sweep}",
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for n, selection in enumerate(POINTS):
        config = yaml.safe_load((sweep / str(n) / "config.yaml").read_text())
        assert config["algorithm"]["selection"] == selection
        assert config["algorithm"]["edit_ratio"] == RATIO
        assert config["logging"]["run_dir"] == str(sweep / str(n))
        assert config["logging"]["wandb_group"] == "sweep"
        assert (sweep / str(n) / "metrics.jsonl").read_text().count("\n") == 1
    with (sweep / "summary.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["point"], r["algorithm.selection"]) for r in rows] == [
        (str(n), s) for n, s in enumerate(POINTS)
    ]
    assert "algorithm.edit_ratio" not in rows[0]
    for n, row in enumerate(rows):
        last = json.loads((sweep / str(n) / "metrics.jsonl").read_text())
        assert row["steps"] == "1"
        assert float(row["original/reward_mean"]) == last["original/reward_mean"]

    # Continuing point 0 (random, 0.25) with another selection stops before Ray, naming it.
    before = (sweep / "0" / "metrics.jsonl").read_text()
    refused = _train(
        *tiny_training,
        "algorithm.selection=conditional",
        "algorithm.edit_ratio=0.25",
        f"logging.run_dir={sweep / '0'}",
        "trainer.total_steps=2",
        timeout=120,
    )
    assert refused.returncode == 2
    assert (
        f"logging.run_dir: {sweep / '0'} holds a run made with other settings "
        "(algorithm.selection: 'random' there, 'conditional' now)"
    ) in refused.stderr
    assert (sweep / "0" / "metrics.jsonl").read_text() == before

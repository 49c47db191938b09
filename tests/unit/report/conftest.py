"""Two small synthetic run folders: a cpe run with an eval on step 2 and a results.json,
and a ppo run (no edit/*, no eval) whose config differs in algorithm.mode only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

CONFIG = {
    "name": "demo",
    "algorithm": {"mode": "cpe", "gamma": 1.0},
    "grm": {"weights": [0.35, 0.4, 0.25]},
    "trainer": {"total_steps": 3, "eval_every": 2},
}
EVAL_RESULTS = {
    "name": "bundled-eval",
    "eval_set": "bundled:eval",
    "records": 40,
    "reference": "initial",
    "judge": "vllm:/path/to/judge",
    "lc_method": "alpaca_eval",
    "seconds": 321.0,
    "policies": {
        "step_000003": {
            "path": "checkpoints/step_000003",
            "win_rate": 55.5,
            "win_rate_se": 3.1,
            "lc_win_rate": 52.25,
            "lc_win_rate_se": None,
            "judged": 40,
            "invalid": 2,
            "length_tokens": 120.5,
            "persona_mention_share": 0.2,
            "novel_key": 7.75,
            "nested": {"ignored": 1},
        },
        "<initial>": {"win_rate": 50.0},
    },
}


def _row(step: int, edits: bool) -> dict:
    row = {
        "step": step,
        "original/reward_mean": 2.0 + step / 10,
        "original/helpfulness": 3.0,
        "original/personalization": 2.0,
        "original/naturalness": 2.5,
        "original/length_tokens": 90.0 + step,
        "grm/invalid_rate": 0.0,
        "time/generate": 10.0,
        "time/update": 20.0 + step,
    }
    if edits:
        row |= {
            "edit/reward_mean": 2.5,
            "edit/helpfulness": 3.5,
            "edit/personalization": 2.5,
            "edit/naturalness": None,
            "edit/length_tokens": 85.0,
            "selected_edit/reward_mean": 2.75,
            "batch/selected_edits": 4.0,
            "time/edit": 5.0,
        }
    return row


def make_run(root: Path, name: str, mode: str, edits: bool, eval_step: int | None) -> Path:
    run = root / name
    run.mkdir(parents=True)
    config = {**CONFIG, "algorithm": {**CONFIG["algorithm"], "mode": mode}}
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    rows = [_row(step, edits) for step in (1, 2, 3)]
    if eval_step is not None:
        rows[eval_step - 1] |= {
            "eval/win_rate": 61.5,
            "eval/win_rate_se": 4.0,
            "eval/lc_win_rate": 58.0,
            "eval/invalid": 1,
        }
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (run / "summary.json").write_text(json.dumps({"steps": 3, "wall_s": 12.5}))
    return run


@pytest.fixture
def cpe_run(tmp_path: Path) -> Path:
    run = make_run(tmp_path, "cpe-run", "cpe", edits=True, eval_step=2)
    results = run / "eval" / "x" / "results.json"
    results.parent.mkdir(parents=True)
    results.write_text(json.dumps(EVAL_RESULTS))
    (results.parent / "results.md").write_text("| policy | win rate |\n")
    return run


@pytest.fixture
def ppo_run(tmp_path: Path) -> Path:
    return make_run(tmp_path, "ppo-run", "ppo", edits=False, eval_step=None)

"""python -m cpe.sft end to end on the tiny model: real Ray, DeepSpeed ranks on the
policy pool, the HF folder it writes loaded by vLLM as the GRM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sft_data import grm_rows, pair_rows, sft_args, write_jsonl

from cpe.compose import load_config
from cpe.data import load_bundled
from cpe.sft.__main__ import main

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def train_records():
    return load_bundled("train")


def metrics(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_grm_sft_lowers_held_out_loss_and_the_grm_serves_parseable_scores(
    ray_session, train_records, tmp_path
):
    train = write_jsonl(tmp_path / "grm_sft.jsonl", grm_rows(train_records[:32], seed=0))
    held = write_jsonl(tmp_path / "grm_sft_eval.jsonl", grm_rows(train_records[48:56], seed=1))
    out = tmp_path / "grm"
    args = sft_args(
        out, "sft.task=grm", f"sft.train_path={train}", f"sft.eval_path={held}",
        "sft.epochs=3", "sft.batch_examples=8", "sft.save_every=100",
    )  # fmt: skip
    assert main(args) == 0
    rows = metrics(out)
    first, last = rows[0], rows[-1]
    assert first["step"] == 0 and last["step"] == 12  # 32 / 8 x 3 epochs
    assert last["eval/loss"] < 0.7 * first["eval/loss"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["updates"] == 12 and summary["skipped_over_max_len"] == 0

    from cpe.eval.host import EngineHost
    from cpe.prompts import PromptSet

    cfg = load_config(["experiment=tiny_cpu", f"model.grm.path={out / 'model'}"])
    with EngineHost(cfg) as host:
        grm = host.grm(PromptSet.load())
        items = [(rec, "warm kind clear useful") for rec in train_records[60:64]]
        results = grm.score(items)
    assert all(r.valid and r.judgement.valid for r in results), [r.error for r in results]


def test_bt_reward_model_ranks_held_out_pairs_well_above_chance(
    ray_session, train_records, tmp_path
):
    pairs = write_jsonl(tmp_path / "pairs.jsonl", pair_rows(train_records[:96], seed=0))
    out = tmp_path / "bt"
    args = sft_args(
        out, "sft.task=bt", f"sft.train_path={pairs}", "sft.eval_share=0.25",
        "sft.epochs=2", "sft.batch_examples=12", "sft.save_every=100",
    )  # fmt: skip
    assert main(args) == 0
    rows = metrics(out)
    assert rows[-1]["eval/pairs"] >= 16
    assert rows[-1]["eval/accuracy"] >= 0.85, rows[-1]
    assert rows[-1]["eval/bt_loss"] < rows[0]["eval/bt_loss"]

    from cpe.reward.bt_model import load_reward_model

    model, norm = load_reward_model(out / "model")
    assert norm.answers == 2 * json.loads((out / "summary.json").read_text())["train_items"]
    assert norm.std > 0


def test_a_killed_policy_sft_continues_from_its_checkpoint_without_repeating_updates(
    train_records, tmp_path
):
    """The paper's policy initialisation (chosen answers), killed with SIGKILL once its
    second checkpoint is complete, then started again with the same command."""
    pairs = write_jsonl(tmp_path / "pairs.jsonl", pair_rows(train_records[:24], seed=2))
    out = tmp_path / "policy"
    args = sft_args(
        out, "sft.task=policy", f"sft.train_path={pairs}", "sft.eval_share=0.2",
        "sft.batch_examples=4", "sft.save_every=2", "sft.epochs=2",
    )  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "cpe.sft", *args]
    proc = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)
    try:
        checkpoint = out / "checkpoints" / "step_000004" / "COMPLETE"
        deadline = time.time() + 300
        while not checkpoint.exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.2)
        assert checkpoint.exists(), "no second checkpoint before the kill"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    killed_at = max(r["step"] for r in metrics(out))
    assert not (out / "model").exists()

    done = subprocess.run(command, cwd=ROOT, env=env, timeout=600)
    assert done.returncode == 0
    rows = metrics(out)
    steps = [r["step"] for r in rows]
    total = json.loads((out / "summary.json").read_text())["updates"]
    assert steps == sorted(set(steps)) == list(range(0, total + 1)), (killed_at, steps)
    assert (out / "model" / "config.json").exists()
    assert rows[-1]["eval/loss"] < rows[0]["eval/loss"]

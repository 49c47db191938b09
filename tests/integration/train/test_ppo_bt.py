"""The paper's PPO + Bradley-Terry baseline through the real system: a BT scorer actor on
the GRM pool rewards the rollouts, and its rewards are exactly what the reward model gives
the logged answers in-process."""

from __future__ import annotations

import json
import math

import pytest

from cpe.trainer.metrics import read_metrics


def test_ppo_with_a_bt_reward_model(ray_session, tiny_config, train_in_process, tmp_path):
    from transformers import AutoTokenizer

    from cpe.models.paths import resolve_model_path
    from cpe.models.tiny_rm import build_tiny_reward_model
    from cpe.prompts import PromptSet
    from cpe.reward.bt_backend import BTScorer
    from cpe.reward.bt_model import scored_ids
    from cpe.trainer.preflight import load_split

    rm = build_tiny_reward_model(tmp_path / "rm", resolve_model_path("fixture:tiny"), 0.5, 2.0)
    run = tmp_path / "run"
    cfg = tiny_config(
        run,
        "algorithm=ppo",
        "grm=bt",
        f"model.grm.path={rm}",
        "trainer.total_steps=2",
        "trainer.save_every=2",
        "logging.sample_rows=8",
    )
    train_in_process(cfg, 2)
    rows = read_metrics(run / "metrics.jsonl")
    assert [r["step"] for r in rows] == [1, 2]
    for row in rows:
        assert row["grm/invalid"] == 0 and row["grm/results"] == 8
        assert math.isfinite(row["original/reward_mean"])
        assert "original/helpfulness" not in row and "time/critique" not in row
        assert row["policy/grad_norm"] > 0

    samples = [json.loads(line) for line in (run / "samples" / "step_000001.jsonl").open()]
    assert len(samples) == 8
    records = {r.id: r for r in load_split("bundled:train", None, None, None)}
    tokenizer = AutoTokenizer.from_pretrained(str(rm))
    prompts = PromptSet.from_config(cfg.prompts)
    pairs = [
        scored_ids(tokenizer, prompts, records[s["id"]], s["original"], cfg.grm.max_prompt_tokens)
        for s in samples
    ]
    expected = BTScorer(str(rm)).score(pairs)
    assert [s["original_reward"] for s in samples] == pytest.approx(expected, abs=1e-4)
    assert rows[0]["original/reward_mean"] == pytest.approx(sum(expected) / 8, abs=1e-4)

"""The paper's PPO + Bradley-Terry baseline through the real system: a BT scorer actor on
the GRM pool rewards the rollouts, and its rewards are exactly what the reward model gives
the logged answers in-process. The scorer is SIGKILLed between the two steps: it is
rebuilt on its slot and step 2's rewards are still the model's."""

from __future__ import annotations

import json
import logging
import math
import os
import signal

import pytest

from cpe.trainer.metrics import read_metrics


def _fit_killing_the_scorer_after_step_1(ray, cfg, caplog) -> tuple[int, int]:
    """Both steps; the scorer's pid before and after the kill."""
    from cpe.trainer.preflight import load_split
    from cpe.trainer.system import build_driver

    driver, system = build_driver(cfg, load_split("bundled:train", None, None, None), 2, None)
    try:
        driver.timer.start()
        driver.run_step()
        killed = ray.get(system.grm_pool.actors[0].pid.remote())
        os.kill(killed, signal.SIGKILL)
        with caplog.at_level(logging.WARNING, logger="cpe.faults"):
            driver.run_step()
        return killed, ray.get(system.grm_pool.actors[0].pid.remote())
    finally:
        driver.logger.close()
        system.shutdown()


def test_ppo_with_a_bt_reward_model_and_a_scorer_killed(ray_session, tiny_config, tmp_path, caplog):
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
    killed, rebuilt = _fit_killing_the_scorer_after_step_1(ray_session, cfg, caplog)
    assert rebuilt != killed
    warnings = [r.getMessage() for r in caplog.records if r.name == "cpe.faults"]
    assert [w.split(" (")[0] for w in warnings] == ["grm scorer 0 died during score at step 2"]
    rows = read_metrics(run / "metrics.jsonl")
    assert [r["step"] for r in rows] == [1, 2]
    assert [r["faults/engine_restarts"] for r in rows] == [0.0, 1.0]
    for row in rows:
        assert row["grm/invalid"] == 0 and row["grm/results"] == 8
        assert math.isfinite(row["original/reward_mean"])
        assert "original/helpfulness" not in row and "time/critique" not in row
        assert row["policy/grad_norm"] > 0

    records = {r.id: r for r in load_split("bundled:train", None, None, None)}
    tokenizer = AutoTokenizer.from_pretrained(str(rm))
    prompts = PromptSet.from_config(cfg.prompts)
    in_process = BTScorer(str(rm))
    for step, row in zip((1, 2), rows, strict=True):
        path = run / "samples" / f"step_{step:06d}.jsonl"
        samples = [json.loads(line) for line in path.open()]
        assert len(samples) == 8
        pairs = [
            scored_ids(
                tokenizer, prompts, records[s["id"]], s["original"], cfg.grm.max_prompt_tokens
            )
            for s in samples
        ]
        expected = in_process.score(pairs)
        assert [s["original_reward"] for s in samples] == pytest.approx(expected, abs=1e-4)
        assert row["original/reward_mean"] == pytest.approx(sum(expected) / 8, abs=1e-4)

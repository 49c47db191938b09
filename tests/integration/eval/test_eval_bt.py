"""A Bradley-Terry reward model in evaluation: PersonaFeedback's chosen-vs-rejected
accuracy from BT scorer actors on the GRM pool (no vLLM engine starts)."""

from __future__ import annotations

import json

import pytest
from unit.eval.benchmark_files import write_persona_feedback

from cpe.eval.runner import run_eval

pytestmark = pytest.mark.integration


def test_persona_feedback_accuracy_by_a_bt_reward_model(ray_session, eval_config, tmp_path):
    from cpe.models.paths import resolve_model_path
    from cpe.models.tiny_rm import build_tiny_reward_model

    rm = build_tiny_reward_model(tmp_path / "rm", resolve_model_path("fixture:tiny"))
    root = write_persona_feedback(tmp_path / "pf")
    cfg = eval_config(
        tmp_path / "ev",
        f"eval.data_path={root}",
        "eval.task=preference_grm",
        "algorithm=ppo",
        "grm=bt",
        f"model.grm.path={rm}",
    )
    results = json.loads(run_eval(cfg).read_text())
    row = results["policies"][f"bt:{rm}"]
    assert row["judged"] == 4 and row["invalid"] == 0
    assert 0.0 <= row["accuracy"] <= 1.0
    scores = (tmp_path / "ev" / "scores").glob("*.jsonl")
    rows = [json.loads(line) for path in scores for line in path.open()]
    assert len(rows) == 8 and all(r["valid"] and r["helpfulness"] is None for r in rows)

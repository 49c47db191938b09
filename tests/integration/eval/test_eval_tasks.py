"""The benchmark tasks end to end on the tiny model with real vLLM engines: PersonaFeedback's
chosen-vs-rejected accuracy (judge and GRM) and PersonaMem's multiple choice."""

from __future__ import annotations

import json

import pytest
from unit.eval.benchmark_files import write_persona_feedback, write_persona_mem

from cpe.eval.runner import run_eval

pytestmark = pytest.mark.integration


def test_persona_feedback_accuracy_by_judge_and_by_grm(ray_session, eval_config, tmp_path):
    root = write_persona_feedback(tmp_path / "pf")
    for task in ("preference_judge", "preference_grm"):
        cfg = eval_config(tmp_path / task, f"eval.data_path={root}", f"eval.task={task}")
        results = json.loads(run_eval(cfg).read_text())
        row = results["policies"]["vllm:fixture:tiny"]  # the judge, then the GRM
        assert row["judged"] + row["invalid"] == 4
        assert set(row) >= {"accuracy", "accuracy general/easy", "accuracy spedific/easy"}
        assert 0.0 <= row["accuracy"] <= 1.0
        assert results["task"] == task


def test_persona_mem_accuracy_by_question_type(ray_session, eval_config, tmp_path):
    questions = write_persona_mem(tmp_path / "pm")
    cfg = eval_config(
        tmp_path / "ev",
        f"eval.data_path={questions}",
        "eval.task=multiple_choice",
        "eval.policies=[fixture:tiny]",
        "rollout.eval_temperature=0",
    )
    row = json.loads(run_eval(cfg).read_text())["policies"]["tiny"]
    assert row["total"] == 4 and 0 <= row["correct"] <= 4 - row["unanswered"]
    assert {"accuracy latest", "accuracy recall"} <= set(row)
    answers = (tmp_path / "ev" / "answers" / "tiny.jsonl").read_text().splitlines()
    assert len(answers) == 4 and all("letter" in json.loads(a) for a in answers)

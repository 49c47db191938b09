"""TrainingEvaluator (trainer.eval_every) over a fake answerer and judge: the initial
policy's answers before step 1, eval rows per step, results kept across a resume."""

from __future__ import annotations

import json

import pytest
from unit.eval.eval_fakes import FakeAnswers, FakeJudge

from cpe.compose import load_config
from cpe.data.records import Record
from cpe.eval.evaluation import EvalSettings, Evaluation
from cpe.eval.plan import judgment_meta, resolve_reference
from cpe.trainer.evaluator import TrainingEvaluator

pytestmark = pytest.mark.unit

RECORDS = [Record(id=f"r{i}", persona={"job": "nurse"}, question=f"q{i}?") for i in range(4)]


def _evaluator(tmp_path, answers):
    cfg = load_config(
        [
            "experiment=tiny_cpu",
            f"logging.run_dir={tmp_path}",
            "eval.lc_method=length_only",
            "trainer.eval_every=2",
        ]
    )
    folder = tmp_path / "eval" / "train"
    ev = Evaluation(folder, RECORDS, EvalSettings("length_only", True, False, progress=False))
    reference = resolve_reference(cfg, RECORDS)
    meta = judgment_meta(cfg, reference)
    return TrainingEvaluator(cfg, ev, answers, FakeJudge("TRAINED"), reference, meta)


def test_initial_answers_first_then_eval_rows_kept_across_a_resume(tmp_path):
    answers = FakeAnswers("INITIAL")
    evaluator = _evaluator(tmp_path, answers)
    evaluator.prepare(0)
    assert len(answers.asked) == len(RECORDS)
    answers.tag = "TRAINED"
    row = evaluator.run(2)
    # the trained answer always wins: pr -> 0.9, rp -> 1 - 0.3
    assert row["eval/win_rate"] == pytest.approx(80.0)
    assert row["eval/judged"] == 4 and row["eval/invalid"] == 0
    assert {"eval/lc_win_rate", "eval/length_tokens", "eval/persona_mention_share"} <= set(row)
    assert evaluator.due(2) and evaluator.due(4) and not evaluator.due(3)

    evaluator.run(4)
    resumed = _evaluator(tmp_path, FakeAnswers("TRAINED"))
    resumed.prepare(3)  # resumed from checkpoint 3: step 4's evaluation is stale
    folder = tmp_path / "eval" / "train"
    assert not (folder / "answers" / "step_4.jsonl").exists()
    assert not list((folder / "judgments").glob("step_4-*"))
    resumed.run(4)
    resumed.run(6)
    saved = json.loads((folder / "results.json").read_text())
    assert list(saved["policies"]) == ["step_2", "step_4", "step_6"]


def test_a_resume_without_the_initial_answers_stops_with_a_clear_error(tmp_path):
    with pytest.raises(RuntimeError, match="initial policy's eval answers are incomplete"):
        _evaluator(tmp_path, FakeAnswers("X")).prepare(5)

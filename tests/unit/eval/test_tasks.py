"""The preference and multiple-choice tasks' cheap parts: planning (files found and
checked), the accuracy tables, and the multiple-choice answerer over a fake engine."""

import pytest
from benchmark_files import write_persona_feedback, write_persona_mem

from cpe.compose import load_config
from cpe.data.records import Record
from cpe.eval.choice import ChoiceAnswerer, ChoiceTask, contexts_path
from cpe.eval.preference import JudgePreferenceTask, accuracy_by_group
from cpe.prompts import DEFAULT
from cpe.types import Generation, SamplingSpec

pytestmark = pytest.mark.unit


def _cfg(tmp_path, *overrides):
    return load_config(["experiment=tiny_cpu", f"eval.output_dir={tmp_path / 'ev'}", *overrides])


def test_accuracy_by_group_counts_ties_as_half_and_leaves_invalid_out():
    records = [
        Record(id=str(i), persona={}, question="q", meta={"folder": f, "tier": "easy"})
        for i, f in enumerate(["general", "general", "spedific", "spedific"])
    ]
    out = accuracy_by_group(records, {"0": 1.0, "1": 0.5, "2": 0.0, "3": None})
    assert out == {
        "accuracy": 0.5,
        "judged": 3,
        "invalid": 1,
        "accuracy general/easy": 0.75,
        "accuracy spedific/easy": 0.0,
    }


def test_preference_plan_reads_the_published_layout(tmp_path):
    root = write_persona_feedback(tmp_path / "pf")
    cfg = _cfg(tmp_path, f"eval.data_path={root}", "eval.task=preference_judge")
    plan = JudgePreferenceTask().plan(cfg, progress=False)
    assert sorted(plan.answers["chosen"]) == sorted(r.id for r in plan.evaluation.records)
    assert set(plan.answers["rejected"].values()) == {"bad one", "bad two"}
    with pytest.raises(ValueError, match="needs chosen and rejected answers; 64 records"):
        JudgePreferenceTask().plan(_cfg(tmp_path / "b", "eval.task=preference_judge"), False)


def test_choice_plan_finds_contexts_and_the_answerer_reads_letters(tmp_path, tokenizer):
    questions = write_persona_mem(tmp_path / "pm")
    assert contexts_path(str(questions)).name == "shared_contexts_4k.jsonl"
    with pytest.raises(FileNotFoundError, match="expected its contexts beside it"):
        contexts_path(str(tmp_path / "questions_1m.csv"))
    overrides = (
        f"eval.data_path={questions}",
        "eval.task=multiple_choice",
        "eval.policies=[fixture:tiny]",
    )
    cfg = _cfg(tmp_path, *overrides)
    plan = ChoiceTask().plan(cfg, progress=False)
    assert [r.id for r in plan.evaluation.records] == ["q0", "q1", "q2", "q3"]

    class Engine:
        def generate(self, prompt_ids, spec):
            return [[Generation(ids, [1, 2], "I think the answer is (b).")] for ids in prompt_ids]

    answerer = ChoiceAnswerer(Engine(), tokenizer, DEFAULT, SamplingSpec(), plan.items)
    rows = answerer([(r, "default") for r in plan.evaluation.records[:2]])
    assert [row["letter"] for row in rows] == ["b", "b"]
    text = tokenizer.decode(answerer.prompt_ids(plan.evaluation.records[0]))
    assert "switched to piano" in text and "(c) Drums" in text
    with pytest.raises(ValueError, match="longer than rollout.max_prompt_tokens=50"):
        ChoiceTask().plan(
            _cfg(tmp_path / "short", *overrides, "rollout.max_prompt_tokens=50"), False
        )

import json

import pytest
from eval_fakes import FakeAnswers, FakeJudge

from cpe.eval.evaluation import EvalSettings, Evaluation

pytestmark = pytest.mark.unit

META = {"model": "m", "temperature": 0.8}


def _evaluation(tmp_path, records, probe=False):
    return Evaluation(tmp_path, records, EvalSettings("length_only", True, probe, progress=False))


def _run(ev, policy, reference, judge):
    for name, answer in (("ref", reference), ("pol", policy)):
        ev.answers(name, META)
        ev.generate(name, answer)
    cache = ev.judgments("pol", "ref", {"judge": "fake"})
    ev.judge(cache, ev.pairs(ev.answer_texts("pol"), ev.answer_texts("ref")), judge, "judge")
    return ev.metrics("pol", "ref", ev.answer_texts("ref"))


def test_both_orders_average_and_invalid_items_are_counted_not_tied(tmp_path, records):
    # r0: valid both orders; r1: "rp" invalid; r2: both invalid (left out).
    judge = FakeJudge("POLICY", strong=0.9, weak=0.3, invalid={"r1": ("rp",), "r2": ("pr", "rp")})
    m = _run(_evaluation(tmp_path, records), FakeAnswers("POLICY"), FakeAnswers("REF"), judge)
    # r0: pr -> 0.9, rp -> 1 - 0.3 = 0.7, mean 0.8; r1: pr only -> 0.9. Mean 0.85.
    assert m["judged"] == 2 and m["invalid"] == 1 and m["invalid_orders"] == 3
    assert m["win_rate"] == pytest.approx(85.0)
    assert m["win_rate_se"] == pytest.approx(100 * 0.0707106781 / 2**0.5, rel=1e-6)
    assert m["length_tokens"] == 5 and m["records"] == 3
    assert judge.calls == 6


def test_a_second_evaluation_on_the_folder_redoes_nothing(tmp_path, records):
    first = _run(
        _evaluation(tmp_path, records),
        FakeAnswers("POLICY"),
        FakeAnswers("REF"),
        FakeJudge("POLICY"),
    )
    answers, judge = FakeAnswers("POLICY"), FakeJudge("POLICY")
    again = _run(_evaluation(tmp_path, records), answers, FakeAnswers("REF"), judge)
    assert answers.asked == [] and judge.calls == 0
    assert again == first


def test_the_probe_and_the_results_files(tmp_path, records):
    ev = _evaluation(tmp_path, records, probe=True)
    policy = FakeAnswers("POLICY")
    m = _run(ev, policy, FakeAnswers("REF"), FakeJudge("POLICY"))
    assert sorted({v for _, v in policy.asked}) == ["brief", "default", "detailed"]
    assert m["probe_brief_tokens"] == 5 and m["probe_detailed_tokens"] == 10
    assert m["probe_shift_tokens"] == 5
    header = {"name": "x", "eval_set": "s", "reference": "ref", "judge": "fake"}
    path = ev.write(header, {"pol": m})
    saved = json.loads(path.read_text())
    assert saved["policies"]["pol"]["win_rate"] == m["win_rate"]
    table = (tmp_path / "results.md").read_text()
    assert "| pol |" in table and "LC win rate" in table


def test_grm_scores_are_cached_and_averaged_over_valid_outputs(tmp_path, records):
    from cpe.reward import GRMScorer, PythonBackend, format_grm_output

    asked = []

    def rule(persona, question, answer):
        asked.append(question)
        if "cook" in question:
            return "no scores here"
        return format_grm_output("fine", [4, 2, 0] if "sleep" in question else [2, 0, 4])

    ev = _evaluation(tmp_path, records)
    m = _run(ev, FakeAnswers("POLICY"), FakeAnswers("REF"), FakeJudge("POLICY"))
    assert "grm_reward" not in m
    scores = ev.scores("pol", {"grm": "rule"})
    ev.score(scores, ev.answer_texts("pol"), GRMScorer(PythonBackend(rule), retries=0), "GRM")
    m = ev.metrics("pol", "ref", ev.answer_texts("ref"))
    assert m["grm_invalid"] == 1.0
    assert (m["grm_helpfulness"], m["grm_personalization"], m["grm_naturalness"]) == (3, 1, 2)
    # default weights 0.35 / 0.40 / 0.25: (1.4 + 0.8 + 0) and (0.7 + 0 + 1.0)
    assert m["grm_reward"] == pytest.approx((2.2 + 1.7) / 2)
    n = len(asked)
    again = _evaluation(tmp_path, records)
    _run(again, FakeAnswers("POLICY"), FakeAnswers("REF"), FakeJudge("POLICY"))
    scores = again.scores("pol", {"grm": "rule"})
    again.score(scores, again.answer_texts("pol"), GRMScorer(PythonBackend(rule), retries=0), "GRM")
    assert len(asked) == n  # all cached, the invalid one included


def test_judgments_of_other_answers_are_made_again_and_transient_ones_are_not_kept(
    tmp_path, records
):
    from cpe.eval.judges import Verdict

    class Flaky(FakeJudge):
        def judge(self, items):
            out = super().judge(items)
            return [Verdict(None, "transient", "HTTP 503")] + out[1:]

    ev = _evaluation(tmp_path, records)
    first = _run(ev, FakeAnswers("POLICY"), FakeAnswers("REF"), Flaky("POLICY"))
    assert first["invalid_orders"] == 1 and first["judged"] == 3  # r0 kept its other order
    rows = (tmp_path / "judgments" / "pol-vs-ref.jsonl").read_text().splitlines()
    assert len(rows) == 5  # the transient verdict was not cached

    judge = FakeJudge("POLICY")
    again = _evaluation(tmp_path, records)
    _run(again, FakeAnswers("POLICY"), FakeAnswers("REF"), judge)
    assert judge.calls == 1  # only the transient one is asked again

    # Answers regenerated elsewhere (the answers file replaced): every pair is judged anew.
    (tmp_path / "answers" / "pol.jsonl").unlink()
    (tmp_path / "answers" / "pol.meta.json").unlink()
    judge = FakeJudge("NEW")
    third = _evaluation(tmp_path, records)
    m = _run(third, FakeAnswers("NEW"), FakeAnswers("REF"), judge)
    assert judge.calls == 6 and m["win_rate"] == pytest.approx(80.0)


def test_forget_deletes_every_cache_of_a_name(tmp_path, records):
    ev = _evaluation(tmp_path, records)
    _run(ev, FakeAnswers("POLICY"), FakeAnswers("REF"), FakeJudge("POLICY"))
    ev.answers("pol2", META)
    ev.generate("pol2", FakeAnswers("X"))
    ev.forget("pol")
    left = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.json*"))
    assert left == [
        "answers/pol2.jsonl",
        "answers/pol2.meta.json",
        "answers/ref.jsonl",
        "answers/ref.meta.json",
    ]

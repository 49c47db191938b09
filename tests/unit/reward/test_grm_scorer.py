"""GRMScorer policy (modes, retries, invalid results, metrics) over the python backend."""

from __future__ import annotations

import pytest

from cpe.config import GRMConfig
from cpe.reward import GRMError, GRMScorer, PythonBackend, build_grm, format_grm_output
from cpe.reward.python_backend import load_function

CALLS: list[tuple[str, str]] = []


def scripted(persona, question, answer):
    """Test GRM: output depends on the answer; every call is recorded."""
    CALLS.append((question, answer))
    if answer.startswith("bad"):
        return "no scores here"
    if answer.startswith("flaky") and sum(a == answer for _, a in CALLS) < 2:
        return "<critique>retry me</critique>"
    if answer.startswith("silent"):
        return "   "
    if answer.startswith("untagged"):
        return "Shorten it.\n<scores>\nHelpfulness: 1\nPersonalization: 1\nNaturalness: 1"
    if answer.startswith("overshoot"):
        return format_grm_output("Too eager.", [7, 4, -6])
    return format_grm_output(f"critique of {answer}", [2, 4, -2])


@pytest.fixture(autouse=True)
def clear_calls():
    CALLS.clear()


def make(mode="two_call", retries=2, sleeps=None, fn=scripted):
    sleep = sleeps.append if sleeps is not None else (lambda s: None)
    return GRMScorer(PythonBackend(fn), mode=mode, retries=retries, backoff_s=0.5, sleep=sleep)


def test_score_gives_weighted_reward(record):
    result = make().score([(record, "good")])[0]
    assert result.valid and result.attempts == 1 and result.error is None
    assert result.reward == pytest.approx(0.35 * 2 + 0.40 * 4 + 0.25 * -2)
    assert result.judgement.scores == (2, 4, -2) and result.critique == "critique of good"


def test_two_call_critique_needs_only_text_and_carries_no_reward(record):
    scorer = make("two_call")
    assert not scorer.critique_gives_reward
    results = scorer.critique([(record, "bad"), (record, "good")])
    assert [r.valid for r in results] == [True, True]
    assert results[0].critique == "no scores here"  # whole output when the tag is missing
    assert all(r.reward is None for r in results)
    assert len(CALLS) == 2  # no retries: a critique needs no scores block


def test_single_call_critique_carries_reward_and_retries_on_parse(record):
    scorer = make("single_call")
    assert scorer.critique_gives_reward
    good, bad = scorer.critique([(record, "good"), (record, "bad")])
    assert good.valid and good.reward is not None and good.critique == "critique of good"
    assert not bad.valid and bad.reward is None and bad.attempts == 3


def test_critique_without_tag_never_carries_the_scores(record):
    result = make("two_call").critique([(record, "untagged")])[0]
    assert result.valid and result.critique == "Shorten it."


def test_out_of_range_scores_are_invalid_unless_clamped(record):
    strict = make(retries=0).score([(record, "overshoot")])[0]
    assert not strict.valid and strict.reward is None
    assert strict.error == (
        "Helpfulness score '7' is outside [-5, 5]; Naturalness score '-6' is outside [-5, 5]"
    )
    clamped = GRMScorer(PythonBackend(scripted), clamp_scores=True).score([(record, "overshoot")])
    assert clamped[0].valid and clamped[0].judgement.scores == (5, 4, -5)
    assert clamped[0].reward == pytest.approx(0.35 * 5 + 0.40 * 4 + 0.25 * -5)


def test_empty_critique_is_invalid_after_retries(record):
    result = make("two_call", retries=1).critique([(record, "silent")])[0]
    assert not result.valid and result.error == "empty critique" and result.attempts == 2


def test_retries_reask_only_failed_items_with_backoff(record):
    sleeps: list[float] = []
    scorer = make(retries=3, sleeps=sleeps)
    results = scorer.score([(record, "good"), (record, "flaky"), (record, "bad")])
    assert [c[1] for c in CALLS] == ["good", "flaky", "bad", "flaky", "bad", "bad", "bad"]
    assert [r.attempts for r in results] == [1, 2, 4]
    assert [r.valid for r in results] == [True, True, False]
    assert results[2].reward is None  # never 0
    assert sleeps == [0.5, 1.0, 2.0]
    assert scorer.invalid_count == 1 and scorer.attempts_total == 7


def test_metrics_accumulate_and_reset(record):
    scorer = make(retries=0)
    scorer.score([(record, "good"), (record, "bad")])
    scorer.critique([(record, "good")])
    metrics = scorer.metrics()
    assert metrics["grm/results"] == 3 and metrics["grm/invalid"] == 1
    assert metrics["grm/invalid_rate"] == pytest.approx(1 / 3)
    scorer.reset_metrics()
    assert scorer.metrics()["grm/results"] == 0


def test_empty_batch_calls_nothing(record):
    assert make().score([]) == [] and CALLS == []


def test_scorer_rejects_bad_settings():
    with pytest.raises(ValueError, match="grm.mode"):
        make(mode="three_call")
    with pytest.raises(ValueError, match="grm.weights"):
        GRMScorer(PythonBackend(scripted), weights=[1.0])


def test_python_function_errors_name_the_config_key():
    for spec, match in [
        ("nope", "package.module:function"),
        ("no_such_mod_xyz:f", "cannot import"),
        ("cpe.reward.rules:nothing", "no attribute"),
        ("cpe.reward.rules:KEYWORD_ENV", "not callable"),
        ("cpe.reward.rules:not-a-name", "not a valid name"),
    ]:
        with pytest.raises(GRMError, match="grm.python_function") as info:
            load_function(spec)
        assert match in str(info.value)


def test_user_function_bugs_propagate(record):
    def broken(persona, question, answer):
        raise KeyError("interests")

    with pytest.raises(GRMError, match="raised KeyError"):
        make(fn=broken).score([(record, "a")])
    with pytest.raises(GRMError, match="returned int"):
        make(fn=lambda p, q, a: 3).score([(record, "a")])


def test_build_grm_python_from_config(record, monkeypatch):
    monkeypatch.setenv("CPE_RULE_KEYWORD", "sleep")
    cfg = GRMConfig(
        backend="python", mode="single_call", python_function="cpe.reward.rules:keyword_reward"
    )
    scorer = build_grm(cfg)
    best, worst = scorer.score([(record, "sleep " * 5), (record, "rest")])
    assert best.reward == pytest.approx(5.0) and worst.reward == pytest.approx(-5.0)
    assert worst.critique.startswith('Use the word "sleep" more')


def test_build_grm_passes_clamp_scores():
    spec = "cpe.reward.rules:keyword_reward"
    assert not build_grm(GRMConfig(backend="python", python_function=spec)).clamp_scores
    cfg = GRMConfig(backend="python", python_function=spec, clamp_scores=True)
    assert build_grm(cfg).clamp_scores  # end to end: test_clamp_scores_is_wired_from_config


def test_build_grm_errors():
    with pytest.raises(GRMError, match="grm.python_function"):
        build_grm(GRMConfig(backend="python"))
    with pytest.raises(GRMError, match="grm.backend"):
        build_grm(GRMConfig(backend="carrier-pigeon"))
    with pytest.raises(GRMError, match="engine pool"):
        build_grm(GRMConfig(backend="vllm"))


def test_the_trainer_does_not_load_openai_unless_the_openai_backend_is_chosen():
    # With `openai` loaded, wandb prints an advertisement into every run's log.
    import subprocess
    import sys

    code = "import sys, cpe.train, cpe.trainer.system; assert 'openai' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)

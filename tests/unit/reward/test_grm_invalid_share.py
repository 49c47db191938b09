"""grm.max_invalid_share: the threshold arithmetic on hand-made counts, the scorer's
check over its own per-step counters (a real GRMScorer over a python GRM), and the key's
default, validation and way into the makers' settings."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from cpe.compose import load_config, one_line_error
from cpe.reward import GRMError, GRMScorer, PythonBackend, format_grm_output
from cpe.reward.base import invalid_share_error
from cpe.trainer.makers import MakerSettings
from cpe.trainer.run_folder import check_same_run
from cpe.validate import ConfigError


@pytest.mark.parametrize(
    "invalid, total, max_share",
    [(4, 8, 0.5), (0, 8, 0.0), (8, 8, 1.0), (3, 10, 0.3), (0, 0, 0.0), (1, 3, 1 / 3)],
)
def test_at_or_below_the_threshold_goes_on(invalid, total, max_share):
    assert invalid_share_error(invalid, total, max_share, "x") is None


def test_just_above_the_threshold_stops_naming_share_threshold_key_and_error():
    message = invalid_share_error(5, 8, 0.5, "timed out after 2s (after 3 attempts)")
    assert message == (
        "5 of 8 GRM results invalid this step (62.5% > grm.max_invalid_share=50%); "
        "last error: timed out after 2s (after 3 attempts)"
    )
    assert invalid_share_error(4, 10, 0.3, None) == (
        "4 of 10 GRM results invalid this step (40% > grm.max_invalid_share=30%)"
    )
    assert invalid_share_error(1, 100, 0.0, "e") is not None  # 0: any invalid result stops


def test_the_sample_error_is_one_short_line():
    message = invalid_share_error(2, 2, 0.5, "HTTP 502:\n<html>\n" + "x" * 500)
    assert "\n" not in message
    assert message.endswith("last error: " + ("HTTP 502: <html> " + "x" * 500)[:120])


def rule(persona, question, answer):
    return "no scores" if answer.startswith("bad") else format_grm_output("ok", [1, 1, 1])


def test_the_scorer_checks_its_counters_since_the_last_reset(record):
    scorer = GRMScorer(PythonBackend(rule), retries=0)
    scorer.score([(record, "bad 1"), (record, "good")])
    scorer.check_invalid_share(0.5)  # 1 of 2: at the threshold
    scorer.score([(record, "bad 2")])
    with pytest.raises(GRMError) as info:
        scorer.check_invalid_share(0.5)
    assert str(info.value) == (
        "2 of 3 GRM results invalid this step (66.7% > grm.max_invalid_share=50%); "
        "last error: missing <scores> block"
    )
    scorer.reset_metrics()  # a new step starts clean
    scorer.check_invalid_share(0.0)
    scorer.score([(record, "good")])
    scorer.check_invalid_share(0.0)


def test_the_key_defaults_to_half_and_is_checked_at_start_up():
    cfg = load_config(["experiment=tiny_cpu", "grm.max_invalid_share=0.25"])
    assert MakerSettings.from_config(cfg, divisor=1).max_invalid_share == 0.25
    assert load_config(["experiment=tiny_cpu"]).grm.max_invalid_share == 0.5
    for bad in ("1.5", "-0.1"):
        with pytest.raises(Exception) as info:
            load_config(["experiment=tiny_cpu", f"grm.max_invalid_share={bad}"])
        assert one_line_error(info.value) == (
            f"grm.max_invalid_share: {float(bad)} must be in [0.0, 1.0]"
        )


def test_a_resume_may_change_the_threshold_but_not_the_scoring(tmp_path):
    def cfg(*overrides):
        return load_config(["experiment=tiny_cpu", f"logging.run_dir={tmp_path}", *overrides])

    (tmp_path / "config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.structured(cfg())))
    check_same_run(cfg("grm.max_invalid_share=0.9"))
    with pytest.raises(ConfigError, match="grm.retries"):
        check_same_run(cfg("grm.retries=5"))

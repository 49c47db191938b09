"""Start-up validation of the ``label`` node names the key to change."""

from __future__ import annotations

import pytest

from cpe.compose import load_config
from cpe.validate import ConfigError

BASE = ["grm=openai", "cluster.pools.grm.engines=0"]


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("label.preference=mine", "label.preference"),
        ("label.eval_share=1.0", "label.eval_share"),
        ("label.eval_share=-0.1", "label.eval_share"),
        ("label.chunk=0", "label.chunk"),
        ("label.max_pairs=0", "label.max_pairs"),
        ("label.sample_answers=true", "label.preference"),
        ("label.consistency_filter=true", None),
    ],
)
def test_bad_label_settings_name_the_key(override, key):
    if key is None:  # consistency_filter is fine with the default preference=dataset
        load_config([*BASE, override])
        with pytest.raises(ConfigError) as err:
            load_config([*BASE, override, "label.preference=teacher"])
        assert [k for k, _ in err.value.problems] == ["label.consistency_filter"]
        return
    with pytest.raises(ConfigError) as err:
        load_config([*BASE, override])
    assert [k for k, _ in err.value.problems] == [key]


def test_the_preference_choices_come_from_the_registry():
    with pytest.raises(ConfigError, match=r"\['dataset', 'teacher'\]"):
        load_config([*BASE, "label.preference=mine"])


def test_sampling_with_the_teacher_preference_is_valid():
    cfg = load_config([*BASE, "label.sample_answers=true", "label.preference=teacher"])
    assert cfg.label.sample_answers and cfg.label.max_pairs is None

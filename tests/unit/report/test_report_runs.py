"""Loading run folders: flattening, config differences, latest values, eval columns."""

from __future__ import annotations

import pytest

from cpe.report.page import eval_columns
from cpe.report.runs import differing_keys, flatten, latest, load_runs, points

pytestmark = pytest.mark.unit


def test_flatten_to_dotted_keys():
    tree = {"a": {"b": 1, "c": {"d": None}, "e": {}}, "f": [1, 2]}
    assert flatten(tree) == {"a.b": 1, "a.c.d": None, "a.e": {}, "f": [1, 2]}


def test_differing_keys_counts_absence_and_lists():
    configs = [{"x": 1, "l": [1, 2], "same": "s"}, {"x": 2, "l": [1, 2], "same": "s", "new": 0}]
    assert differing_keys(configs) == ["new", "x"]


def test_latest_keeps_the_step_of_sparse_keys():
    rows = [{"step": 1, "a": 1.0, "e": 5.0}, {"step": 2, "a": 2.0, "e": None}]
    assert latest(rows) == {"a": (2, 2.0), "e": (1, 5.0)}


def test_points_skip_nulls_and_non_numbers():
    rows = [
        {"step": 1, "a": None},
        {"step": 2, "a": "x"},
        {"step": 3, "a": True},
        {"step": 4, "a": 1},
    ]
    assert points(rows, "a") == [(4.0, 1.0)]


def test_eval_columns_known_first_then_by_name():
    policies = [{"zeta": 1, "win_rate": 2, "path": "p", "lc_win_rate": None, "d": {}}]
    assert eval_columns(policies) == ["win_rate", "lc_win_rate", "path", "zeta"]


def test_load_runs_names_and_evals(cpe_run, ppo_run):
    cpe, ppo = load_runs([cpe_run, ppo_run])
    assert (cpe.name, ppo.name) == ("cpe-run", "ppo-run")
    assert cpe.config["algorithm.mode"] == "cpe" and cpe.last_step == 3
    assert [e.path.parent.name for e in cpe.evals] == ["x"] and ppo.evals == []
    assert set(cpe.evals[0].policies) == {"step_000003", "<initial>"}

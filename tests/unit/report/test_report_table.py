"""The stdout table, --timings, --csv and the missing-run error."""

from __future__ import annotations

import csv

import pytest

from cpe.report.cli import main
from cpe.report.table import default_keys, table, timing_keys
from cpe.trainer.metrics import MetricsLogger

pytestmark = pytest.mark.unit


def test_report_prints_and_exports(tmp_path, capsys):
    log = MetricsLogger(tmp_path, wandb_mode="disabled")
    log.log(1, {"original/reward_mean": 0.5, "time/generate": 2.0})
    log.log(2, {"original/reward_mean": 1.25, "time/generate": 1.5})
    log.close()
    argv = [str(tmp_path), "--keys", "original/reward_mean", "--csv", str(tmp_path / "m.csv")]
    assert main(argv) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["step", "original/reward_mean"]
    assert out[2].split() == ["2", "1.25"]
    assert f"wrote {tmp_path / 'm.csv'}" in out
    assert f"wrote {tmp_path / 'report' / 'report.html'}" in out
    rows = list(csv.DictReader((tmp_path / "m.csv").open()))
    assert rows[1]["time/generate"] == "1.5"
    assert rows[1]["run"] == tmp_path.name


def test_missing_run_fails_before_writing(tmp_path, cpe_run, capsys):
    out = tmp_path / "out"
    assert main([str(cpe_run), str(tmp_path / "missing"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"error: {tmp_path / 'missing' / 'metrics.jsonl'} does not exist" in err
    assert not out.exists() and not (cpe_run / "report").exists()


def test_timings_columns_in_step_order(cpe_run, capsys):
    assert main([str(cpe_run), "--timings"]) == 0
    header = capsys.readouterr().out.splitlines()[0].split()
    assert header == ["step", "time/generate", "time/edit", "time/update"]


def test_default_columns_drop_keys_no_row_has(ppo_run, cpe_run):
    from cpe.trainer.metrics import read_metrics

    ppo = default_keys(read_metrics(ppo_run / "metrics.jsonl"))
    assert "original/reward_mean" in ppo and "edit/reward_mean" not in ppo
    assert "eval/win_rate" in default_keys(read_metrics(cpe_run / "metrics.jsonl"))


def test_several_runs_each_get_a_titled_table(cpe_run, ppo_run, capsys):
    assert main([str(cpe_run), str(ppo_run)]) == 0
    out = capsys.readouterr().out
    assert f"== cpe-run ({cpe_run})" in out and f"== ppo-run ({ppo_run})" in out


def test_quiet_prints_only_the_files(cpe_run, capsys):
    assert main([str(cpe_run), "--quiet"]) == 0
    assert all(line.startswith("wrote ") for line in capsys.readouterr().out.splitlines())


def test_table_and_timing_keys_tolerate_gaps():
    rows = [{"step": 1, "a": 0.123456, "time/zzz": 1.0}, {"step": 2, "time/checkpoint": 2.0}]
    assert table(rows, ["a"]).splitlines()[1:] == ["   1  0.1235", "   2       -"]
    assert timing_keys(rows) == ["time/checkpoint", "time/zzz"]

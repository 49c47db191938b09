import csv

from cpe.tools.report import main
from cpe.trainer.metrics import MetricsLogger


def test_report_prints_and_exports(tmp_path, capsys):
    log = MetricsLogger(tmp_path, wandb_mode="disabled")
    log.log(1, {"original/reward_mean": 0.5, "time/generate": 2.0})
    log.log(2, {"original/reward_mean": 1.25, "time/generate": 1.5})
    log.close()
    assert (
        main([str(tmp_path), "--keys", "original/reward_mean", "--csv", str(tmp_path / "m.csv")])
        == 0
    )
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["step", "original/reward_mean"]
    assert out[2].split() == ["2", "1.25"]
    rows = list(csv.DictReader((tmp_path / "m.csv").open()))
    assert rows[1]["time/generate"] == "1.5"
    assert main([str(tmp_path / "missing")]) == 2

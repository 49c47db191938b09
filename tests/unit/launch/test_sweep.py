"""The sweep summary: one row per point, the swept keys, the final figures."""

import json
from pathlib import Path

import yaml

from cpe.launch.sweep import write_summary


def make_point(sweep: Path, name: str, selection: str, ratio: float, rewards: list[float]) -> None:
    point = sweep / name
    point.mkdir(parents=True)
    config = {
        "name": "tiny_cpu",
        "algorithm": {"selection": selection, "edit_ratio": ratio},
        "logging": {"run_dir": str(point), "wandb_group": sweep.name},
        # Other tools' stamped folders differ between any two starts: never a swept key.
        "label": {"output_dir": f"runs/label-20261130-10150{name}"},
        "sft": {"output_dir": f"runs/sft-20261130-10150{name}"},
        "compare": {"output_dir": f"runs/compare-20261130-10150{name}"},
    }
    (point / "config.yaml").write_text(yaml.safe_dump(config))
    rows = [
        {"step": i + 1, "original/reward_mean": r, "original/length_tokens": 40.0 + i}
        for i, r in enumerate(rewards)
    ]
    rows[0]["eval/win_rate"] = 55.0  # evaluated at step 1 only: the latest value is kept
    (point / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_summary_lists_each_point_with_its_swept_keys_and_final_figures(tmp_path, capsys):
    sweep = tmp_path / "sweep-20261130-101500"
    make_point(sweep, "0", "random", 0.25, [1.0, 2.0])
    make_point(sweep, "1", "conditional", 0.25, [1.5, 2.5])
    make_point(sweep, "10", "random", 0.5, [1.25])
    make_point(sweep, "2", "conditional", 0.5, [0.5, 0.75])
    (sweep / "3").mkdir()  # a point that never started: no row
    path = write_summary(sweep)
    assert path == sweep / "summary.csv"
    lines = path.read_text().splitlines()
    assert lines == [
        "point,algorithm.edit_ratio,algorithm.selection,steps,original/reward_mean,"
        "original/length_tokens,eval/win_rate",
        "0,0.25,random,2,2.0,41.0,55.0",
        "1,0.25,conditional,2,2.5,41.0,55.0",
        "2,0.5,conditional,2,0.75,41.0,55.0",
        "10,0.5,random,1,1.25,40.0,55.0",
    ]
    text = (sweep / "summary.txt").read_text()
    assert text.splitlines()[1].split() == ["0", "0.25", "random", "2", "2", "41", "55"]
    assert "sweep" in capsys.readouterr().out


def test_an_empty_sweep_writes_nothing(tmp_path):
    assert write_summary(tmp_path) is None
    assert not (tmp_path / "summary.csv").exists()


def test_failed_points_are_listed_and_fail_the_sweep(tmp_path, capsys):
    from types import SimpleNamespace

    import pytest

    from cpe.launch.sweep import SweepSummary, record_failed_point

    sweep = tmp_path / "sweep"
    make_point(sweep, "0", "random", 0.25, [1.0])
    hydra = SimpleNamespace(
        sweep=SimpleNamespace(dir=str(sweep)),
        job=SimpleNamespace(num=1),
        overrides=SimpleNamespace(task=["algorithm.selection=conditional"]),
    )
    record_failed_point(hydra, 2)
    assert (sweep / "failed.txt").read_text() == "1\texit 2\talgorithm.selection=conditional\n"
    with pytest.raises(SystemExit) as info:
        SweepSummary().on_multirun_end(SimpleNamespace(hydra=hydra))
    assert info.value.code == 1
    assert "1 sweep points failed" in capsys.readouterr().err
    assert (sweep / "summary.csv").exists()

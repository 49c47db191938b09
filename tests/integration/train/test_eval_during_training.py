"""trainer.eval_every on the tiny model: the initial policy's eval answers before step 1,
then eval rows from the current policy, judged on the GRM engines."""

from __future__ import annotations

import json

from cpe.trainer.metrics import read_metrics


def test_eval_rows_join_the_metrics_every_k_steps(
    ray_session, tiny_config, train_in_process, tmp_path
):
    cfg = tiny_config(
        tmp_path,
        "trainer.total_steps=2",
        "trainer.save_every=2",
        "trainer.eval_every=2",
        "eval.max_records=4",
        "eval.grm_scores=true",
    )
    train_in_process(cfg, 2)
    rows = read_metrics(tmp_path / "metrics.jsonl")
    assert "eval/win_rate" not in rows[0] and rows[0]["time/eval"] > 0  # initial answers
    assert rows[1]["eval/judged"] + rows[1]["eval/invalid"] == 4
    assert 0 <= rows[1]["eval/win_rate"] <= 100 and "eval/lc_win_rate" in rows[1]
    assert -5 <= rows[1]["eval/grm_personalization"] <= 5  # guided decoding: scores parse
    folder = tmp_path / "eval" / "train"
    assert len((folder / "answers" / "initial.jsonl").read_text().splitlines()) == 4
    assert len((folder / "answers" / "step_2.jsonl").read_text().splitlines()) == 4
    assert len((folder / "scores" / "step_2.jsonl").read_text().splitlines()) == 4
    saved = json.loads((folder / "results.json").read_text())
    assert list(saved["policies"]) == ["step_2"]

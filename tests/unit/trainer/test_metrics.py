import json

from cpe.trainer.metrics import MetricsLogger, read_metrics


def test_metrics_jsonl_and_resume_truncation(tmp_path):
    log = MetricsLogger(tmp_path, wandb_mode="disabled")
    for step in (1, 2, 3):
        log.log(step, {"reward/mean": step * 0.5, "bad": float("nan")})
    log.samples(2, [{"question": "q", "original": "a"}])
    log.close()
    rows = read_metrics(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in rows] == [1, 2, 3]
    assert rows[0]["bad"] is None and rows[2]["reward/mean"] == 1.5
    assert json.loads((tmp_path / "samples" / "step_000002.jsonl").read_text())["question"] == "q"
    # resuming from the step-2 checkpoint forgets step 3, which will be re-done
    MetricsLogger(tmp_path, wandb_mode="disabled", resume_step=2).close()
    assert [r["step"] for r in read_metrics(tmp_path / "metrics.jsonl")] == [1, 2]


def test_wandb_offline_writes_into_run_dir(tmp_path):
    log = MetricsLogger(tmp_path, wandb_mode="offline", config={"a": 1})
    log.log(1, {"x": 1.0})
    log.close()
    assert any((tmp_path / "wandb").rglob("*.wandb"))

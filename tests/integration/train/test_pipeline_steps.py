"""A pipelined CPE step on real engines (rollout and GRM vLLM pools working at once)
samples, critiques, edits and scores exactly what the sequential step does."""

from __future__ import annotations

import json

from cpe.trainer.metrics import read_metrics


def samples(run_dir) -> list[dict]:
    lines = (run_dir / "samples" / "step_000001.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_pipelined_step_equals_the_sequential_step(
    ray_session, tiny_config, train_in_process, tmp_path
):
    overrides = ("trainer.total_steps=1", "trainer.save_every=1", "logging.sample_rows=64")
    sequential, pipelined = tmp_path / "sequential", tmp_path / "pipelined"
    train_in_process(tiny_config(sequential, *overrides), 1)
    train_in_process(tiny_config(pipelined, *overrides, "trainer.pipeline_chunks=2"), 1)
    assert samples(pipelined) == samples(sequential)
    (seq_row,) = read_metrics(sequential / "metrics.jsonl")
    (pipe_row,) = read_metrics(pipelined / "metrics.jsonl")
    for key in ("original/reward_mean", "edit/reward_mean", "batch/selected_edits", "grm/results"):
        assert pipe_row[key] == seq_row[key], key
    assert pipe_row["time/pipeline"] > 0 and "time/generate" not in pipe_row

"""``cpe.label`` with the local vLLM teacher (the tiny GRM on a CPU engine) on answers
sampled from the tiny policy on a rollout engine: the embedded default's path to pairs."""

from __future__ import annotations

import json

import pytest

from cpe.compose import load_config
from cpe.data import load_records
from cpe.label.runner import plan_label, run_label

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_sampled_pairs_labelled_by_a_vllm_teacher(ray_session, tmp_path):
    out = tmp_path / "label"
    cfg = load_config(
        [
            "experiment=tiny_cpu",
            "label.pairs_path=bundled:train",
            "label.sample_answers=true",
            "label.preference=teacher",
            "label.max_pairs=4",
            "label.eval_share=0",
            f"label.output_dir={out}",
            "logging.wandb_mode=disabled",
            "logging.progress=false",
        ]
    )
    summary = run_label(cfg, plan_label(cfg))
    assert summary.pairs_read == 4 and summary.answers_labelled == 8
    answers = [json.loads(line) for line in (out / "answers.jsonl").read_text().splitlines()]
    assert len(answers) == 4 and all(len(r["answers"]) == 2 for r in answers)
    labels = (out / "labels.jsonl").read_text().splitlines()
    assert len(labels) == 8
    # Guided decoding keeps even a random tiny GRM's outputs in the GRM format.
    sft = (out / "grm_sft.jsonl").read_text().splitlines()
    assert len(sft) == 8 - summary.invalid_answers
    pairs = load_records(out / "pairs.jsonl") if (out / "pairs.jsonl").stat().st_size else []
    kept = 4 - summary.dropped_equal_rewards - summary.dropped_invalid_side
    assert len(pairs) == kept
    for p in pairs:
        assert p.meta["chosen_reward"] > p.meta["rejected_reward"]

    again = run_label(cfg, plan_label(cfg))  # nothing left to sample or label
    assert again.answers_labelled == 0 and again.answers_reused == 8

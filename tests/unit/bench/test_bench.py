"""The bench's figures, its workload's configs and its command line (the runs
themselves are what `make bench` does; nothing here times anything)."""

from __future__ import annotations

import json

import pytest

from cpe.bench.__main__ import comparisons, parse_args, report
from cpe.bench.figures import Step, steps_from_metrics, summarise
from cpe.bench.trl_run import length_rewards
from cpe.bench.workload import VARIANTS, Workload, chat_prompts, cpe_overrides, write_records
from cpe.compose import load_config
from cpe.prompts import policy_messages

pytestmark = pytest.mark.unit


def test_steps_from_metrics_reads_the_step_window_phases_and_sync():
    rows = [
        {
            "step": 1,
            "time/step": 10.0,
            "time/generate": 4.0,
            "time/update": 5.0,
            "time/other": 1.0,
            "perf/generated_tokens": 320.0,
            "sync/mb": 540.0,
            "sync/transfer_s": 2.0,
            "policy/loss": 0.1,
        }
    ]
    (step,) = steps_from_metrics(rows)
    assert step.seconds == 10.0 and step.generated_tokens == 320.0
    assert step.phases == {"generate": 4.0, "update": 5.0, "other": 1.0}
    assert step.sync == {"sync/mb": 540.0, "sync/transfer_s": 2.0}


def test_summary_leaves_out_the_warm_up_and_shares_are_of_the_measured_time():
    steps = [
        Step(100.0, 10.0, {"generate": 90.0, "update": 10.0}),  # warm-up: left out
        Step(10.0, 100.0, {"generate": 4.0, "update": 5.0, "other": 1.0}, {"sync/mb": 8.0}),
        Step(30.0, 200.0, {"generate": 12.0, "update": 18.0}, {"sync/mb": 8.0}),
        Step(20.0, 300.0, {"generate": 8.0, "update": 11.0, "other": 1.0}, {"sync/mb": 8.0}),
    ]
    s = summarise(steps, warmup=1)
    assert s["steps_measured"] == 3
    assert s["step_s"] == {"min": 10.0, "median": 20.0, "max": 30.0}
    assert s["gen_tokens_per_s"] == pytest.approx(600.0 / 60.0)
    # generate 24 of 60 s, update 34, other 2
    assert s["phase_share"] == pytest.approx({"generate": 0.4, "update": 34 / 60, "other": 2 / 60})
    assert s["phase_s"]["update"] == pytest.approx(34 / 3)
    assert s["sync"] == {"sync/mb": 8.0}


def test_the_ratio_and_memcpy_reference():
    def result(median, sync=None):
        return {"summary": {"step_s": {"median": median}, "sync": sync or {}}}

    out = comparisons(
        {
            "grpo": result(20.0, {"sync/mb": 1.0}),
            "grpo-lora": result(15.0),
            "trl": result(50.0),
            "cpe-grm": result(40.0),
            "cpe-grm-overlap": result(30.0),
        }
    )
    assert out["trl_over_cpe_grpo"] == 2.5 and out["lora_over_full"] == 0.75
    assert out["overlap_on_over_off"] == 0.75
    assert out["memcpy_mb_per_s"] > 0
    assert comparisons({"grpo": result(20.0), "trl": {"error": "exit 1"}}) == {}


@pytest.mark.parametrize("model", ["tiny", "smollm2"])
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_cpe_contender_is_a_valid_config_of_the_shared_workload(tmp_path, model, variant):
    w = Workload(model=model)
    records = write_records(tmp_path, w.prompts)
    cfg = load_config(cpe_overrides(w, variant, records, tmp_path / "run"))
    assert (cfg.rollout.n, cfg.rollout.max_new_tokens) == (w.n, w.max_new_tokens)
    assert (cfg.rollout.temperature, cfg.rollout.top_p) == (w.temperature, w.top_p)
    assert cfg.trainer.rollout_batch_prompts == cfg.learner.mini_batch_prompts == w.prompts
    assert cfg.learner.micro_batch_size == w.micro_batch_rows and cfg.learner.actor_lr == w.lr
    assert cfg.trainer.total_steps == w.steps and cfg.algorithm.kl.coef == 0.0
    assert not cfg.learner.gradient_checkpointing  # as TRL is told
    if variant.startswith("grpo"):  # no value model: the one policy rank gets both cores
        assert cfg.cluster.pools.value.ranks == 0 and cfg.cluster.pools.policy.devices_per_rank == 2
    assert cfg.learner.lora.rank == (16 if variant.startswith("grpo-lora") else 0)
    assert (cfg.cluster.weight_sync == "adapter") == (variant == "grpo-lora")
    assert cfg.trainer.pipeline_chunks == (2 if variant == "cpe-grm-overlap" else 1)
    if variant.startswith("cpe-grm"):  # the engines share the cores only when overlapped
        pools = cfg.cluster.pools
        threads = pools.rollout.devices_per_engine + pools.grm.devices_per_engine
        assert pools.grm.engines == 1 and threads == (2 if variant.endswith("overlap") else 4)


def test_trl_gets_the_very_messages_cpe_renders_and_the_same_reward(tmp_path):
    records = write_records(tmp_path, 3)
    rows = [json.loads(line) for line in records.read_text().splitlines()]
    prompts = chat_prompts(records)
    assert len(prompts) == 3 and prompts[0][-1]["role"] == "user"
    assert rows[0]["question"] in prompts[0][-1]["content"]
    from cpe.data.loaders import load_records

    assert prompts == [policy_messages(r) for r in load_records(records)]
    # cpe.reward.rules.length_score with the default 40-character target
    answers = [[{"role": "assistant", "content": "x" * 40}], "  " + "y" * 60 + " "]
    assert length_rewards(answers) == [5.0, 0.0]


def test_command_line_rejects_unknown_names():
    assert parse_args(["--models", "tiny", "--repeats", "2"]).models == ["tiny"]
    with pytest.raises(SystemExit):
        parse_args(["--models", "gpt9"])
    with pytest.raises(SystemExit):
        parse_args(["--contenders", "grpo,vllm"])


def test_report_prints_ratio_phases_sync_and_memory():
    summary = {
        "step_s": {"min": 9.0, "median": 10.0, "max": 11.0},
        "gen_tokens_per_s": 150.0,
        "phase_share": {"generate": 0.3, "update": 0.6, "other": 0.02, "sync": 0.08},
        "sync": {"sync/mb": 513.0, "sync/transfer_s": 0.8, "sync/mb_per_s": 641.0},
    }
    memory = {"peak_total_gib": 6.5, "peak_by_process_gib": {"ray::PolicyWorker": 2.0}}
    result = {
        "workload": Workload(model="tiny").to_json(),
        "contenders": {
            "grpo": {"summary": summary, "memory": memory},
            "trl": {"error": "exit 1; see trl.log"},
        },
        "memcpy_mb_per_s": 5000.0,
    }
    text = "\n".join(report("tiny", result))
    assert "update 60%, generate 30%, sync 8%, other 2%" in text
    assert "513 MiB in 0.80s (641 MiB/s; memcpy 5000 MiB/s), 8.0% of the step" in text
    assert "trl" in text and "failed: exit 1" in text
    assert "ray::PolicyWorker 2.00" in text


def test_update_bench_batch_and_plain_step():
    import torch
    from unit.fakes import tiny_llama

    from cpe.bench.update import ROWS, bench_batch, plain_step

    a, b = bench_batch(40000), bench_batch(40000)
    assert len(a) == ROWS and torch.equal(a.input_ids, b.input_ids)
    assert a.first_response_column() == 136  # the shortest prompt
    from cpe.learner.prefix import prompt_groups, prompt_lengths

    _, index = prompt_groups(a, prompt_lengths(a))
    assert index.tolist() == [i // 4 for i in range(ROWS)]  # 8 prompts, 4 answers each
    model = tiny_llama(vocab_size=40000)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    plain_step(model, torch.optim.AdamW(model.parameters(), lr=1e-3), a)
    moved = [n for n, p in model.named_parameters() if not torch.equal(p, before[n])]
    assert "model.layers.0.self_attn.q_proj.weight" in moved

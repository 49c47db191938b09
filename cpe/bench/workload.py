"""The bench's one workload and how each contender is told to run it.

Every contender gets the same model, prompts (token for token: TRL receives the chat
messages cpe renders), prompts x completions per step, new-token budget, sampling
settings, learning rate, precision (fp32), no KL term and exactly one optimizer update
per step made of the same micro-batches, and the same rule-based reward.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from cpe.data.bundled import load_bundled
from cpe.prompts import policy_messages

MODELS = {"tiny": "tiny_cpu", "smollm2": "demo"}  # bench model -> cpe experiment preset
# A short persona keeps prompts near TRL's own GRPO example (~50 tokens), so the step
# is dominated by what the trainers do, not by prompt length.
BENCH_PERSONA = {"preferences": {"answer_style": "brief", "tone": "friendly"}}
REWARD_FUNCTION = "cpe.reward.rules:length_reward"  # same text -> same reward on both sides


@dataclass(frozen=True)
class Workload:
    model: str  # a key of MODELS
    prompts: int = 8
    n: int = 4
    max_new_tokens: int = 48
    temperature: float = 1.0
    top_p: float = 1.0
    lr: float = 1e-6
    micro_batch_rows: int = 8
    warmup_steps: int = 1
    repeats: int = 3

    @property
    def steps(self) -> int:
        return self.warmup_steps + self.repeats

    def to_json(self) -> dict:
        return asdict(self)


def write_records(folder: Path, count: int) -> Path:
    """The bundled questions with the short bench persona, as a cpe JSONL file."""
    path = folder / "records.jsonl"
    rows = [
        {"id": r.id, "persona": BENCH_PERSONA, "question": r.question}
        for r in load_bundled("train")[:count]
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def chat_prompts(records_path: Path) -> list[list[dict[str, str]]]:
    """The policy chat messages cpe renders for each record (TRL applies the same chat
    template to them)."""
    from cpe.data.loaders import load_records

    return [policy_messages(r) for r in load_records(records_path)]


GRPO = (
    "algorithm=ppo",
    "algorithm.advantage=grpo",
    "cluster.pools.value.ranks=0",
    "cluster.pools.policy.devices_per_rank=2",  # no value rank: the policy takes both cores
)
PYTHON_GRM = ("grm=python", f"grm.python_function={REWARD_FUNCTION}", "cluster.pools.grm.engines=0")
# The model's own GRM on vLLM, with a short critique budget to keep the bench short.
VLLM_GRM = ("grm=vllm", "grm.max_new_tokens=128", "cluster.pools.grm.engines=1")

# cpe variant -> its overrides, after the shared ones (so they win).
# grpo: group-normalised advantages, no value model. grpo-lora: the same training LoRA
# adapters (rank 16) that the engines serve through vLLM's LoRA support (adapter sync);
# grpo-lora-merged: the engines get the merged weights instead. ppo: GAE with a value model.
# cpe: critique -> edit -> hybrid loss (the python reward writes the critique, so the
# edit phase is real generation). cpe-grm / cpe-grm-overlap: CPE with a vLLM GRM pool,
# phases one after another (each engine on both cores) / overlapped over 2 chunks of
# the prompts (each engine on one core, so together they use the machine once).
VARIANTS: dict[str, tuple[str, ...]] = {
    "grpo": (*GRPO, *PYTHON_GRM),
    "grpo-lora": (*GRPO, *PYTHON_GRM, "learner.lora.rank=16", "cluster.weight_sync=adapter"),
    "grpo-lora-merged": (*GRPO, *PYTHON_GRM, "learner.lora.rank=16"),
    "ppo": ("algorithm=ppo", *PYTHON_GRM),
    "cpe": ("algorithm=cpe", *PYTHON_GRM),
    "cpe-grm": ("algorithm=cpe", *VLLM_GRM, "cluster.pools.grm.devices_per_engine=2"),
    "cpe-grm-overlap": (
        "algorithm=cpe",
        *VLLM_GRM,
        "trainer.pipeline_chunks=2",
        "cluster.pools.rollout.devices_per_engine=1",
        "cluster.pools.grm.devices_per_engine=1",
    ),
}
DEFAULT_VARIANTS = ("grpo", "grpo-lora", "grpo-lora-merged", "ppo", "cpe")


def cpe_overrides(w: Workload, variant: str, records: Path, run_dir: Path) -> list[str]:
    return [
        f"experiment={MODELS[w.model]}",
        "data=jsonl",
        f"data.train_path={records}",
        "cluster.pools.policy.ranks=1",
        "cluster.pools.rollout.devices_per_engine=2",  # it runs alone: both cores
        f"rollout.n={w.n}",
        f"rollout.max_new_tokens={w.max_new_tokens}",
        f"rollout.edit_max_new_tokens={w.max_new_tokens}",
        f"rollout.temperature={w.temperature}",
        f"rollout.top_p={w.top_p}",
        f"trainer.rollout_batch_prompts={w.prompts}",
        f"trainer.total_steps={w.steps}",
        f"trainer.save_every={w.steps}",
        "trainer.resume=never",
        f"learner.mini_batch_prompts={w.prompts}",
        f"learner.micro_batch_size={w.micro_batch_rows}",
        "learner.zero_stage=0",  # one rank per pool: nothing to partition (as TRL here)
        f"learner.actor_lr={w.lr}",
        "learner.gradient_checkpointing=false",
        "algorithm.kl.coef=0.0",
        "logging.wandb_mode=disabled",
        f"logging.run_dir={run_dir}",
        *VARIANTS[variant],
    ]

"""TRL's GRPOTrainer on the bench workload: ``python -m cpe.bench.trl_run SPEC.json``.

Run in its own process by the bench. TRL generates with plain HF ``generate`` on CPU
(its default), in fp32, with no KL (beta=0), one optimizer update per generation batch
and dropout off, like cpe. Step seconds are the time between consecutive optimizer
steps (the first from the first step's start), so generation, reward and update are in.
"""

from __future__ import annotations

import json
import sys
import time
from itertools import pairwise
from pathlib import Path

from cpe.bench.workload import Workload, chat_prompts
from cpe.reward.rules import length_score, rule_target_chars


def length_rewards(completions, **_) -> list[float]:
    """cpe.reward.rules.length_reward's score, as TRL calls a reward function."""
    target = rule_target_chars()
    texts = [c[-1]["content"] if isinstance(c, list) else c for c in completions]
    return [float(length_score(len(t.strip()), target)) for t in texts]


def main(spec_path: str) -> None:
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    spec = json.loads(Path(spec_path).read_text())
    w = Workload(**spec["workload"])
    completions = w.prompts * w.n

    class StepClock(TrainerCallback):
        def __init__(self):
            self.marks: list[float] = []
            self.lengths: list[float] = []

        def on_step_begin(self, args, state, control, **kw):
            if not self.marks:
                self.marks.append(time.perf_counter())

        def on_step_end(self, args, state, control, **kw):
            self.marks.append(time.perf_counter())

        def on_log(self, args, state, control, logs=None, **kw):
            if logs and "completions/mean_length" in logs:
                self.lengths.append(float(logs["completions/mean_length"]))

    tokenizer = AutoTokenizer.from_pretrained(spec["model_path"])
    tokenizer.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(spec["model_path"], dtype=torch.float32)
    args = GRPOConfig(
        output_dir=str(Path(spec["out"]).parent / "trl-out"),
        use_cpu=True,
        bf16=False,
        per_device_train_batch_size=w.micro_batch_rows,
        gradient_accumulation_steps=completions // w.micro_batch_rows,
        num_generations=w.n,
        max_completion_length=w.max_new_tokens,
        temperature=w.temperature,
        top_p=w.top_p,
        learning_rate=w.lr,
        lr_scheduler_type="constant",
        weight_decay=0.01,
        max_grad_norm=1.0,
        beta=0.0,
        num_iterations=1,
        max_steps=w.steps,
        logging_steps=1,
        report_to="none",
        save_strategy="no",
        gradient_checkpointing=False,
        disable_dropout=True,
        dataloader_num_workers=0,
        seed=0,
    )
    dataset = Dataset.from_list([{"prompt": p} for p in chat_prompts(Path(spec["records"]))])
    clock = StepClock()
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=length_rewards,
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        callbacks=[clock],
    )
    trainer.train()
    seconds = [b - a for a, b in pairwise(clock.marks)]
    lengths = (clock.lengths + [0.0] * len(seconds))[: len(seconds)]
    steps = [
        {"seconds": s, "generated_tokens": length * completions}
        for s, length in zip(seconds, lengths, strict=True)
    ]
    Path(spec["out"]).write_text(json.dumps(steps))


if __name__ == "__main__":
    main(sys.argv[1])

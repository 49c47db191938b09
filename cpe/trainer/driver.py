"""The step loop. One step, as in the algorithm box:

records   <- next B prompts from the data cursor
exp       <- maker.make(records)           rollout -> [critique -> edit] -> score -> [select]
batch     <- all originals + selected edits, each under its ORIGINAL prompt
old_logp, mu, V <- learners                (mu recomputed on the edit prompt: see docs)
A, G      <- GAE, whitened over valid tokens
learners.train(batch)                      hybrid PPO + value update
sync weights to every rollout engine, check engine vs learner log-probs
log metrics + sample table; checkpoint every k steps
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from tqdm import tqdm

from cpe.algo import kl_penalty
from cpe.config import CPEConfig
from cpe.data.cursor import PromptCursor
from cpe.trainer.advantage import compute_advantages
from cpe.trainer.checkpoint import CheckpointManager
from cpe.trainer.experience import (
    Experience,
    behaviour_logp_for,
    edit_prompt_tensors,
    training_tensors,
)
from cpe.trainer.metrics import MetricsLogger
from cpe.trainer.step_metrics import experience_metrics, sample_rows
from cpe.trainer.timing import PhaseTimer


@dataclass
class Driver:
    cfg: CPEConfig
    maker: object  # PPOMaker | CPEMaker
    learners: object  # cpe.learner.group.LearnerGroup
    sync: object  # cpe.weight_sync.backends.WeightSync
    cursor: PromptCursor
    checkpoints: CheckpointManager
    logger: MetricsLogger
    timer: PhaseTimer
    pad_id: int
    total_steps: int
    step: int = 0

    def fit(self) -> None:
        bar = tqdm(
            total=self.total_steps,
            initial=self.step,
            desc="cpe",
            unit="step",
            disable=not self.cfg.logging.progress,
        )
        while self.step < self.total_steps:
            metrics = self.run_step()[2]
            bar.update(1)
            bar.set_postfix(reward=f"{metrics.get('original/reward_mean', float('nan')):.3f}")
        bar.close()

    def run_step(self) -> tuple[Experience, dict[str, torch.Tensor], dict[str, float]]:
        self.step += 1
        records = self.cursor.next_batch()
        exp = self.maker.make(records, self.step)
        batch = self.prepare_batch(exp)
        with self.timer("advantage"):
            compute_advantages(batch, self.cfg.algorithm)
        with self.timer("update"):
            train_metrics = self.learners.train(batch, self.step)
        with self.timer("sync"):
            sync_metrics = self.sync.push(self.step)
        metrics = self.log(exp, batch, {**train_metrics, **sync_metrics})
        if self.step % self.cfg.trainer.save_every == 0 or self.step == self.total_steps:
            self.save()
        return exp, batch, metrics

    def prepare_batch(self, exp: Experience) -> dict[str, torch.Tensor]:
        """Padded tensors + the learner's old log-probs, behaviour log-probs and values."""
        samples = exp.batch_samples
        t = training_tensors(samples, self.pad_id)
        edit_rows = [i for i, s in enumerate(samples) if s.is_edit]
        # mu: the edits under the prompt they were sampled from (see docs/architecture.md)
        edits = (
            edit_prompt_tensors([samples[i] for i in edit_rows], self.pad_id) if edit_rows else None
        )
        with self.timer("logprob"):
            out = self.learners.old_policy_and_values(t, edits, self.cfg.rollout.temperature)
        t["old_logp"], t["old_values"] = out["old_logp"], out["old_values"]
        if "ref_logp" in out:
            t["ref_logp"] = out["ref_logp"]
            t["kl"] = (
                kl_penalty(t["old_logp"], t["ref_logp"], self.cfg.algorithm.kl.kind)
                * t["response_mask"]
            )
        t["behaviour_logp"] = t["old_logp"].clone()
        if edit_rows:
            mu = behaviour_logp_for(samples, out["edit_logp"], edit_rows, t["old_logp"].shape)
            t["behaviour_logp"][edit_rows] = mu[edit_rows]
        return t

    def log(
        self, exp: Experience, batch: dict[str, torch.Tensor], extra: dict[str, float]
    ) -> dict[str, float]:
        metrics = {**experience_metrics(exp, batch), **extra, **self.timer.pop()}
        generated = sum(len(s.response_ids) for s in exp.originals + exp.edits)
        gen_time = metrics.get("time/generate", 0.0) + metrics.get("time/edit", 0.0)
        metrics["perf/generated_tokens"] = float(generated)
        metrics["perf/gen_tokens_per_s"] = generated / gen_time if gen_time else 0.0
        metrics["epoch"] = self.cursor.epoch
        self.logger.log(self.step, metrics)
        self.logger.samples(self.step, sample_rows(exp, self.cfg.logging.sample_rows))
        return metrics

    def save(self) -> None:
        with self.timer("checkpoint"):
            tmp = self.checkpoints.begin(self.step)
            self.learners.save(tmp)
            state = {
                "step": self.step,
                "cursor": self.cursor.state_dict(),
                "selection_rng": self.maker.generator.get_state().tolist(),
                "torch_rng": torch.get_rng_state().tolist(),
            }
            self.checkpoints.commit(tmp, self.step, state)

    def restore(self, checkpoint, driver_state: dict) -> None:
        self.learners.load(checkpoint)
        self.step = driver_state["step"]
        self.cursor.load_state_dict(driver_state["cursor"])
        self.maker.generator.set_state(
            torch.tensor(driver_state["selection_rng"], dtype=torch.uint8)
        )
        torch.set_rng_state(torch.tensor(driver_state["torch_rng"], dtype=torch.uint8))

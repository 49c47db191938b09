"""The step loop. One step, as in the algorithm box:

records   <- next B prompts from the data cursor
exp       <- maker.make(records)           rollout -> [critique -> edit] -> score -> [select]
batch     <- all originals + selected edits, each under its ORIGINAL prompt
old_logp, mu, V <- learners                (mu recomputed on the edit prompt: see docs;
                                            pi_old from the update's own forward when
                                            the batch makes one optimizer step)
A, G      <- GAE, whitened over valid tokens
learners.train(batch)                      hybrid PPO + value update
sync weights to every rollout engine, check engine vs learner log-probs
every e steps: eval set -> current policy -> judge vs the initial policy
log metrics + sample table; checkpoint every k steps
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import NamedTuple

import torch
from tqdm import tqdm

from cpe import failpoints
from cpe.algo import kl_penalty
from cpe.batch import TensorBatch
from cpe.cluster.faults import FaultLog
from cpe.config import CPEConfig
from cpe.data.cursor import PromptCursor
from cpe.logs import step_line
from cpe.protocols import Evaluator, ExperienceMaker, LearnerGroup, WeightSync
from cpe.trainer.advantage import with_advantages
from cpe.trainer.checkpoint import CheckpointManager
from cpe.trainer.experience import (
    Experience,
    behaviour_logp_for,
    edit_prompt_tensors,
    training_tensors,
)
from cpe.trainer.makers import max_updates_per_step
from cpe.trainer.metrics import MetricsLogger
from cpe.trainer.step_metrics import experience_metrics, sample_rows
from cpe.trainer.timing import PhaseTimer


def needs_old_logp(cfg: CPEConfig) -> bool:
    """Whether pi_old needs its own forward pass before the update. Not when every batch
    makes exactly one optimizer step (one mini-batch even with the most edits, one
    epoch) and no reference model reads it for a KL: pi_old is then the policy as the
    update starts, and the update takes it detached from its own forward (as TRL does),
    saving one pass over the batch."""
    one_step = max_updates_per_step(cfg) == 1
    return not (one_step and cfg.learner.ppo_epochs == 1 and cfg.model.reference.path is None)


class StepResult(NamedTuple):
    experience: Experience
    batch: TensorBatch
    metrics: dict[str, float]


@dataclass
class Driver:
    cfg: CPEConfig
    maker: ExperienceMaker
    learners: LearnerGroup
    sync: WeightSync
    cursor: PromptCursor
    checkpoints: CheckpointManager
    logger: MetricsLogger
    timer: PhaseTimer
    pad_id: int
    total_steps: int
    step: int = 0
    evaluator: Evaluator | None = None
    # Actor restarts (engines, scorers) of the step in progress: its row counts them.
    faults: FaultLog = field(default_factory=FaultLog)

    def fit(self) -> None:
        """Steps until ``total_steps``; one readable line per step (and a live bar on a
        terminal: a log file would collect its redraws)."""
        progress = self.cfg.logging.progress
        bar = tqdm(
            total=self.total_steps,
            initial=self.step,
            desc="cpe",
            unit="step",
            disable=not (progress and sys.stderr.isatty()),
        )
        failpoints.planned()  # a malformed CPE_FAILPOINT fails here, not at its point
        self.timer.start()  # start-up is not part of the first step
        self.faults.step = self.step + 1  # a restart before it counts in its row
        if self.evaluator is not None:
            with self.timer("eval"):
                self.evaluator.prepare(self.step)
        while self.step < self.total_steps:
            metrics = self.run_step().metrics
            bar.update(1)
            if progress:
                tqdm.write(step_line(self.step, self.total_steps, metrics), file=sys.stderr)
        bar.close()

    def run_step(self) -> StepResult:
        self.step += 1
        self.faults.step = self.step
        failpoints.at_step(self.step)
        records = self.cursor.next_batch()
        exp = self.maker.make(records, self.step)
        batch = self.forward_passes(training_tensors(exp.batch_samples, self.pad_id), exp)
        with self.timer("advantage"):
            batch = with_advantages(batch, self.cfg.algorithm)
        with self.timer("update"):
            train_metrics = self.learners.train(batch, self.step)
        with self.timer("sync"):
            sync_metrics = self.sync.push(self.step)
        eval_metrics = {}
        if self.evaluator is not None and self.evaluator.due(self.step):
            with self.timer("eval"):
                eval_metrics = self.evaluator.run(self.step)
        metrics = self.log(exp, batch, {**train_metrics, **sync_metrics, **eval_metrics})
        if self.step % self.cfg.trainer.save_every == 0 or self.step == self.total_steps:
            self.save()
        return StepResult(exp, batch, metrics)

    def forward_passes(self, batch: TensorBatch, exp: Experience) -> TensorBatch:
        """The batch with pi_old, V, the behaviour log-probs (pi_old on originals, mu on
        edits) and, with a reference model, its log-probs and the per-token KL."""
        samples = exp.batch_samples
        edit_rows = [i for i, s in enumerate(samples) if s.is_edit]
        # mu: the edits under the prompt they were sampled from (see docs/architecture.md)
        edits = (
            edit_prompt_tensors([samples[i] for i in edit_rows], self.pad_id) if edit_rows else None
        )
        with self.timer("logprob"):
            out = self.learners.forward_passes(
                batch,
                edits,
                self.cfg.rollout.temperature,
                self.step,
                with_old_logp=needs_old_logp(self.cfg),
            )
        shape = tuple(batch.response_mask.shape)
        # On original rows the behaviour policy is pi_old (the hybrid loss reads it there
        # through old_logp); edits get mu.
        behaviour = out.old_logp.clone() if out.old_logp is not None else torch.zeros(shape)
        if edit_rows:
            mu = behaviour_logp_for(samples, out.edit_logp, edit_rows, shape)
            behaviour[edit_rows] = mu[edit_rows]
        kl = None
        if out.ref_logp is not None:
            kind = self.cfg.algorithm.kl.kind
            kl = kl_penalty(out.old_logp, out.ref_logp, kind) * batch.response_mask
        return replace(
            batch,
            old_logp=out.old_logp,
            old_values=out.old_values,
            behaviour_logp=behaviour,
            ref_logp=out.ref_logp,
            kl=kl,
        )

    def log(self, exp: Experience, batch: TensorBatch, extra: dict[str, float]) -> dict[str, float]:
        metrics = {**experience_metrics(exp, batch), **extra, **self.faults.pop()}
        metrics.update(self.timer.pop())
        generated = sum(len(s.response_ids) for s in exp.originals + exp.edits)
        # Pipelined steps time generation together with critique and scoring.
        gen_keys = ("time/generate", "time/edit", "time/pipeline")
        gen_time = sum(metrics.get(k, 0.0) for k in gen_keys)
        metrics["perf/generated_tokens"] = float(generated)
        metrics["perf/gen_tokens_per_s"] = generated / gen_time if gen_time else 0.0
        metrics["epoch"] = self.cursor.epoch
        self.logger.log(self.step, metrics)
        self.logger.samples(self.step, sample_rows(exp, self.cfg.logging.sample_rows))
        return metrics

    def state_dict(self) -> dict:
        """Everything besides the learners that a resumed run needs to continue exactly."""
        return {
            "step": self.step,
            "cursor": self.cursor.state_dict(),
            "maker": self.maker.state_dict(),
            "torch_rng": torch.get_rng_state().tolist(),
        }

    def save(self) -> None:
        with (
            self.timer("checkpoint"),
            self.checkpoints.writing(self.step, self.state_dict()) as tmp,
        ):
            self.learners.save(tmp)
            failpoints.point("checkpoint")

    def restore(self, checkpoint: Path, driver_state: dict) -> None:
        self.learners.load(checkpoint)
        self.step = driver_state["step"]
        self.cursor.load_state_dict(driver_state["cursor"])
        self.maker.load_state_dict(driver_state["maker"])
        torch.set_rng_state(torch.tensor(driver_state["torch_rng"], dtype=torch.uint8))

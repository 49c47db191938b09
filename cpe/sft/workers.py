"""The learner ranks of supervised training: a causal LM trained on reply tokens and a
Bradley-Terry reward model. Plain classes on :class:`DeepSpeedWorker` (ZeRO, token-
weighted gradient accumulation, checkpoints); the caller wraps them with ``ray.remote``."""

from __future__ import annotations

import torch

from cpe.algo import bt_loss, masked_mean
from cpe.batch import TensorBatch
from cpe.learner.metrics import MetricAccumulator
from cpe.learner.micro import row_bounds
from cpe.learner.policy import PolicyWorker
from cpe.learner.tokens import token_logprobs
from cpe.learner.value import ValueWorker
from cpe.reward.bt_model import RewardNorm, last_token_values, save_reward_model


class SFTWorker(PolicyWorker):
    """Next-token loss on each row's reply tokens (``response_mask``); the prompt only
    conditions. Eval uses :meth:`PolicyWorker.logprobs` at temperature 1."""

    def sft_step(self, batch: TensorBatch) -> dict[str, float]:
        """One optimizer update on this rank's shard of ``batch``: the token mean of
        ``-log p`` over the rank's reply tokens, however its micro-batches are cut."""
        shard = batch.shard(self.rank, self.world_size).to(self.engine.device)
        acc = MetricAccumulator()
        self._optimizer_step(self._micro_batches(shard), self._nll, acc)
        return acc.result(all_reduce=self._all_reduce_sum)

    def _nll(self, batch: TensorBatch):
        logp = token_logprobs(self._logits(batch), batch.input_ids, 1.0, self.cfg.logprob_chunk)
        loss = -masked_mean(logp, batch.response_mask)
        return loss, {"sft_loss": float(loss.detach())}, {"all": float(batch.response_mask.sum())}


class RewardModelWorker(ValueWorker):
    """A causal LM's backbone with a scalar head (cpe.learner.value.ValueModel) trained
    on pairs with ``-log sigmoid(r_chosen - r_rejected)``; the reward is the head at the
    row's last token (its EOS). Batches are cpe.sft.examples.pairs_batch rows."""

    role = "critic"

    def _rewards(self, batch: TensorBatch) -> torch.Tensor:
        out = self.engine(input_ids=batch.input_ids, attention_mask=batch.attention_mask)
        return last_token_values(out.values.float(), batch.attention_mask)

    def bt_step(self, batch: TensorBatch) -> dict[str, float]:
        """One optimizer update on this rank's whole pairs (micro-batches of
        ``learner.micro_batch_size`` rows rounded down to whole pairs)."""
        shard = batch.shard(self.rank, self.world_size).to(self.engine.device)
        rows = 2 * max(1, self.cfg.micro_batch_size // 2)
        micros = [shard.rows(a, b).trimmed() for a, b in row_bounds(len(shard), rows)]
        acc = MetricAccumulator()
        self._optimizer_step(micros, self._pair_loss, acc)
        return acc.result(all_reduce=self._all_reduce_sum)

    def _pair_loss(self, batch: TensorBatch):
        rewards = self._rewards(batch)
        valid = batch.response_mask.sum(dim=1)[0::2] > 0  # pads are whole loss-free pairs
        if not bool(valid.any()):
            zero = rewards.sum() * 0.0  # keeps every rank's backward collective in step
            return zero, {}, {"all": 0.0}
        loss, metrics = bt_loss(rewards[0::2][valid], rewards[1::2][valid])
        return loss, metrics, {"all": float(valid.sum())}

    @torch.no_grad()
    def rewards(self, batch: TensorBatch) -> torch.Tensor:
        """Raw rewards of this rank's shard, ``[b_shard]`` (rank order gives the rows)."""
        shard = batch.shard(self.rank, self.world_size).to(self.engine.device)
        bounds = row_bounds(len(shard), self.cfg.micro_batch_size)
        outs = [self._rewards(shard.rows(a, b).trimmed()).cpu() for a, b in bounds]
        return torch.cat(outs)

    def save_reward_model(self, path: str, norm: RewardNorm) -> str | None:
        """Rank 0 writes the reward model's folder (cpe.reward.bt_model); every rank
        must call it (a gather under ZeRO-3)."""
        import torch.distributed as tdist

        named = [item for bucket in self.export_buckets() for item in bucket]
        if self.rank == 0:
            prefix = self.engine.module.backbone.base_model_prefix
            save_reward_model(path, named, self.model_path, prefix, norm)
        if self.world_size > 1:
            tdist.barrier()
        return path if self.rank == 0 else None

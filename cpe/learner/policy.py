"""The policy (actor) learner rank: log-probs, the policy update (``algorithm.policy_loss``:
the hybrid CPE loss or plain PPO), HF export."""

from __future__ import annotations

from pathlib import Path

import torch

from cpe.algo import POLICY_LOSSES, kl_penalty, masked_mean
from cpe.batch import TensorBatch
from cpe.learner.base import DeepSpeedWorker
from cpe.learner.hf_io import save_hf_folder
from cpe.learner.lora import adapter_files, merged_weights, with_lora
from cpe.learner.prefix import LOGITS
from cpe.learner.tokens import token_entropy, token_logprobs


def token_weights(batch: TensorBatch) -> dict[str, float]:
    """Valid-token counts of the micro-batch: all, original rows, edited rows."""
    mask = batch.response_mask.bool()
    edit = mask & batch.is_edit.bool().unsqueeze(1)
    return {
        "all": float(mask.sum()),
        "orig": float((mask & ~edit).sum()),
        "edit": float(edit.sum()),
    }


ADAPTER_FOLDER = "lora_adapter"  # inside policy_hf/ when learner.lora.rank > 0


class PolicyWorker(DeepSpeedWorker):
    role = "actor"

    def build_module(self, config, torch_dtype: torch.dtype) -> torch.nn.Module:
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(
            self.model_path,
            config=config,
            dtype=torch_dtype,
            attn_implementation=self.cfg.attn_implementation,
        )
        return with_lora(model, self.cfg.lora) if self.lora else model

    @property
    def lora(self) -> bool:
        return self.cfg.lora.rank > 0

    def _named_parameters(self) -> list[tuple[str, torch.Tensor]]:
        # With LoRA: the merged weights by their base names (what engines and HF load).
        if self.lora:
            return merged_weights(self.engine.module)
        return super()._named_parameters()

    def _logits(self, batch: TensorBatch) -> torch.Tensor:
        return self._forward(batch, LOGITS)

    def logprobs(self, batch: TensorBatch, temperature: float = 1.0) -> torch.Tensor:
        """log_softmax(logits / T) of each token of this rank's shard, ``[b_shard, L]``.

        Position ``i`` holds the log-prob of token ``i`` (from the logits at ``i − 1``);
        0 outside ``response_mask``. Same function as π_θ inside :meth:`train_step`.
        Concatenate the ranks' results in rank order to get the batch's rows back.
        """

        def one(micro: TensorBatch) -> torch.Tensor:
            logits = self._logits(micro)
            logp = token_logprobs(logits, micro.input_ids, temperature, self.cfg.logprob_chunk)
            return logp * micro.response_mask.to(logp.dtype)

        return self._map_shard(batch, one)

    def train_step(
        self,
        batch: TensorBatch,
        temperature: float = 1.0,
        num_mini_batches: int = 1,
        micro_batch_size: int | None = None,
    ) -> dict[str, float]:
        """``ppo_epochs`` × ``num_mini_batches`` optimizer steps on this rank's shard.

        ``batch`` is the whole batch (every rank gets the same one and takes its shard);
        needs ``advantages``, plus ``behaviour_logp`` when it has edits and ``ref_logp``
        when the KL term is a loss. Without ``old_logp``, pi_old is the policy as this
        update starts, taken detached from its own forward: exact only when the batch makes
        one optimizer step (one mini-batch, one epoch), so anything else is refused.
        Returns token-weighted means over all ranks (identical on every rank).
        """
        batch.require("advantages")
        if batch.old_logp is None and (num_mini_batches != 1 or self.cfg.ppo_epochs != 1):
            raise ValueError(
                "old_logp may be left out only when the batch makes one optimizer step "
                f"(got {num_mini_batches} mini-batches x {self.cfg.ppo_epochs} epochs)"
            )
        if bool(batch.is_edit.any()) and batch.behaviour_logp is None:
            raise ValueError("edited rows need behaviour_logp (log μ under the edit prompt)")
        kl = self.algo.kl
        if kl.coef > 0 and not kl.in_reward and batch.ref_logp is None:
            raise ValueError("algorithm.kl as a loss term needs ref_logp in the batch")
        return self._run_training(
            batch, lambda micro: self._loss(micro, temperature), num_mini_batches, micro_batch_size
        )

    def _loss(self, batch: TensorBatch, temperature: float):
        logits = self._logits(batch)
        logp = token_logprobs(logits, batch.input_ids, temperature, self.cfg.logprob_chunk)
        mask = batch.response_mask
        behaviour = (
            batch.behaviour_logp if batch.behaviour_logp is not None else torch.zeros_like(logp)
        )
        policy_loss = POLICY_LOSSES[self.algo.policy_loss]
        old_logp = batch.old_logp if batch.old_logp is not None else logp.detach()
        loss, metrics = policy_loss(
            logp,
            old_logp,
            behaviour,
            batch.advantages,
            mask,
            batch.is_edit,
            clip_low=self.algo.clip_low,
            clip_high=self.algo.clip_high,
            edit_ratio_cap=self.algo.edit_ratio_cap,
        )
        metrics["policy_loss"] = float(loss.detach())
        kl = self.algo.kl
        if batch.ref_logp is not None and kl.coef > 0 and not kl.in_reward:
            kl_loss = masked_mean(kl_penalty(logp, batch.ref_logp, kl.kind), mask)
            loss = loss + kl.coef * kl_loss
            metrics["kl_loss"] = float(kl_loss.detach())
        if self.algo.entropy_coef > 0:
            per_token = token_entropy(logits, batch.input_ids, temperature, self.cfg.logprob_chunk)
            entropy = masked_mean(per_token, mask)
            loss = loss - self.algo.entropy_coef * entropy
            metrics["entropy"] = float(entropy.detach())
        metrics["total_loss"] = float(loss.detach())
        return loss, metrics, token_weights(batch)

    def export_adapter(self) -> dict[str, bytes]:
        """The LoRA adapter's files (``lora.adapter_files``) on rank 0, ``{}`` elsewhere;
        every rank must call it (a gather under ZeRO-3)."""
        if not self.lora:
            raise RuntimeError("export_adapter needs learner.lora.rank > 0")
        files = adapter_files(self.engine.module, gather=self.zero_stage == 3)
        return files if self.rank == 0 else {}

    def save_hf(self, path: str, max_shard_mb: int = 4096) -> str | None:
        """Rank 0 writes a transformers/vLLM-loadable folder (safetensors, config and
        tokenizer copied from the model path) via ``path.tmp`` + rename. Every rank must
        call it (gather under ZeRO-3); all return once the folder is in place."""
        import torch.distributed as tdist

        named = [item for bucket in self.export_buckets() for item in bucket]
        adapter = self.export_adapter() if self.lora else {}
        if self.rank == 0:
            save_hf_folder(path, named, self.model_path, max_shard_mb * 1024**2)
            if adapter:  # the adapter alone too, for serving it on the base model
                folder = Path(path) / ADAPTER_FOLDER
                folder.mkdir()
                for name, data in adapter.items():
                    (folder / name).write_bytes(data)
        if self.world_size > 1:
            tdist.barrier()
        return path if self.rank == 0 else None

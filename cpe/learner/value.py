"""The value (critic) learner rank: a causal-LM backbone with a scalar head."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from cpe.algo import value_loss
from cpe.batch import TensorBatch
from cpe.learner.base import DeepSpeedWorker
from cpe.learner.prefix import VALUES
from cpe.learner.tokens import shift_values


@dataclass
class ValueOutput:
    values: torch.Tensor  # [b, T], one raw value per position


class ValueModel(nn.Module):
    """Backbone hidden states → ``Linear(hidden, 1)``; one raw value per position.

    The head starts at zero, so the first values are 0 and the backbone (initialised
    from the policy checkpoint) is not pushed around by a random head.
    """

    def __init__(self, backbone: nn.Module, hidden_size: int) -> None:
        super().__init__()
        self.backbone = backbone
        dtype = next(backbone.parameters()).dtype
        self.value_head = nn.Linear(hidden_size, 1, dtype=dtype)
        nn.init.zeros_(self.value_head.weight)
        nn.init.zeros_(self.value_head.bias)

    def forward(self, **inputs) -> ValueOutput:
        """``inputs`` go to the backbone as they are (ids, masks, positions, cache)."""
        hidden = self.backbone(**inputs).last_hidden_state
        return ValueOutput(self.value_head(hidden).squeeze(-1))


class ValueWorker(DeepSpeedWorker):
    role = "critic"

    def build_module(self, config, torch_dtype: torch.dtype) -> nn.Module:
        from transformers import AutoModel

        # AutoModel drops the LM head of a *ForCausalLM checkpoint and keeps the backbone.
        backbone = AutoModel.from_pretrained(
            self.model_path,
            config=config,
            dtype=torch_dtype,
            attn_implementation=self.cfg.attn_implementation,
        )
        return ValueModel(backbone, config.hidden_size)

    def enable_gradient_checkpointing(self, module: nn.Module) -> None:
        super().enable_gradient_checkpointing(module.backbone)

    def _values(self, batch: TensorBatch) -> torch.Tensor:
        kept = self._forward(batch, VALUES)  # from the last prompt position on
        raw = F.pad(kept, (batch.input_ids.shape[1] - kept.shape[1], 0))
        return shift_values(raw).float() * batch.response_mask.float()

    def values(self, batch: TensorBatch) -> torch.Tensor:
        """``[b_shard, L]`` values of this rank's shard; 0 outside ``response_mask``.

        ``values[:, i]`` is the head at position ``i − 1``: V of the state in which
        token ``i`` is chosen (see :mod:`cpe.learner.tokens`). Concatenate the ranks'
        results in rank order to get the batch's rows back.
        """
        return self._map_shard(batch, self._values)

    def train_step(
        self, batch: TensorBatch, num_mini_batches: int = 1, micro_batch_size: int | None = None
    ) -> dict[str, float]:
        """Clipped value regression on ``returns`` around ``old_values`` (clip =
        ``algorithm.value_clip``); same batching and accumulation as the policy."""
        batch.require("returns", "old_values")
        return self._run_training(batch, self._loss, num_mini_batches, micro_batch_size)

    def _loss(self, batch: TensorBatch):
        values = self._values(batch)
        mask = batch.response_mask
        loss, metrics = value_loss(
            values, batch.old_values.float(), batch.returns.float(), mask, clip=self.algo.value_clip
        )
        metrics["value_loss"] = float(loss.detach())
        return loss, metrics, {"all": float(mask.sum())}

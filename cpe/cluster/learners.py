"""The learner pool as one object: policy ranks and value ranks (DeepSpeed actors).

Rows are permuted with a per-step seed, then cut into equal contiguous shards, one per
rank: every rank runs the same number of micro-batches, which ZeRO's collectives need.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import ray
import torch

from cpe.learner.batch import TensorBatch

PER_TOKEN = ("old_logp", "behaviour_logp", "advantages", "returns", "old_values")


def _shard_rows(rows: int, ranks: int) -> list[slice]:
    if rows % ranks:
        raise ValueError(f"{rows} batch rows do not split evenly over {ranks} learner ranks")
    size = rows // ranks
    return [slice(r * size, (r + 1) * size) for r in range(ranks)]


def _to_batch(t: dict[str, torch.Tensor], rows) -> TensorBatch:
    fields = {k: v[rows] for k, v in t.items() if k in TensorBatch.field_names()}
    return TensorBatch(**fields)


@dataclass
class LearnerGroup:
    policy: list  # PolicyWorker actor handles, rank order
    value: list  # ValueWorker actor handles
    num_mini_batches: int
    temperature: float
    seed: int = 0

    def _map(self, actors: list, method: str, t: dict[str, torch.Tensor], *args) -> torch.Tensor:
        shards = _shard_rows(t["input_ids"].shape[0], len(actors))
        refs = [getattr(a, method).remote(_to_batch(t, s), *args) for a, s in zip(actors, shards, strict=True)]
        return torch.cat(ray.get(refs), dim=0)

    def logprobs(self, t: dict[str, torch.Tensor], temperature: float) -> torch.Tensor:
        """Per-token log softmax(logits / T) of each row's tokens, batch layout."""
        return self._map(self.policy, "logprobs", _padded(t, len(self.policy)), temperature)[: t["input_ids"].shape[0]]

    def values(self, t: dict[str, torch.Tensor]) -> torch.Tensor:
        return self._map(self.value, "values", _padded(t, len(self.value)))[: t["input_ids"].shape[0]]

    def train(self, t: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        """One PPO update of policy and value (in parallel), metrics averaged over ranks."""
        order = torch.randperm(t["input_ids"].shape[0], generator=torch.Generator().manual_seed(self.seed + step))
        shuffled = {k: v[order] for k, v in t.items()}
        refs = {
            "policy": self._train_refs(self.policy, shuffled, "train_step", self.temperature),
            "value": self._train_refs(self.value, shuffled, "train_step", None),
        }
        out: dict[str, float] = {}
        for role, role_refs in refs.items():
            results = ray.get(role_refs)
            for key in results[0]:
                out[f"{role}/{key}"] = sum(r[key] for r in results) / len(results)
        return out

    def _train_refs(self, actors, t, method, temperature):
        shards = _shard_rows(t["input_ids"].shape[0], len(actors))
        kwargs = {"num_mini_batches": self.num_mini_batches}
        if temperature is not None:
            kwargs["temperature"] = temperature
        return [getattr(a, method).remote(_to_batch(t, s), **kwargs) for a, s in zip(actors, shards, strict=True)]

    def save(self, folder: Path) -> None:
        refs = [a.save_state.remote(str(folder / "policy_state")) for a in self.policy]
        refs += [a.save_state.remote(str(folder / "value_state")) for a in self.value]
        refs += [a.save_hf.remote(str(folder / "policy_hf")) for a in self.policy]
        ray.get(refs)

    def load(self, folder: Path) -> None:
        refs = [a.load_state.remote(str(folder / "policy_state")) for a in self.policy]
        refs += [a.load_state.remote(str(folder / "value_state")) for a in self.value]
        ray.get(refs)

    def export_ref(self, bucket_mb: int = 64):
        """Every policy rank joins the gather; rank 0's buckets stay in the object store."""
        refs = [a.export_buckets.remote(bucket_mb) for a in self.policy]
        ray.get(refs[1:])
        return refs[0]


def _padded(t: dict[str, torch.Tensor], ranks: int) -> dict[str, torch.Tensor]:
    """Forward-only passes may see any row count: repeat the last row up to a multiple."""
    rows = t["input_ids"].shape[0]
    extra = (-rows) % ranks
    if not extra:
        return t
    index = torch.cat([torch.arange(rows), torch.full((extra,), rows - 1)])
    return {k: v[index] for k, v in t.items()}

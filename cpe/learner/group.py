"""The learner pool as one object: policy ranks and value ranks (DeepSpeed actors).

Every rank gets the same batch (stored once in Ray's object store) and takes its own
equal contiguous shard: every rank runs the same number of micro-batches, which ZeRO's
collectives need.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

import ray
import torch

from cpe.batch import TensorBatch


def get_all(refs: list) -> list:
    """``ray.get`` that fails as soon as ANY rank fails. Plain ``ray.get`` waits in list
    order, so a dead rank 1 would leave us blocked on rank 0, itself stuck in a
    collective until the process-group timeout."""
    pending = list(refs)
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        ray.get(done)  # raises RayActorError / RayTaskError at once
    return ray.get(list(refs))


def _to_batch(t: dict[str, torch.Tensor]) -> TensorBatch:
    names = {f.name for f in fields(TensorBatch)}
    present = {k: v for k, v in t.items() if k in names}
    present.setdefault("is_edit", torch.zeros(t["input_ids"].shape[0], dtype=torch.bool))
    return TensorBatch(**present)


@dataclass
class LearnerGroup:
    policy: list  # PolicyWorker actor handles, rank order
    value: list  # ValueWorker actor handles
    num_mini_batches: int
    temperature: float
    seed: int = 0
    reference: list = field(default_factory=list)  # frozen reference ranks (KL), may be empty

    def _submit(
        self, actors: list, method: str, t: dict[str, torch.Tensor], *args
    ) -> tuple[list, int]:
        """Each rank takes its contiguous shard of the (once-stored) batch; rank order
        concatenation of the results gives the rows back."""
        ref = ray.put(_to_batch(_padded(t, len(actors))))
        return [getattr(a, method).remote(ref, *args) for a in actors], t["input_ids"].shape[0]

    @staticmethod
    def _collect(submitted: tuple[list, int]) -> torch.Tensor:
        refs, rows = submitted
        return torch.cat(get_all(refs), dim=0)[:rows]

    def logprobs(self, t: dict[str, torch.Tensor], temperature: float) -> torch.Tensor:
        """Per-token log softmax(logits / T) of each row's tokens, batch layout."""
        return self._collect(self._submit(self.policy, "logprobs", t, temperature))

    def old_policy_and_values(
        self, t: dict[str, torch.Tensor], edits: dict[str, torch.Tensor] | None, temperature: float
    ) -> dict[str, torch.Tensor]:
        """pi_old and V on the batch, reference log-probs if any, and mu on the edits'
        own prompts: every pool works at once instead of one after the other."""
        jobs = {
            "old_logp": self._submit(self.policy, "logprobs", t, temperature),
            "old_values": self._submit(self.value, "values", t),
        }
        if self.reference:
            jobs["ref_logp"] = self._submit(self.reference, "logprobs", t, temperature)
        if edits is not None:
            jobs["edit_logp"] = self._submit(self.policy, "logprobs", edits, temperature)
        return {name: self._collect(job) for name, job in jobs.items()}

    def train(self, t: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        """One PPO update of policy and value (in parallel). Rows are permuted with a
        per-step seed so mini-batches mix originals and edits; metrics come back
        all-reduced, identical on every rank."""
        order = torch.randperm(
            t["input_ids"].shape[0], generator=torch.Generator().manual_seed(self.seed + step)
        )
        ref = ray.put(_to_batch({k: v[order] for k, v in t.items()}))
        policy = [
            a.train_step.remote(
                ref, temperature=self.temperature, num_mini_batches=self.num_mini_batches
            )
            for a in self.policy
        ]
        value = [
            a.train_step.remote(ref, num_mini_batches=self.num_mini_batches) for a in self.value
        ]
        out = {f"policy/{k}": v for k, v in get_all(policy)[0].items()}
        out.update({f"value/{k}": v for k, v in get_all(value)[0].items()})
        return out

    def save(self, folder: Path) -> None:
        refs = [a.save_state.remote(str(folder / "policy_state")) for a in self.policy]
        refs += [a.save_state.remote(str(folder / "value_state")) for a in self.value]
        get_all(refs)
        get_all([a.save_hf.remote(str(folder / "policy_hf")) for a in self.policy])

    def load(self, folder: Path) -> None:
        refs = [a.load_state.remote(str(folder / "policy_state")) for a in self.policy]
        refs += [a.load_state.remote(str(folder / "value_state")) for a in self.value]
        get_all(refs)

    def export_ref(self, bucket_mb: int = 64):
        """Every policy rank joins the gather; rank 0's buckets stay in the object store."""
        refs = [a.export_buckets.remote(bucket_mb) for a in self.policy]
        get_all(refs[1:])
        return refs[0]

    def shutdown(self) -> None:
        for actor in self.policy + self.value + self.reference:
            ray.kill(actor)


def _padded(t: dict[str, torch.Tensor], ranks: int) -> dict[str, torch.Tensor]:
    """Forward-only passes may see any row count: repeat the last row up to a multiple."""
    rows = t["input_ids"].shape[0]
    extra = (-rows) % ranks
    if not extra:
        return t
    index = torch.cat([torch.arange(rows), torch.full((extra,), rows - 1)])
    return {k: v[index] for k, v in t.items()}

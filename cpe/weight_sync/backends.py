"""Pushing the learner's policy weights into every rollout engine after an update.

Backends share one interface, :class:`WeightSync`. ``ObjectStoreSync`` (CPU, tested):
learner rank 0 packs HF-named tensors into buckets that stay in Ray's object store and
every engine pulls them directly, never one RPC per parameter. ``NcclBroadcastSync``
(GPU): rank 0 broadcasts each bucket over NCCL into the engines (see the rollout
adapter). After a push, :meth:`WeightSync.check` compares engine and learner log-probs
on a few greedy tokens and reports the gap.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch

from cpe.trainer.experience import pad_sequences
from cpe.types import SamplingSpec


class WeightSync(ABC):
    def __init__(
        self,
        learners,
        engines,
        check_prompts: list[list[int]],
        check_tokens: int,
        pad_id: int,
        bucket_mb: int = 64,
    ):
        self.learners, self.engines = learners, engines
        self.check_prompts, self.check_tokens, self.pad_id = check_prompts, check_tokens, pad_id
        self.bucket_mb = bucket_mb

    @abstractmethod
    def transfer(self, version: int) -> None:
        """Move the current policy weights into every engine."""

    def push(self, version: int) -> dict[str, float]:
        self.transfer(version)
        return self.check() if self.check_tokens > 0 and self.check_prompts else {}

    def check(self) -> dict[str, float]:
        """Engine raw log-probs (T=1) vs the learner's log softmax(logits) on greedy tokens."""
        spec = SamplingSpec(n=1, temperature=0.0, max_tokens=self.check_tokens, logprobs=True)
        gens = [g[0] for g in self.engines.generate(self.check_prompts, spec)]
        gens = [g for g in gens if g.token_ids]
        if not gens:
            return {}
        t = pad_sequences([g.prompt_ids for g in gens], [g.token_ids for g in gens], self.pad_id)
        learner = self.learners.logprobs(t, 1.0)
        gaps = []
        for row, g in enumerate(gens):
            start = len(g.prompt_ids)
            ours = learner[row, start : start + len(g.token_ids)]
            gaps.append(
                (ours - torch.tensor(g.logprobs[: len(g.token_ids)], dtype=ours.dtype)).abs()
            )
        gap = torch.cat(gaps)
        return {
            "sync/logprob_gap_max": float(gap.max()),
            "sync/logprob_gap_mean": float(gap.mean()),
        }


class ObjectStoreSync(WeightSync):
    def transfer(self, version: int) -> None:
        # One ObjectRef to rank 0's bucket list, resolved inside each engine: the
        # tensors never pass through the driver.
        self.engines.load_weight_buckets(self.learners.export_ref(self.bucket_mb), version)


class NcclBroadcastSync(WeightSync):
    """GPU: learner rank 0 and every engine worker share one NCCL group; rank 0
    broadcasts bucket by bucket while the engines receive through vLLM's
    weight-transfer API (``cpe.weight_sync.nccl``). Untested here: no GPU in CI."""

    def __init__(self, *args, tp_size: int = 1, **kwargs):
        super().__init__(*args, **kwargs)
        self.tp_size = tp_size
        self._ready = False

    def transfer(self, version: int) -> None:
        import ray

        if not self._ready:
            self._init_group()
        metas = ray.get(self.learners.policy[0].weight_metas.remote())
        receives = [a.receive_weights.remote(metas, version) for a in self.engines.actors]
        sends = [a.broadcast_weights.remote(self.bucket_mb) for a in self.learners.policy]
        ray.get(sends + receives)

    def _init_group(self) -> None:
        import ray

        from cpe.learner.dist import free_port

        address = ray.get(self.learners.policy[0].node_ip.remote())
        port = free_port()
        world = 1 + len(self.engines.actors) * self.tp_size
        refs = [a.init_weight_sender.remote(address, port, world) for a in self.learners.policy]
        refs += [
            a.init_weight_transfer.remote(
                master_address=address,
                master_port=port,
                rank_offset=1 + i * self.tp_size,
                world_size=world,
            )
            for i, a in enumerate(self.engines.actors)
        ]
        ray.get(refs)
        self._ready = True


WEIGHT_SYNC_BACKENDS = {"object_store": ObjectStoreSync, "nccl": NcclBroadcastSync}

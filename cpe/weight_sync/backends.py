"""Pushing the learner's policy weights into every rollout engine after an update.

Backends implement :class:`cpe.protocols.WeightSync` and are chosen by
``cluster.weight_sync`` from :data:`WEIGHT_SYNC_BACKENDS`:

- ``object_store`` (any device; the CPU path, tested): learner rank 0 packs HF-named
  tensors into buckets that stay in Ray's object store and every engine pulls them
  directly, never one RPC per parameter; engines load them in place
  (``cpe.weight_sync.cpu_extension``).
- ``adapter`` (LoRA runs, any device): learner rank 0's adapter files, which every
  engine serves through vLLM's LoRA support on its unchanged base weights.
- ``nccl`` (GPU, untested here): rank 0 broadcasts every parameter over NCCL, in one
  packed producer pass, into the engines through vLLM's weight-transfer API
  (``cpe.weight_sync.nccl``).

After a push, :meth:`PushAndCheck.check` compares engine and learner log-probs on a few
greedy tokens and reports the gap.
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch

from cpe.batch import TensorBatch
from cpe.protocols import LearnerGroup, RolloutPool
from cpe.types import SamplingSpec


@dataclass(frozen=True)
class SyncCheck:
    """After each push: ``tokens`` greedy tokens on ``prompts``, engine vs learner."""

    prompts: list[list[int]]
    tokens: int
    pad_id: int

    @property
    def enabled(self) -> bool:
        return self.tokens > 0 and bool(self.prompts)


class WeightSyncFailed(RuntimeError):
    """A push did not bring every engine to the new weights: the run stops here (resume
    continues from the last checkpoint)."""


class PushAndCheck(ABC):
    name = "?"  # the cluster.weight_sync value (WEIGHT_SYNC_BACKENDS)

    def __init__(
        self,
        learners: LearnerGroup,
        engines: RolloutPool,
        check: SyncCheck,
        bucket_mb: int = 64,
        timeout_s: float = 900.0,
    ):
        self.learners, self.engines, self.sync_check = learners, engines, check
        self.bucket_mb, self.timeout_s = bucket_mb, timeout_s
        # The version the engines hold: 0 until the first push, when engines and
        # learners both hold the starting weights.
        self.version = 0

    def reset(self) -> None:  # noqa: B027 - most transports keep no state between pushes
        """Forget transport state after a failed push, so that no later push trusts it."""

    @abstractmethod
    def transfer(self, version: int) -> dict[str, float]:
        """Move the current policy weights into every engine; returns ``sync/*`` figures
        of the move (bytes, engine-side seconds) where the backend knows them."""

    def bring_up(self, engines: list[int]) -> None:
        """Load the weights the engines hold now (the learners' current policy) into the
        rebuilt ``engines`` (``EnginePool.bring_up``). During a push the learners are
        already a version ahead: a push that fails on a rebuilt engine re-issues its own
        load, which brings it level."""
        if self.version:
            self.load_into(engines, self.version)

    def rebuild_refusal(self) -> str | None:
        """Why a dead rollout engine cannot be rebuilt under this transport (the pool
        then stops at once instead of starting an engine it cannot feed), or None."""
        return None

    def load_into(self, engines: list[int], version: int) -> None:
        raise NotImplementedError(
            f"cluster.weight_sync={self.name} cannot bring a rebuilt rollout engine to the "
            "current weights; resume from the last checkpoint with trainer.resume=auto"
        )

    def push(self, version: int) -> dict[str, float]:
        """Every engine gets the current policy weights as ``version`` (the step that
        made them)."""
        started = time.perf_counter()
        try:
            metrics = self.transfer(version)
        except Exception as exc:
            self.reset()
            raise WeightSyncFailed(
                f"weight sync (cluster.weight_sync={self.name}) of version {version} failed "
                f"after {time.perf_counter() - started:.0f}s: {exc}"
            ) from exc
        self.version = version
        transfer_s = time.perf_counter() - started
        metrics["sync/transfer_s"] = transfer_s
        if metrics.get("sync/mb") and transfer_s > 0:
            metrics["sync/mb_per_s"] = metrics["sync/mb"] / transfer_s
        if self.sync_check.enabled:
            started = time.perf_counter()
            metrics.update(self.check())
            metrics["sync/check_s"] = time.perf_counter() - started
        return metrics

    def check(self) -> dict[str, float]:
        """Engine raw log-probs (T=1) vs the learner's log softmax(logits) on greedy tokens."""
        spec = SamplingSpec(n=1, temperature=0.0, max_tokens=self.sync_check.tokens, logprobs=True)
        gens = [g[0] for g in self.engines.generate(self.sync_check.prompts, spec)]
        gens = [g for g in gens if g.token_ids]
        if not gens:
            return {}
        batch = TensorBatch.from_sequences(
            [g.prompt_ids for g in gens], [g.token_ids for g in gens], self.sync_check.pad_id
        )
        learner = self.learners.logprobs(batch, 1.0)
        gaps = []
        for row, g in enumerate(gens):
            start = len(g.prompt_ids)
            ours = learner[row, start : start + len(g.token_ids)]
            theirs = torch.tensor(g.logprobs[: len(g.token_ids)], dtype=ours.dtype)
            gaps.append((ours - theirs).abs())
        gap = torch.cat(gaps)
        return {
            "sync/logprob_gap_max": float(gap.max()),
            "sync/logprob_gap_mean": float(gap.mean()),
        }


def engine_load_metrics(loads: list[dict]) -> dict[str, float]:
    """MiB one engine received and the slowest engine's load and finish seconds."""
    metrics: dict[str, float] = {}
    if sizes := [d["bytes"] for d in loads if "bytes" in d]:
        metrics["sync/mb"] = max(sizes) / 2**20
    for key in ("load_s", "finish_s"):
        if values := [d[key] for d in loads if key in d]:
            metrics[f"sync/engine_{key}"] = max(values)
    return metrics


class ObjectStoreSync(PushAndCheck):
    name = "object_store"

    def transfer(self, version: int) -> dict[str, float]:
        # One ObjectRef to rank 0's bucket list, resolved inside each engine: the
        # tensors never pass through the driver.
        loads = self.engines.load_weight_buckets(self.learners.export_ref(self.bucket_mb), version)
        return engine_load_metrics(loads)

    def load_into(self, engines: list[int], version: int) -> None:
        self.engines.load_weight_buckets(self.learners.export_ref(self.bucket_mb), version, engines)


class AdapterSync(PushAndCheck):
    """LoRA runs (``learner.lora.rank`` > 0): only the adapter moves, a few MiB; the
    engines keep the base weights and serve the adapter through vLLM's LoRA support."""

    name = "adapter"

    def transfer(self, version: int) -> dict[str, float]:
        loads = self.engines.load_adapter(self.learners.export_adapter_ref(), version)
        return engine_load_metrics(loads)

    def load_into(self, engines: list[int], version: int) -> None:
        self.engines.load_adapter(self.learners.export_adapter_ref(), version, engines)


class NcclBroadcastSync(PushAndCheck):
    """GPU: learner rank 0 and every engine worker share one NCCL group; rank 0
    broadcasts all parameters in one packed pass while the engines receive through
    vLLM's weight-transfer API. Needs the Ray-backed groups (``RayLearnerGroup.policy``,
    ``EnginePool.actors``). Untested here: no GPU in CI."""

    name = "nccl"

    def __init__(self, *args, tp_size: int = 1, **kwargs):
        super().__init__(*args, **kwargs)
        self.tp_size = tp_size
        self._ready = False

    def reset(self) -> None:
        # A broken broadcast leaves the group unusable, and its members blocked in NCCL.
        self._ready = False

    def rebuild_refusal(self) -> str | None:
        # A new engine cannot join the NCCL group the others already formed.
        return (
            "cluster.weight_sync=nccl cannot bring a rebuilt rollout engine into its "
            "broadcast group; resume from the last checkpoint with trainer.resume=auto"
        )

    def transfer(self, version: int) -> dict[str, float]:
        if not self._ready:
            self._init_group()
        ranks, engines = self.learners.policy, self.engines.actors
        [metas] = self._wait([ranks[0].weight_metas.remote()])
        receives = [a.receive_weights.remote(metas, version) for a in engines]
        sends = [a.broadcast_weights.remote(self.bucket_mb) for a in ranks]
        self._wait(sends + receives)
        return {"sync/mb": metas_bytes(metas) / 2**20}

    def _wait(self, refs: list) -> list:
        """``ray.get`` bounded by ``cluster.sync_timeout_s``: a peer that never joins the
        collective must stop the run, not hang it. The members are then killed: a task
        blocked in NCCL ignores ``ray.cancel`` and would hold its actor (and the run's
        shutdown) forever; the run resumes from its last checkpoint."""
        import ray

        try:
            return ray.get(refs, timeout=self.timeout_s)
        except ray.exceptions.GetTimeoutError as exc:
            for actor in [*self.learners.policy, *self.engines.actors]:
                ray.kill(actor)
            raise TimeoutError(
                f"no answer within cluster.sync_timeout_s={self.timeout_s:g}s; the weight-"
                "sync group's learner ranks and engines were stopped"
            ) from exc

    def _init_group(self) -> None:
        ranks, engines = self.learners.policy, self.engines.actors
        [(address, port)] = self._wait([ranks[0].rendezvous_address.remote()])
        world = 1 + len(engines) * self.tp_size
        refs = [a.init_weight_sender.remote(address, port, world) for a in ranks]
        refs += [
            a.init_weight_transfer.remote(
                master_address=address,
                master_port=port,
                rank_offset=1 + i * self.tp_size,
                world_size=world,
            )
            for i, a in enumerate(engines)
        ]
        self._wait(refs)
        self._ready = True


def metas_bytes(metas: list[tuple[str, str, list[int]]]) -> int:
    """Bytes of the parameters described by ``WeightSender.weight_metas``."""
    return sum(math.prod(shape) * getattr(torch, dtype).itemsize for _, dtype, shape in metas)


WEIGHT_SYNC_BACKENDS: dict[str, type[PushAndCheck]] = {
    "object_store": ObjectStoreSync,
    "nccl": NcclBroadcastSync,
    "adapter": AdapterSync,
}

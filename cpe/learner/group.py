"""The learner pool as one object: policy ranks, value ranks and optional frozen
reference ranks (DeepSpeed actors).

Every rank gets the same batch (stored once in Ray's object store) and takes its own
equal contiguous shard: every rank runs the same number of micro-batches, which ZeRO's
collectives need.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from cpe import failpoints
from cpe.batch import ForwardPasses, TensorBatch
from cpe.cluster.faults import actor_died
from cpe.learner.dist import RendezvousServer

# How long a failed call waits to learn whether one of its ranks died: a survivor's
# collective can fail (peer closed) before Ray has noticed the death.
DEATH_PROBE_S = 10.0


class LearnerDied(RuntimeError):
    """A learner rank's process died. The run stops: the other ranks cannot go on
    without it (ZeRO's collectives) and a rebuilt rank would lack the optimizer state;
    ``trainer.resume=auto`` continues from the last checkpoint."""


def grouped_permutation(
    group_ids: torch.Tensor | None, rows: int, generator: torch.Generator
) -> torch.Tensor:
    """A random row order in which each group's rows (a prompt's answers and their
    edits) stay together and in order; without groups, a plain permutation."""
    if group_ids is None:
        return torch.randperm(rows, generator=generator)
    groups = torch.unique(group_ids)
    shuffled = groups[torch.randperm(len(groups), generator=generator)]
    return torch.cat([(group_ids == g).nonzero().flatten() for g in shuffled])


def optimizer_updates(rows: int, mini_batch_rows: int) -> int:
    """Optimizer updates one epoch over ``rows`` sequences makes, counted as the paper
    counts them: a mini-batch is ``learner.mini_batch_prompts`` x ``rollout.n``
    sequences and edits fill further mini-batches (128 x 4 originals + 256 edits in
    mini-batches of 64 x 4 -> 3 updates)."""
    return max(1, math.ceil(rows / mini_batch_rows))


def get_all(refs: list) -> list:
    """``ray.get`` that fails as soon as ANY rank fails. Plain ``ray.get`` waits in list
    order, so a dead rank 1 would leave us blocked on rank 0, itself stuck in a
    collective until the process-group timeout."""
    import ray

    pending = list(refs)
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        ray.get(done)  # raises RayActorError / RayTaskError at once
    return ray.get(list(refs))


def first_dead(actors: list, grace_s: float = DEATH_PROBE_S) -> Any | None:
    """The first of ``actors`` found dead, else None. A live rank answers the probe
    after its current call (or never, if that call hangs in a collective with the dead
    rank); a dead one fails it as soon as Ray knows."""
    import ray

    probes = {a.pid.remote(): a for a in actors}
    pending = list(probes)
    deadline = time.monotonic() + grace_s
    while pending:
        done, pending = ray.wait(pending, timeout=max(0.0, deadline - time.monotonic()))
        if not done:
            return None
        try:
            ray.get(done)
        except Exception as exc:  # noqa: BLE001 - only a death matters here
            if actor_died(exc):
                return probes[done[0]]
    return None


@dataclass
class RayLearnerGroup:
    policy: list  # PolicyWorker actor handles, rank order
    value: list  # ValueWorker actor handles
    mini_batch_rows: int  # sequences per optimizer update (optimizer_updates)
    temperature: float
    seed: int = 0
    reference: list = field(default_factory=list)  # frozen reference ranks (KL), may be empty
    # The object store: Ray's in production; unit tests pass in-process stand-ins.
    put: Callable[[Any], Any] = field(default=lambda obj: _ray_put(obj))
    wait_all: Callable[[list], list] = field(default=lambda refs: get_all(refs))
    # After a failed call: which of its ranks died, if any (tests pass a stand-in).
    find_dead: Callable[[list], Any | None] = field(default=lambda actors: first_dead(actors))
    # Each rank's process id, by (pool, rank), for the message when it dies.
    pids: dict[tuple[str, int], int] = field(default_factory=dict)
    step: int = 0  # the last step trained in this process: names the step in LearnerDied
    # The stores the ranks rendezvoused on (cpe.learner.dist.RendezvousServer), served
    # by this process until shutdown.
    rendezvous: list[RendezvousServer] = field(default_factory=list)

    def _wait(self, actors: list, refs: list, what: str, step: int | None = None) -> list:
        """``wait_all``; a failure that comes from a dead rank is a :class:`LearnerDied`
        naming it."""
        try:
            return self.wait_all(refs)
        except Exception as exc:
            dead = self.find_dead(actors)
            if dead is None:
                raise
            raise LearnerDied(self._death(dead, what, step)) from exc

    def _death(self, actor: Any, what: str, step: int | None) -> str:
        pools = {"policy": self.policy, "value": self.value, "reference": self.reference}
        pool, rank = next(
            (name, r) for name, ranks in pools.items() for r, a in enumerate(ranks) if a is actor
        )
        pid = self.pids.get((pool, rank))
        at = f" at step {step}" if step else ""
        return (
            f"{pool} rank {rank}{f' (pid {pid})' if pid else ''} died during {what}{at}; "
            "the run stops here: resume from the last checkpoint with trainer.resume=auto"
        )

    def _submit(self, actors: list, call: Callable[[Any, Any], Any], batch: TensorBatch) -> tuple:
        """``call(actor, batch_ref)`` on every rank; each rank takes its contiguous shard
        of the (once-stored) batch, and rank-order concatenation of the results gives
        the rows back."""
        ref = self.put(batch.padded_to_multiple(len(actors)))
        return [call(a, ref) for a in actors], len(batch)

    def _collect(self, submitted: tuple, actors: list, step: int | None) -> torch.Tensor:
        refs, rows = submitted
        return torch.cat(self._wait(actors, refs, "forward passes", step), dim=0)[:rows]

    def logprobs(self, batch: TensorBatch, temperature: float) -> torch.Tensor:
        """Per-token log softmax(logits / T) of each row's tokens, batch layout."""
        submitted = self._submit(self.policy, _logprobs(temperature), batch)
        return self._collect(submitted, self.policy, self.step)

    def forward_passes(
        self,
        batch: TensorBatch,
        edits: TensorBatch | None,
        temperature: float,
        step: int,
        with_old_logp: bool = True,
    ) -> ForwardPasses:
        """pi_old (unless ``with_old_logp`` is False) and V on the batch, reference
        log-probs if any, and mu on the edits' own prompts: every pool works at once
        instead of one after the other. ``step``: the step they are for (named if a rank
        dies)."""
        logprobs = _logprobs(temperature)
        old_logp = self._submit(self.policy, logprobs, batch) if with_old_logp else None
        values = (
            self._submit(self.value, lambda actor, ref: actor.values.remote(ref), batch)
            if self.value
            else None
        )
        ref = self._submit(self.reference, logprobs, batch) if self.reference else None
        mu = self._submit(self.policy, logprobs, edits) if edits else None
        # Every pool works at once: a rank that died anywhere fails any of the waits.
        ranks = self.policy + self.value + self.reference

        def collect(submitted: tuple) -> torch.Tensor:
            return self._collect(submitted, ranks, step)

        return ForwardPasses(
            old_logp=collect(old_logp) if old_logp else None,
            # No value ranks (an estimator that reads no values): zeros in their place.
            old_values=collect(values) if values else torch.zeros(batch.response_mask.shape),
            ref_logp=collect(ref) if ref else None,
            edit_logp=collect(mu) if mu else None,
        )

    def train(self, batch: TensorBatch, step: int) -> dict[str, float]:
        """One PPO update of policy and value (in parallel). Prompt groups are permuted
        with a per-step seed so mini-batches mix prompts, originals and edits, while a
        group's rows stay together and share their prompt's forward
        (``learner.shared_prefix``); metrics come back all-reduced, identical on every
        rank."""
        self.step = step
        generator = torch.Generator().manual_seed(self.seed + step)
        ref = self.put(batch.select(grouped_permutation(batch.group_ids, len(batch), generator)))
        updates = optimizer_updates(len(batch), self.mini_batch_rows)
        policy = [
            a.train_step.remote(ref, temperature=self.temperature, num_mini_batches=updates)
            for a in self.policy
        ]
        value = [a.train_step.remote(ref, num_mini_batches=updates) for a in self.value]
        failpoints.point("update")
        results = self._wait(self.policy + self.value, policy + value, "train", step)
        out = {f"policy/{k}": v for k, v in results[0].items()}
        out["train/optimizer_updates"] = float(updates)
        if value:
            out.update({f"value/{k}": v for k, v in results[len(policy)].items()})
        return out

    def save(self, folder: Path) -> None:
        ranks = self.policy + self.value
        refs = [a.save_state.remote(str(folder / "policy_state")) for a in self.policy]
        refs += [a.save_state.remote(str(folder / "value_state")) for a in self.value]
        self._wait(ranks, refs, "checkpoint save", self.step)
        refs = [a.save_hf.remote(str(folder / "policy_hf")) for a in self.policy]
        self._wait(self.policy, refs, "checkpoint save", self.step)

    def load(self, folder: Path) -> None:
        refs = [a.load_state.remote(str(folder / "policy_state")) for a in self.policy]
        refs += [a.load_state.remote(str(folder / "value_state")) for a in self.value]
        self._wait(self.policy + self.value, refs, "checkpoint load")

    def export_ref(self, bucket_mb: int = 64):
        """Every policy rank joins the gather; rank 0's buckets stay in the object store."""
        return self._export_from_rank0([a.export_wire.remote(bucket_mb) for a in self.policy])

    def export_adapter_ref(self) -> Any:
        """Every policy rank joins; rank 0's LoRA adapter files stay in the object store."""
        return self._export_from_rank0([a.export_adapter.remote() for a in self.policy])

    def _export_from_rank0(self, refs: list) -> Any:
        """Rank 0's export ref once every rank is done. Rank 0 is waited for through a
        call queued behind its export (Ray runs an actor's calls in order), whose small
        result shows its death without fetching the buckets here: the engines would
        otherwise take a dead rank's export for their own death."""
        done = self.policy[0].pid.remote()
        self._wait(self.policy, [done, *refs[1:]], "weight export", self.step)
        return refs[0]

    def shutdown(self) -> None:
        import ray

        for actor in self.policy + self.value + self.reference:
            ray.kill(actor)
        for server in self.rendezvous:
            server.close()


def _logprobs(temperature: float) -> Callable[[Any, Any], Any]:
    return lambda actor, ref: actor.logprobs.remote(ref, temperature)


def _ray_put(obj: Any) -> Any:
    import ray

    return ray.put(obj)

"""A Bradley-Terry reward model as the reward backend (``grm=bt``): the paper's PPO with
a scalar reward model.

The driver tokenises each ``(record, answer)`` with the reward model's tokenizer
(:func:`cpe.reward.bt_model.scored_ids`: the policy prompt, the answer, EOS); the
:class:`BTScorer` actors on the GRM pool's bundles (cluster.pools.grm, one per slot)
only ever see token ids and return normalised rewards (the folder's RewardNorm). Such
a model writes no critiques, so it serves ``algorithm.mode=ppo`` only.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Protocol

import torch

from cpe.algo.bradley_terry import normalise_rewards
from cpe.algo.grm_parse import DEFAULT_WEIGHTS
from cpe.batch import TensorBatch
from cpe.cluster.slots import ActorSlots
from cpe.prompts import DEFAULT, PromptSet
from cpe.reward.base import (
    CRITIQUE_TEMPERATURE,
    SCORE_TEMPERATURE,
    GRMBackend,
    GRMError,
    GRMResult,
    Item,
    Reply,
)
from cpe.reward.bt_model import last_token_values, scored_ids

Pair = tuple[list[int], list[int]]  # (prompt ids, answer ids ending in EOS)
NO_CRITIQUES = (
    "grm.backend=bt: a Bradley-Terry reward model gives one number and writes no "
    "critiques; algorithm.mode=cpe needs a generative GRM (grm=vllm, openai or python)"
)


class BTScorer:
    """One reward model on one GRM-pool bundle (wrapped with ``ray.remote`` by
    :func:`bt_pool`; tests use it in-process)."""

    def __init__(
        self,
        model_path: str,
        dtype: str = "float32",
        device: str = "cpu",
        micro_batch_rows: int = 8,
        model_cache_dir: str | None = None,
    ) -> None:
        from cpe.cluster.threads import bundle_threads
        from cpe.learner.ds_config import uses_bf16
        from cpe.models.paths import DEFAULT_CACHE, resolve_model_path
        from cpe.reward.bt_model import load_reward_model

        torch.set_num_threads(bundle_threads())
        path = resolve_model_path(model_path, model_cache_dir or DEFAULT_CACHE, "model.grm.path")
        # As the learners: bf16 only on GPU, CPU keeps fp32 whatever the dtype.
        torch_dtype = torch.bfloat16 if uses_bf16(device, dtype) else torch.float32
        self.device = torch.device("cuda" if device == "gpu" else "cpu")
        model, self.norm = load_reward_model(path, torch_dtype)
        self.model = model.to(self.device)
        self.micro_batch_rows = max(1, micro_batch_rows)

    def ping(self) -> bool:
        return True

    def pid(self) -> int:
        return os.getpid()

    def score(self, pairs: Sequence[Pair]) -> list[float]:
        """Normalised rewards ``(raw - mean) / std``, one per pair, in order."""
        raw = self.raw_rewards(pairs)
        return normalise_rewards(raw, self.norm.mean, self.norm.std).tolist()

    @torch.no_grad()
    def raw_rewards(self, pairs: Sequence[Pair]) -> torch.Tensor:
        """The head at each sequence's last token (its EOS), ``[len(pairs)]`` float32."""
        step = self.micro_batch_rows
        chunks = [self._forward(pairs[i : i + step]) for i in range(0, len(pairs), step)]
        return torch.cat(chunks) if chunks else torch.zeros(0)

    def _forward(self, pairs: Sequence[Pair]) -> torch.Tensor:
        batch = TensorBatch.from_sequences(
            [list(p) for p, _ in pairs], [list(a) for _, a in pairs], pad_id=0
        )
        ids, mask = batch.input_ids.to(self.device), batch.attention_mask.to(self.device)
        values = self.model(input_ids=ids, attention_mask=mask).values
        return last_token_values(values.float(), mask).cpu()


class RewardScorer(Protocol):
    """What :class:`BTBackend` scores through: ids in, normalised rewards out."""

    def score(self, pairs: Sequence[Pair]) -> list[float]: ...


class BTPool(ActorSlots):
    """The GRM pool's :class:`BTScorer` actors; pairs are split into equal contiguous
    chunks, one per actor, and the rewards come back in order. A scorer that dies is
    rebuilt on its slot from ``model.grm.path`` (fixed weights) and its chunk scored
    again (:class:`ActorSlots`)."""

    kind = "scorer"
    none_given = "BTPool needs at least one scorer actor (cluster.pools.grm.engines)"

    def score(self, pairs: Sequence[Pair]) -> list[float]:
        calls = [
            (k, lambda actor, a=a, b=b: [actor.score.remote(list(pairs[a:b]))])
            for k, (a, b) in self._chunks(len(pairs))
        ]
        return [reward for chunk in self._on_each("score", calls) for reward in chunk]

    def shutdown(self) -> None:
        import ray

        for actor in self.actors:
            ray.kill(actor)


def bt_pool(
    placement: Any, cfg: Any, model_path: str, micro_batch_rows: int, faults: Any = None
) -> BTPool:
    """One :class:`BTScorer` per slot of the GRM pool, each resolving ``model_path`` on its
    own node; returns once every actor has loaded its model. A scorer that dies later is
    rebuilt, ``cluster.engine_restarts`` times per call at most, counted in ``faults``
    (cpe.cluster.faults.FaultLog)."""
    import ray

    from cpe.models.paths import cache_dir_for_actors

    actor = ray.remote(BTScorer)

    def start(index: int):
        return actor.options(**placement.options_for("grm", index)).remote(
            model_path,
            cfg.model.grm.dtype,
            cfg.cluster.device,
            micro_batch_rows,
            cache_dir_for_actors(cfg.model.cache_dir),
        )

    pool = BTPool(
        [start(i) for i in range(placement.slots("grm"))],
        start=start,
        restarts=cfg.cluster.engine_restarts,
        name="grm",
        faults=faults,
    )
    try:
        ray.get([a.ping.remote() for a in pool.actors])
    except BaseException:
        pool.shutdown()
        raise
    return pool


class BTBackend(GRMBackend):
    """Rewards from a Bradley-Terry reward model: always valid once scored; an item whose
    prompt leaves no room for its answer is invalid (dropped), never scored 0."""

    def __init__(
        self,
        scorer: RewardScorer,
        tokenizer: Any,
        prompts: PromptSet = DEFAULT,
        max_len: int = 4096,
    ):
        self.scorer = scorer
        self.tokenizer = tokenizer
        self.prompts = prompts
        self.max_len = max_len

    def generate(self, items: Sequence[Item], temperature: float) -> list[Reply]:
        raise GRMError(NO_CRITIQUES)

    def critique(
        self, items: Sequence[Item], temperature: float = CRITIQUE_TEMPERATURE
    ) -> list[GRMResult]:
        raise GRMError(NO_CRITIQUES)

    def score(
        self,
        items: Sequence[Item],
        temperature: float = SCORE_TEMPERATURE,
        weights: Sequence[float] = DEFAULT_WEIGHTS,
        clamp: bool = False,
    ) -> list[GRMResult]:
        """One reward per item; temperature, weights and clamp do not apply."""
        results: list[GRMResult | None] = [None] * len(items)
        pairs, positions = [], []
        for i, (record, answer) in enumerate(items):
            try:
                pairs.append(scored_ids(self.tokenizer, self.prompts, record, answer, self.max_len))
                positions.append(i)
            except ValueError as exc:
                results[i] = GRMResult("", None, "", None, False, error=str(exc))
        rewards = self.scorer.score(pairs) if pairs else []
        if len(rewards) != len(pairs):
            raise GRMError(f"BT scorer returned {len(rewards)} rewards for {len(pairs)} answers")
        for i, reward in zip(positions, rewards, strict=True):
            results[i] = GRMResult("", None, "", float(reward), True)
        return [r for r in results if r is not None]

    def __repr__(self) -> str:
        return f"BTBackend(max_len={self.max_len})"

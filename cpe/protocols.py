"""The seams between the driver and the actor groups it drives.

The driver, the experience makers and the weight-sync backends depend on these
interfaces only; the Ray-backed classes (``EnginePool``, ``RayLearnerGroup``) implement
them, and unit tests drive the glue with small in-process fakes of the same shape.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import torch

from cpe.batch import ForwardPasses, TensorBatch
from cpe.types import Generation, SamplingSpec

if TYPE_CHECKING:
    from cpe.data.records import Record
    from cpe.reward.base import GRMResult
    from cpe.trainer.experience import Experience


class Generator(Protocol):
    """Anything that samples completions of token-id prompts (engines; eval and judges)."""

    def generate(
        self, prompt_ids: Sequence[Sequence[int]], spec: SamplingSpec
    ) -> list[list[Generation]]: ...


class RolloutPool(Generator, Protocol):
    """vLLM policy engines: sampling and in-place weight loading."""

    def load_weight_buckets(
        self, buckets_ref: Any, version: int | None = None, engines: Sequence[int] | None = None
    ) -> list[dict]: ...

    def load_adapter(
        self, files_ref: Any, version: int, engines: Sequence[int] | None = None
    ) -> list[dict]: ...

    def shutdown(self) -> None: ...


class RewardModel(Protocol):
    """The GRM as the makers see it (``cpe.reward.base.GRMScorer``)."""

    critique_gives_reward: bool

    def critique(self, items: Sequence[tuple[Record, str]]) -> list[GRMResult]: ...

    def score(self, items: Sequence[tuple[Record, str]]) -> list[GRMResult]: ...

    def metrics(self) -> dict[str, float]: ...

    def reset_metrics(self) -> None: ...

    def check_invalid_share(self, max_share: float) -> None: ...


class ExperienceMaker(Protocol):
    """One strategy per ``algorithm.mode``: turns a step's records into samples."""

    def make(self, records: Sequence[Record], step: int) -> Experience: ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


class LearnerGroup(Protocol):
    """Policy, value and reference ranks behind one object."""

    def forward_passes(
        self,
        batch: TensorBatch,
        edits: TensorBatch | None,
        temperature: float,
        step: int,
        with_old_logp: bool = True,
    ) -> ForwardPasses: ...

    def logprobs(self, batch: TensorBatch, temperature: float) -> torch.Tensor: ...

    def train(self, batch: TensorBatch, step: int) -> dict[str, float]: ...

    def save(self, folder: Path) -> None: ...

    def load(self, folder: Path) -> None: ...

    def export_ref(self, bucket_mb: int = 64) -> Any: ...

    def export_adapter_ref(self) -> Any: ...

    def shutdown(self) -> None: ...


class WeightSync(Protocol):
    """Brings every rollout engine to the learners' current policy weights."""

    def push(self, version: int) -> dict[str, float]: ...


class Evaluator(Protocol):
    """Evaluation during training (trainer.eval_every); cpe.trainer.evaluator."""

    def prepare(self, step: int) -> None: ...

    def due(self, step: int) -> bool: ...

    def run(self, step: int) -> dict[str, float]: ...

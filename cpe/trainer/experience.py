"""One step's samples and their padded tensor form (pure; no Ray, no engines).

A :class:`Sample` is an original answer or an edit. Edits carry the edit prompt they
were generated under (for the behaviour log-probs mu) but train under the ORIGINAL
prompt (spec step 4), so both layouts are built here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import torch

from cpe.batch import TensorBatch
from cpe.data.records import Record


@dataclass
class Sample:
    group_id: int  # index of the prompt within the step
    record: Record
    prompt_ids: list[int]
    response_ids: list[int]
    text: str
    is_edit: bool = False
    pair_id: int = -1  # originals: own index; edits: index of the original they revise
    edit_prompt_ids: list[int] | None = None
    critique: str | None = None  # originals: the critique their edit was made from
    reward: float | None = None  # None: the GRM result was invalid -> no loss
    scores: tuple[int, int, int] | None = None
    finish_reason: str = "length"

    @property
    def valid(self) -> bool:
        return self.reward is not None and len(self.response_ids) > 0


@dataclass
class Experience:
    """Everything one step produced, before it becomes tensors."""

    originals: list[Sample]
    edits: list[Sample] = field(default_factory=list)  # the whole edit pool
    selected: list[int] = field(default_factory=list)  # indices into ``edits``
    grm_stats: dict[str, float] = field(default_factory=dict)

    @property
    def batch_samples(self) -> list[Sample]:
        """ALL originals, then the selected edits, in a fixed order."""
        return self.originals + [self.edits[i] for i in self.selected]

    def reward_tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        def as_tensor(samples):
            return torch.tensor(
                [math.nan if s.reward is None else s.reward for s in samples], dtype=torch.float32
            )

        return as_tensor(self.originals), as_tensor(self.edits)


def training_tensors(samples: list[Sample], pad_id: int) -> TensorBatch:
    """The learner batch: every sample under its ORIGINAL prompt. Rows whose reward is
    invalid stay in (shards stay equal across ranks) with an all-zero response mask."""
    batch = TensorBatch.from_sequences(
        [s.prompt_ids for s in samples], [s.response_ids for s in samples], pad_id
    )
    valid = torch.tensor([s.valid for s in samples], dtype=torch.float32)
    return replace(
        batch,
        response_mask=batch.response_mask * valid[:, None],
        is_edit=torch.tensor([s.is_edit for s in samples], dtype=torch.bool),
        rewards=torch.tensor([s.reward if s.valid else 0.0 for s in samples]),
        pair_ids=torch.tensor([s.pair_id for s in samples], dtype=torch.long),
        group_ids=torch.tensor([s.group_id for s in samples], dtype=torch.long),
    )


def edit_prompt_tensors(samples: list[Sample], pad_id: int) -> TensorBatch:
    """The edits under the prompt they were sampled from (for mu)."""
    prompts = [s.edit_prompt_ids or [] for s in samples]
    return TensorBatch.from_sequences(prompts, [s.response_ids for s in samples], pad_id)


def move_response_values(
    src: torch.Tensor,
    src_start: list[int],
    dst_start: list[int],
    lengths: list[int],
    dst_shape: tuple[int, int],
) -> torch.Tensor:
    """Copy each row's response-position values from one layout into another."""
    out = torch.zeros(dst_shape, dtype=src.dtype)
    for row, (s, d, n) in enumerate(zip(src_start, dst_start, lengths, strict=True)):
        out[row, d : d + n] = src[row, s : s + n]
    return out


def behaviour_logp_for(
    samples: list[Sample], edit_logp: torch.Tensor, rows: list[int], dst_shape: tuple[int, int]
) -> torch.Tensor:
    """Place mu (computed on the edit-prompt layout for ``rows``) into the batch layout."""
    picked = [samples[r] for r in rows]
    moved = move_response_values(
        edit_logp,
        [len(s.edit_prompt_ids or []) for s in picked],
        [len(s.prompt_ids) for s in picked],
        [len(s.response_ids) for s in picked],
        (len(rows), dst_shape[1]),
    )
    out = torch.zeros(dst_shape, dtype=edit_logp.dtype)
    out[rows] = moved
    return out

"""The Bradley-Terry reward model as cpe writes and reads it.

A causal LM's backbone with a scalar head (:class:`cpe.learner.value.ValueModel`) reads
``policy prompt + answer + EOS`` and its reward is the head at the EOS: the same text the
policy's answer is sampled from, so training pairs and PPO rollouts are scored alike.
Its folder: the backbone as an HF model (config, safetensors, tokenizer; loadable with
``AutoModel``), the head in ``reward_head.safetensors`` and the normalisation the rewards
are served with in ``reward_norm.json``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from cpe.prompts import PromptSet
from cpe.prompts.chat import to_token_ids
from cpe.prompts.render import policy_messages

HEAD_FILE = "reward_head.safetensors"
NORM_FILE = "reward_norm.json"


@dataclass(frozen=True)
class RewardNorm:
    """Mean and std of the raw rewards of the training answers (cpe.algo.reward_stats)."""

    mean: float
    std: float
    answers: int

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self), indent=1).encode()

    @classmethod
    def read(cls, folder: str | Path) -> RewardNorm:
        path = Path(folder) / NORM_FILE
        data = json.loads(path.read_text())
        return cls(float(data["mean"]), float(data["std"]), int(data["answers"]))


def is_reward_model(folder: str | Path) -> bool:
    return (Path(folder) / HEAD_FILE).is_file() and (Path(folder) / NORM_FILE).is_file()


def completion_ids(tokenizer: Any, text: str, room: int | None = None) -> list[int]:
    """``text`` as a completion: its tokens (cut to ``room`` - 1 when given) and the EOS
    that ends a finished answer (what the engines sample and the reward is read at)."""
    # Marker text in an answer (``<|im_end|>``) stays text: only the EOS below ends it.
    encoded = tokenizer(text.strip(), add_special_tokens=False, split_special_tokens=True)
    ids = list(encoded["input_ids"])
    if room is not None:
        ids = ids[: max(0, room - 1)]
    return [*ids, tokenizer.eos_token_id]


def scored_ids(
    tokenizer: Any, prompts: PromptSet, record: Any, answer: str, max_len: int
) -> tuple[list[int], list[int]]:
    """(prompt ids, answer ids ending in EOS) of ``answer`` to ``record``; the answer is
    cut to fit ``max_len``. Raises ValueError when the prompt alone does not fit."""
    prompt = to_token_ids(tokenizer, policy_messages(record, prompts))
    room = max_len - len(prompt)
    if room < 2:
        raise ValueError(
            f"record {record.id!r}: its prompt takes {len(prompt)} tokens, "
            f"no room for an answer within {max_len}"
        )
    return prompt, completion_ids(tokenizer, answer, room)


def last_token_values(values: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """``values[i, last real token of row i]`` of right-padded rows, ``[b]``."""
    last = attention_mask.long().sum(dim=1) - 1
    return values.gather(1, last.clamp(min=0).unsqueeze(1)).squeeze(1)


def split_named(
    named: Sequence[tuple[str, torch.Tensor]], prefix: str
) -> tuple[list[tuple[str, torch.Tensor]], dict[str, torch.Tensor]]:
    """A ValueModel's tensors as (backbone tensors named as in its causal LM's checkpoint,
    i.e. under ``prefix``, and the head's ``weight``/``bias``)."""
    backbone, head = [], {}
    for name, tensor in named:
        if name.startswith("value_head."):
            head[name.removeprefix("value_head.")] = tensor.detach().cpu().contiguous()
        else:
            backbone.append((f"{prefix}.{name.removeprefix('backbone.')}", tensor))
    if set(head) != {"weight", "bias"}:
        raise ValueError(f"reward head tensors {sorted(head)}, expected ['bias', 'weight']")
    return backbone, head


def save_reward_model(
    path: str | Path,
    named: Sequence[tuple[str, torch.Tensor]],
    source: str | Path,
    prefix: str,
    norm: RewardNorm,
) -> Path:
    """The reward model's folder, published whole (cpe.learner.hf_io.save_hf_folder)."""
    from safetensors.torch import save

    from cpe.learner.hf_io import save_hf_folder

    backbone, head = split_named(named, prefix)
    extra = {HEAD_FILE: save(head), NORM_FILE: norm.to_bytes()}
    return save_hf_folder(path, backbone, source, extra_files=extra)


def load_reward_model(
    folder: str | Path, dtype: torch.dtype = torch.float32, attn_implementation: str = "sdpa"
):
    """(ValueModel in eval mode, RewardNorm) from a folder :func:`save_reward_model` wrote."""
    from safetensors.torch import load_file
    from transformers import AutoModel

    from cpe.learner.value import ValueModel

    folder = Path(folder)
    if not is_reward_model(folder):
        raise FileNotFoundError(
            f"{folder} is not a cpe reward model (needs {HEAD_FILE} and {NORM_FILE}; "
            "python -m cpe.sft sft.task=bt writes one)"
        )
    backbone = AutoModel.from_pretrained(
        str(folder), dtype=dtype, attn_implementation=attn_implementation
    )
    model = ValueModel(backbone, backbone.config.hidden_size)
    model.value_head.load_state_dict(load_file(str(folder / HEAD_FILE)))
    return model.eval(), RewardNorm.read(folder)

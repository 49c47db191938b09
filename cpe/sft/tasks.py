"""What each ``sft.task`` reads, which learner rank trains it, and how it is evaluated
and saved: small strategy objects behind one registry (``SFT_TASKS``), so the loop in
cpe.sft.loop reads the same for every task."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch

from cpe.algo import bt_loss, reward_stats
from cpe.batch import TensorBatch
from cpe.config import CPEConfig
from cpe.data.paths import load_path
from cpe.prompts import PromptSet
from cpe.reward.bt_model import RewardNorm
from cpe.sft.examples import (
    chosen_examples,
    pairs_batch,
    read_chat_examples,
    require_answers,
    rows_batch,
    split_by_id,
    tokenize_chats,
    tokenize_pairs,
)
from cpe.sft.workers import RewardModelWorker, SFTWorker

Gather = Callable[[list], list]  # ray.get that fails as soon as any rank fails


@dataclass(frozen=True)
class TaskData:
    train: list[Any]  # Tokenized rows or TokenizedPairs
    held_out: list[Any]
    skipped: int  # examples over sft.max_len


class SFTTask(Protocol):
    worker: type
    unit: str  # what sft.batch_examples counts: "examples" | "pairs"

    def load(self, cfg: CPEConfig, tokenizer: Any, prompts: PromptSet) -> TaskData: ...

    def batch(self, items: Sequence[Any], pad_id: int, ranks: int) -> TensorBatch: ...

    def train_step(self, actors: list, ref: Any) -> list: ...

    def evaluate(
        self, actors: list, items: Sequence[Any], pad_id: int, gather: Gather
    ) -> dict[str, float]: ...

    def save(
        self, actors: list, path: Path, data: TaskData, pad_id: int, gather: Gather
    ) -> None: ...


def _split(cfg: CPEConfig, items: list[Any], held: list[Any] | None) -> tuple[list, list]:
    return (items, held) if held is not None else split_by_id(items, cfg.sft.eval_share)


def _chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _ray_put(obj: Any) -> Any:
    import ray

    return ray.put(obj)


class ChatTask:
    """Next-token loss on replies: GRM critiques (``grm``) or chosen answers (``policy``)."""

    worker = SFTWorker
    unit = "examples"

    def __init__(self, read: Callable[[str, CPEConfig, PromptSet], list]):
        self.read = read

    def load(self, cfg: CPEConfig, tokenizer: Any, prompts: PromptSet) -> TaskData:
        s = cfg.sft
        examples = self.read(s.train_path, cfg, prompts)
        held = self.read(s.eval_path, cfg, prompts) if s.eval_path else None
        train, held = _split(cfg, examples, held)
        train_rows, skipped = tokenize_chats(train, tokenizer, s.max_len)
        held_rows, held_skipped = tokenize_chats(held, tokenizer, s.max_len)
        return TaskData(train_rows, held_rows, skipped + held_skipped)

    def batch(self, items, pad_id, ranks):
        return rows_batch(items, pad_id, multiple=ranks)

    def train_step(self, actors, ref):
        return [a.sft_step.remote(ref) for a in actors]

    def evaluate(self, actors, items, pad_id, gather):
        """Token-mean ``-log p`` of the held-out replies."""
        nll = tokens = 0.0
        for chunk in _chunks(items, 32):
            batch = rows_batch(chunk, pad_id, multiple=len(actors))
            ref = _ray_put(batch)
            logp = torch.cat(gather([a.logprobs.remote(ref, 1.0) for a in actors]))
            nll -= float(logp.sum())  # pads carry no response tokens
            tokens += float(batch.response_mask.sum())
        return {"eval/loss": nll / tokens if tokens else float("nan"), "eval/tokens": tokens}

    def save(self, actors, path, data, pad_id, gather):
        gather([a.save_hf.remote(str(path)) for a in actors])


def _read_grm_examples(path: str, cfg: CPEConfig, prompts: PromptSet) -> list:
    return read_chat_examples(path)


def _read_chosen(path: str, cfg: CPEConfig, prompts: PromptSet) -> list:
    return chosen_examples(load_path(path, cfg.sft.personas_path), prompts, path)


class PairTask:
    """A Bradley-Terry reward model on preference pairs."""

    worker = RewardModelWorker
    unit = "pairs"

    def load(self, cfg: CPEConfig, tokenizer: Any, prompts: PromptSet) -> TaskData:
        s = cfg.sft
        records = self._read(s.train_path, cfg)
        held = self._read(s.eval_path, cfg) if s.eval_path else None
        train, held = _split(cfg, records, held)
        train_pairs, skipped = tokenize_pairs(train, tokenizer, prompts, s.max_len)
        held_pairs, held_skipped = tokenize_pairs(held, tokenizer, prompts, s.max_len)
        return TaskData(train_pairs, held_pairs, skipped + held_skipped)

    @staticmethod
    def _read(path: str, cfg: CPEConfig) -> list:
        records = load_path(path, cfg.sft.personas_path)
        require_answers(records, ("chosen", "rejected"), path)
        return records

    def batch(self, items, pad_id, ranks):
        return pairs_batch(items, pad_id, multiple=ranks)

    def train_step(self, actors, ref):
        return [a.bt_step.remote(ref) for a in actors]

    def rewards(self, actors, pairs, pad_id, gather) -> tuple[torch.Tensor, torch.Tensor]:
        """(chosen, rejected) raw rewards of ``pairs``."""
        chosen, rejected = [], []
        for chunk in _chunks(pairs, 16):
            batch = pairs_batch(chunk, pad_id, multiple=len(actors))
            ref = _ray_put(batch)
            out = torch.cat(gather([a.rewards.remote(ref) for a in actors]))[: 2 * len(chunk)]
            chosen.append(out[0::2])
            rejected.append(out[1::2])
        return torch.cat(chosen), torch.cat(rejected)

    def evaluate(self, actors, items, pad_id, gather):
        """Held-out pairwise accuracy (ties count as wrong) and loss."""
        chosen, rejected = self.rewards(actors, items, pad_id, gather)
        loss, metrics = bt_loss(chosen, rejected)
        return {
            "eval/accuracy": metrics["accuracy"],
            "eval/bt_loss": float(loss),
            "eval/margin": metrics["margin"],
            "eval/pairs": float(len(items)),
        }

    def save(self, actors, path, data, pad_id, gather):
        """The folder with its reward normalisation: mean and std of the raw rewards of
        every training answer."""
        chosen, rejected = self.rewards(actors, data.train, pad_id, gather)
        mean, std = reward_stats(torch.cat([chosen, rejected]))
        norm = RewardNorm(mean, std, answers=2 * len(data.train))
        gather([a.save_reward_model.remote(str(path), norm) for a in actors])


SFT_TASKS: dict[str, SFTTask] = {
    "grm": ChatTask(_read_grm_examples),
    "policy": ChatTask(_read_chosen),
    "bt": PairTask(),
}

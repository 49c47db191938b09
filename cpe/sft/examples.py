"""Supervised examples: what each ``sft.task`` reads, as token ids.

An SFT example is a chat and the reply to learn (loss on the reply's tokens only); a
pair is one prompt with a chosen and a rejected answer (the Bradley-Terry task). Both
are tokenized once on the driver with the starting model's tokenizer; examples longer
than ``sft.max_len`` are left out and counted, never cut silently.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from cpe.batch import TensorBatch
from cpe.data.errors import ErrorList
from cpe.data.fields import IdRegistry, RowCheck, as_id, as_text
from cpe.data.records import Record
from cpe.data.sources import read_rows
from cpe.data.split import is_held_out
from cpe.prompts import PromptSet
from cpe.prompts.chat import Message, to_token_ids
from cpe.prompts.render import policy_messages
from cpe.reward.bt_model import completion_ids, scored_ids

ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class ChatExample:
    """A chat and the assistant reply to learn (cpe.label writes these for the GRM)."""

    id: str
    messages: tuple[Message, ...]
    response: str


@dataclass(frozen=True)
class Tokenized:
    """One training row: ``prompt`` ids, then ``response`` ids (the ones with a loss)."""

    id: str
    prompt: list[int]
    response: list[int]


@dataclass(frozen=True)
class TokenizedPair:
    id: str
    chosen: Tokenized
    rejected: Tokenized


def split_by_id(items: Sequence[Any], share: float) -> tuple[list[Any], list[Any]]:
    train = [x for x in items if not is_held_out(x.id, share)]
    held = [x for x in items if is_held_out(x.id, share)]
    return train, held


# ----------------------------------------------------------------------------- reading


def read_chat_examples(path: str) -> list[ChatExample]:
    """``{"id", "messages": [{"role", "content"}, ...], "response"}`` rows (JSONL,
    parquet or an HF folder); every bad row is reported with its line."""
    row_set = read_rows(path, what="SFT examples")
    ids = IdRegistry("id", row_set.unit)
    examples = []
    for row in row_set.rows:
        check = RowCheck(row_set.errors, row.line)
        example_id = check(as_id, row.data.get("id"))
        if example_id is not None:
            check(ids.claim, example_id, row.line)
        messages = check(_as_messages, row.data.get("messages"))
        response = check(as_text, row.data.get("response"), "response")
        if not check.failed:
            examples.append(ChatExample(example_id, messages, response))
    row_set.errors.raise_if_any()
    return examples


def _as_messages(value: Any) -> tuple[Message, ...]:
    from cpe.data.fields import FieldProblem

    if not isinstance(value, list) or not value:
        raise FieldProblem("messages", "must be a non-empty list of {role, content} objects")
    out = []
    for i, message in enumerate(value):
        ok = isinstance(message, dict) and message.get("role") in ROLES
        if not ok or not isinstance(message.get("content"), str):
            raise FieldProblem(
                f"messages[{i}]", f"must be {{role: {'|'.join(ROLES)}, content: string}}"
            )
        out.append({"role": message["role"], "content": message["content"]})
    return tuple(out)


def chosen_examples(records: Sequence[Record], prompts: PromptSet, path: str) -> list[ChatExample]:
    """The policy's chat for each record and its chosen answer (the paper's policy SFT)."""
    require_answers(records, ("chosen",), path)
    return [ChatExample(r.id, tuple(policy_messages(r, prompts)), r.chosen) for r in records]


def require_answers(records: Sequence[Record], fields: Sequence[str], path: str) -> None:
    errors = ErrorList(path)
    for record in records:
        for name in fields:
            if not getattr(record, name):
                errors.add(f"record {record.id!r} has no {name!r} answer", field=name)
    errors.raise_if_any()


# -------------------------------------------------------------------------- tokenizing


def tokenize_chats(
    examples: Sequence[ChatExample], tokenizer: Any, max_len: int
) -> tuple[list[Tokenized], int]:
    """(rows that fit ``max_len``, how many did not)."""
    rows, skipped = [], 0
    for ex in examples:
        prompt = to_token_ids(tokenizer, ex.messages)
        response = completion_ids(tokenizer, ex.response)
        if len(prompt) + len(response) > max_len:
            skipped += 1
            continue
        rows.append(Tokenized(ex.id, prompt, response))
    return rows, skipped


def tokenize_pairs(
    records: Sequence[Record], tokenizer: Any, prompts: PromptSet, max_len: int
) -> tuple[list[TokenizedPair], int]:
    """Chosen and rejected answer of each record as the reward model reads them
    (cpe.reward.bt_model.scored_ids); (pairs that fit ``max_len`` whole, pairs that do
    not). A cut answer would hide what decides the pair, and two long answers cut to a
    shared beginning would make a contradictory one, so such pairs are left out."""
    pairs, skipped = [], 0
    for record in records:
        sides = []
        for answer in (record.chosen, record.rejected):
            try:
                prompt, ids = scored_ids(tokenizer, prompts, record, answer, max_len)
            except ValueError:
                break
            if len(ids) < len(completion_ids(tokenizer, answer)):
                break
            sides.append(Tokenized(record.id, prompt, ids))
        if len(sides) < 2:
            skipped += 1
            continue
        pairs.append(TokenizedPair(record.id, *sides))
    return pairs, skipped


# ---------------------------------------------------------------------------- batching


def rows_batch(rows: Sequence[Tokenized], pad_id: int, multiple: int = 1) -> TensorBatch:
    """Right-padded rows, padded with loss-free copies of the last row up to a multiple
    of ``multiple`` (ranks must get equal shards; the copies add nothing to the loss)."""
    batch = TensorBatch.from_sequences([r.prompt for r in rows], [r.response for r in rows], pad_id)
    extra = (-len(rows)) % multiple
    if not extra:
        return batch
    padded = batch.padded_to_multiple(multiple)
    padded.response_mask[len(rows) :] = 0.0
    return padded


def pairs_batch(pairs: Sequence[TokenizedPair], pad_id: int, multiple: int = 1) -> TensorBatch:
    """Rows ``chosen_0, rejected_0, chosen_1, ...``; ``response_mask`` marks only each
    row's EOS (where the reward is read), and pads are whole loss-free pairs so every
    rank's shard holds whole pairs."""
    rows = [row for p in pairs for row in (p.chosen, p.rejected)]
    batch = rows_batch(rows, pad_id, multiple=2 * multiple)
    mask = torch.zeros_like(batch.response_mask)
    last = batch.attention_mask.sum(dim=1) - 1
    mask[torch.arange(len(batch)), last] = batch.response_mask.amax(dim=1)
    batch.response_mask = mask
    return batch

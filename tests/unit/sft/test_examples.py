"""Supervised examples: reading, the held-out split, tokenizing and batch layout."""

from __future__ import annotations

import json

import pytest
import torch

from cpe.data import DataError
from cpe.data.split import is_held_out
from cpe.sft.examples import (
    Tokenized,
    TokenizedPair,
    pairs_batch,
    read_chat_examples,
    rows_batch,
    split_by_id,
)
from cpe.sft.loop import due, update_schedule


def test_the_held_out_split_depends_only_on_ids():
    ids = [f"item-{i}" for i in range(2000)]
    held = [i for i in ids if is_held_out(i, 0.1)]
    assert 150 < len(held) < 250  # about 10 %
    assert held == [i for i in reversed(ids) if is_held_out(i, 0.1)][::-1]
    assert not any(is_held_out(i, 0.0) for i in ids)


def test_split_by_id_keeps_every_item_once():
    class Item:
        def __init__(self, i):
            self.id = f"x{i}"

    items = [Item(i) for i in range(100)]
    train, held = split_by_id(items, 0.3)
    assert sorted(x.id for x in train + held) == sorted(x.id for x in items)
    assert not {x.id for x in train} & {x.id for x in held}


def test_read_chat_examples_reports_every_bad_row_with_its_line(tmp_path):
    path = tmp_path / "sft.jsonl"
    rows = [
        {"id": "a", "messages": [{"role": "user", "content": "hi"}], "response": "yo"},
        {"id": "b", "messages": [{"role": "robot", "content": "hi"}], "response": "yo"},
        {"id": "c", "messages": [{"role": "user", "content": "hi"}]},
        {"id": "a", "messages": [{"role": "user", "content": "hi"}], "response": "again"},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    with pytest.raises(DataError) as info:
        read_chat_examples(str(path))
    text = str(info.value)
    assert "sft.jsonl:2: field 'messages[0]'" in text
    assert "sft.jsonl:3: field 'response'" in text
    assert "sft.jsonl:4: field 'id': duplicate" in text


def test_read_chat_examples_reads_good_rows(tmp_path):
    path = tmp_path / "sft.jsonl"
    row = {"id": "a", "messages": [{"role": "user", "content": "hi"}], "response": "yo"}
    path.write_text(json.dumps(row) + "\n")
    (example,) = read_chat_examples(str(path))
    assert example.messages == ({"role": "user", "content": "hi"},) and example.response == "yo"


def test_rows_batch_pads_with_loss_free_rows_to_a_multiple_of_the_ranks():
    rows = [Tokenized("a", [1, 2], [3, 4]), Tokenized("b", [5], [6, 7, 8])]
    batch = rows_batch(rows, pad_id=0, multiple=3)
    assert len(batch) == 3
    assert batch.response_mask[:2].sum() == 5 and batch.response_mask[2].sum() == 0
    assert batch.input_ids[1].tolist() == [5, 6, 7, 8]


def test_pairs_batch_interleaves_and_marks_only_each_rows_last_token():
    pair = TokenizedPair("p", Tokenized("p", [1, 2], [3, 9]), Tokenized("p", [1, 2], [4, 4, 9]))
    batch = pairs_batch([pair], pad_id=0, multiple=2)  # two ranks: one real, one pad pair
    assert len(batch) == 4
    assert batch.input_ids[0].tolist() == [1, 2, 3, 9, 0]
    assert batch.input_ids[1].tolist() == [1, 2, 4, 4, 9]
    expected = torch.tensor([[0, 0, 0, 1, 0], [0, 0, 0, 0, 1], [0] * 5, [0] * 5])
    assert torch.equal(batch.response_mask, expected.float())


def test_update_schedule_takes_each_item_once_per_epoch_and_is_seeded():
    schedule = update_schedule(10, 4, epochs=2, seed=3)
    assert [len(u) for u in schedule] == [4, 4, 2, 4, 4, 2]
    for epoch in (schedule[:3], schedule[3:]):
        assert sorted(i for u in epoch for i in u) == list(range(10))
    assert schedule == update_schedule(10, 4, epochs=2, seed=3)
    assert schedule != update_schedule(10, 4, epochs=2, seed=4)


def test_due_on_multiples_and_the_last_update():
    assert [d for d in range(1, 8) if due(d, 3, last=7)] == [3, 6, 7]
    assert [d for d in range(1, 8) if due(d, 0, last=7)] == [7]

"""TensorBatch: shape checks, sharding, splitting, micro-batching, moving."""

import pytest
import torch

from cpe.batch import TensorBatch


def batch(rows=6, length=5, **extra):
    ids = torch.arange(rows * length).reshape(rows, length)
    ones = torch.ones(rows, length)
    return TensorBatch(ids, ones, ones.clone(), torch.arange(rows) % 2 == 1, **extra)


def test_len_and_tensors_skip_absent_fields():
    b = batch(advantages=torch.zeros(6, 5))
    assert len(b) == 6
    assert set(b.tensors()) == {
        "input_ids",
        "attention_mask",
        "response_mask",
        "is_edit",
        "advantages",
    }


@pytest.mark.parametrize(
    "field,shape", [("advantages", (6, 4)), ("rewards", (5,)), ("old_logp", (6,))]
)
def test_shape_mismatch_is_rejected(field, shape):
    with pytest.raises(ValueError, match=field):
        batch(**{field: torch.zeros(shape)})


def test_shards_are_contiguous_and_concatenate_back():
    b = batch(rewards=torch.arange(6.0))
    shards = [b.shard(r, 3) for r in range(3)]
    assert [s.rewards.tolist() for s in shards] == [[0, 1], [2, 3], [4, 5]]
    assert torch.equal(TensorBatch.concat(shards).input_ids, b.input_ids)


def test_uneven_shards_are_refused():
    with pytest.raises(ValueError, match="evenly"):
        batch(rows=5).shard(0, 2)
    with pytest.raises(ValueError):
        batch().shard(2, 2)


def test_split_sizes_differ_by_at_most_one():
    sizes = [len(c) for c in batch(rows=10).split(3)]
    assert sizes == [3, 3, 4] and sum(sizes) == 10
    with pytest.raises(ValueError):
        batch(rows=2).split(3)


def test_chunks_are_micro_batches_in_order():
    chunks = batch(rows=5).chunks(2)
    assert [len(c) for c in chunks] == [2, 2, 1]
    assert chunks[2].is_edit.tolist() == [False]


def test_to_moves_every_tensor_and_keeps_none():
    b = batch().to("cpu")
    assert b.old_logp is None and b.input_ids.device.type == "cpu"


def test_require_names_missing_fields():
    with pytest.raises(ValueError, match="old_logp, returns"):
        batch().require("input_ids", "old_logp", "returns")


def test_trimmed_drops_only_columns_that_are_padding_in_every_row():
    wide = TensorBatch.from_sequences([[1, 2], [3]], [[4], [5, 6]], pad_id=0)
    # pad both rows out to 6 columns, as a longer row elsewhere in the batch would
    padded = TensorBatch(
        torch.nn.functional.pad(wide.input_ids, (0, 3)),
        torch.nn.functional.pad(wide.attention_mask, (0, 3)),
        torch.nn.functional.pad(wide.response_mask, (0, 3)),
        wide.is_edit,
        advantages=torch.nn.functional.pad(torch.ones(2, 3), (0, 3)),
        rewards=torch.tensor([1.0, 2.0]),
    )
    t = padded.trimmed()
    assert t.input_ids.tolist() == [[1, 2, 4], [3, 5, 6]]
    assert t.response_mask.tolist() == [[0, 0, 1], [0, 1, 1]]
    assert t.advantages.shape == (2, 3) and t.rewards.tolist() == [1.0, 2.0]
    assert t.trimmed() is t  # nothing left to drop


def test_first_response_column():
    b = TensorBatch.from_sequences([[1, 2, 3], [4]], [[5], [6, 7]], pad_id=0)
    assert b.first_response_column() == 1
    assert b.rows(0, 1).first_response_column() == 3
    none = TensorBatch.from_sequences([[1, 2]], [[]], pad_id=0)
    assert none.first_response_column() == 0

"""The shared-prompt forward gives the plain forward's logits and gradients on every
response token, for rows grouped under prompts of different lengths."""

import pytest
import torch

from cpe.batch import TensorBatch
from cpe.learner.prefix import (
    VALUES,
    plain_forward,
    prompt_groups,
    prompt_lengths,
    shared_prefix_forward,
)
from cpe.learner.tokens import token_entropy, token_logprobs
from cpe.learner.value import ValueModel
from tests.unit.fakes import tiny_llama

A, B, C = [5, 6, 7, 8, 9], [11, 12], [3, 4, 5, 6, 7, 8, 9, 10]


def grouped_batch() -> TensorBatch:
    prompts = [A, A, B, B, A, C]
    responses = [[20, 21, 22], [23], [24, 25, 26, 27], [28, 29], [30, 31, 32, 33, 34], [35]]
    return TensorBatch.from_sequences(prompts, responses, pad_id=0)


def test_prompt_lengths_and_groups():
    batch = grouped_batch()
    lengths = prompt_lengths(batch)
    assert lengths.tolist() == [5, 5, 2, 2, 5, 8]
    prompts, index = prompt_groups(batch, lengths)
    assert prompts == [A, B, C]
    assert index.tolist() == [0, 0, 1, 1, 0, 2]


def test_a_row_without_response_counts_its_whole_length_as_prompt():
    batch = TensorBatch.from_sequences([A, B], [[20], []], pad_id=0)
    assert prompt_lengths(batch).tolist() == [5, 2]


def _response_logprobs(logits, batch):
    return token_logprobs(logits, batch.input_ids, 1.0) * batch.response_mask


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_same_logprobs_and_entropy_as_the_plain_forward(temperature):
    model, batch = tiny_llama(), grouped_batch()
    with torch.no_grad():
        plain, shared = plain_forward(model, batch), shared_prefix_forward(model, batch)
    assert shared.shape == plain.shape
    mask = batch.response_mask
    for fn in (token_logprobs, token_entropy):
        expected = fn(plain, batch.input_ids, temperature) * mask
        got = fn(shared, batch.input_ids, temperature) * mask
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_same_gradients_as_the_plain_forward():
    model, batch = tiny_llama(), grouped_batch()
    grads = []
    for forward in (plain_forward, shared_prefix_forward):
        model.zero_grad()
        _response_logprobs(forward(model, batch), batch).sum().backward()
        grads.append([p.grad.clone() for p in model.parameters()])
    for plain, shared in zip(*grads, strict=True):
        torch.testing.assert_close(shared, plain, atol=1e-5, rtol=1e-4)


class CountingModel(torch.nn.Module):
    """The tiny Llama, recording how many rows and columns each forward gets."""

    def __init__(self):
        super().__init__()
        self.inner, self.calls = tiny_llama(), []

    def forward(self, **kwargs):
        self.calls.append(tuple(kwargs["input_ids"].shape))
        return self.inner(**kwargs)


def test_each_distinct_prompt_runs_once():
    model, batch = CountingModel(), grouped_batch()
    shared_prefix_forward(model, batch)
    # 3 distinct prompts (longest 8), then 6 rows from the shortest prompt on: 10 - 2 columns
    assert model.calls == [(3, 8), (6, 8)]


def test_without_a_repeated_prompt_one_plain_forward_runs():
    model = CountingModel()
    batch = TensorBatch.from_sequences([A, B, C], [[20], [21], [22]], pad_id=0)
    logits = shared_prefix_forward(model, batch)
    assert model.calls == [(3, 9)]
    torch.testing.assert_close(logits, plain_forward(model.inner, batch))


def test_a_float_attention_mask_gives_integer_lengths():
    batch = TensorBatch.from_sequences([A, B], [[20], []], pad_id=0)
    batch.attention_mask = batch.attention_mask.float()
    assert prompt_lengths(batch).dtype == torch.long


def tiny_value_model() -> ValueModel:
    model = ValueModel(tiny_llama().model, hidden_size=16)
    torch.nn.init.normal_(model.value_head.weight, generator=torch.Generator().manual_seed(1))
    return model


def test_same_values_and_value_gradients_as_the_plain_forward():
    model, batch = tiny_value_model(), grouped_batch()
    outs, grads = [], []
    for forward in (plain_forward, shared_prefix_forward):
        model.zero_grad()
        values = forward(model, batch, VALUES)
        # kept position j is column first - 1 + j = 1 + j: the value before token 2 + j
        response = batch.response_mask[:, 2:]
        outs.append(values[:, :-1] * response)
        (values[:, :-1] * response).sum().backward()
        grads.append([p.grad.clone() for p in model.parameters()])
    assert outs[0].shape == (6, 8)
    torch.testing.assert_close(outs[1], outs[0], atol=1e-5, rtol=1e-5)
    for plain, shared in zip(*grads, strict=True):
        torch.testing.assert_close(shared, plain, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize(
    "prompts, responses",
    [
        ([A, A, A], [[20, 21], [22], [23, 24, 25]]),  # one prompt for every row
        ([A, A, B, B], [[20, 21], [], [22], []]),  # rows without a response
    ],
)
def test_edge_batches_match_the_plain_forward(prompts, responses):
    model = tiny_llama()
    batch = TensorBatch.from_sequences(prompts, responses, pad_id=0)
    with torch.no_grad():
        expected = _response_logprobs(plain_forward(model, batch), batch)
        got = _response_logprobs(shared_prefix_forward(model, batch), batch)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)

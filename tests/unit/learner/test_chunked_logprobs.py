"""learner.logprob_chunk: the chunked log-probs and entropy equal the whole computation,
values and gradients, for full and kept-only logits."""

import pytest
import torch

from cpe.learner.tokens import token_entropy, token_logprobs


def case(kept: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, 11, (3, 9), generator=g)
    logits = torch.randn(3, kept, 11, generator=g, dtype=torch.float64).to(torch.bfloat16)
    return logits.requires_grad_(True), ids


@pytest.mark.parametrize("kept", [9, 5])  # every position / logits_to_keep=5
@pytest.mark.parametrize("chunk", [1, 3, 4, 100])
@pytest.mark.parametrize("fn", [token_logprobs, token_entropy])
def test_chunks_give_the_same_values_and_gradients(kept, chunk, fn):
    logits, ids = case(kept)
    whole = fn(logits, ids, 0.7)
    (grad_whole,) = torch.autograd.grad((whole * torch.arange(9.0)).sum(), logits)
    chunked = fn(logits, ids, 0.7, chunk)
    (grad_chunked,) = torch.autograd.grad((chunked * torch.arange(9.0)).sum(), logits)
    assert chunked.shape == whole.shape == (3, 9)
    assert torch.equal(chunked, whole)
    assert torch.allclose(grad_chunked.float(), grad_whole.float(), atol=1e-6, rtol=0)


def test_without_gradients_the_chunks_are_plain_slices():
    logits, ids = case(9, seed=1)
    with torch.no_grad():
        assert torch.equal(token_logprobs(logits, ids, 1.0, 2), token_logprobs(logits, ids, 1.0))

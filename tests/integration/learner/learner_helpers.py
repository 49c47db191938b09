"""Helpers of the learner integration tests: actor pairs, batches, reference forwards."""

from __future__ import annotations

from dataclasses import replace

import torch

from cpe.batch import TensorBatch
from cpe.learner.dist import RendezvousServer
from cpe.learner.tokens import token_logprobs

TEMPERATURE = 0.9
PROMPT, RESPONSE, LENGTH = 4, 6, 12


class Ranks(list):
    """A group's actor handles, rank order, with the store they joined (served here for
    as long as the handles are kept)."""

    def __init__(self, actors: list, store: RendezvousServer):
        super().__init__(actors)
        self.store = store


def spawn(ray, cls, world: int, model_path: str, learner_cfg, algo_cfg, **kwargs) -> Ranks:
    """``world`` ranks of ``cls`` as Ray actors, started and pinged."""
    store = RendezvousServer("127.0.0.1")
    remote = ray.remote(num_cpus=1)(cls)
    actors = [
        remote.remote(
            rank, world, store.host, store.port, model_path, learner_cfg, algo_cfg, **kwargs
        )
        for rank in range(world)
    ]
    assert ray.get([a.ping.remote() for a in actors], timeout=300) == list(range(world))
    return Ranks(actors, store)


def kill(ray, actors) -> None:
    for actor in actors:
        ray.kill(actor)


def call(ray, actors, method: str, *args, **kwargs) -> list:
    """The same call on every rank (collectives need all of them), results in rank order."""
    return ray.get([getattr(a, method).remote(*args, **kwargs) for a in actors], timeout=300)


def make_batch(seed: int, rows: int = 4, edits=(1, 3), vocab: int = 500) -> TensorBatch:
    """Equal lengths on every row: prompt 4 tokens, response 6, 2 padding."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, vocab, (rows, LENGTH), generator=g)
    ids[:, PROMPT + RESPONSE :] = 0
    attention = torch.zeros(rows, LENGTH)
    attention[:, : PROMPT + RESPONSE] = 1
    response = torch.zeros(rows, LENGTH)
    response[:, PROMPT : PROMPT + RESPONSE] = 1
    is_edit = torch.zeros(rows, dtype=torch.bool)
    is_edit[list(edits)] = True
    return TensorBatch(ids, attention, response, is_edit)


def with_training_fields(batch: TensorBatch, logp: torch.Tensor, seed: int) -> TensorBatch:
    """old_logp = current π; μ of the edits a little off π; random advantages."""
    g = torch.Generator().manual_seed(seed)
    mask = batch.response_mask
    noise = 0.3 * torch.randn(batch.input_ids.shape, generator=g)
    advantages = torch.randn(batch.input_ids.shape, generator=g) * mask
    return replace(
        batch, old_logp=logp, behaviour_logp=(logp + noise) * mask, advantages=advantages
    )


def hf_model(model_path: str, state: dict | None = None):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
    if state is not None:
        missing, unexpected = model.load_state_dict(state, strict=False)
        assert set(missing) <= {"lm_head.weight"} and not unexpected
        model.tie_weights()
    return model.eval()


@torch.no_grad()
def hf_logprobs(model, batch: TensorBatch, temperature: float = TEMPERATURE) -> torch.Tensor:
    logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
    return token_logprobs(logits, batch.input_ids, temperature) * batch.response_mask


def rank0_weights(ray, actors) -> dict:
    """Rank 0's exported weights by HF name (one bucket per parameter; every rank joins
    the gather)."""
    buckets = call(ray, actors, "export_buckets", 1)
    return {name: t for bucket in buckets[0] for name, t in bucket}


def max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).abs().max()) for k in a)


def relative_update_error(before: dict, a: dict, b: dict) -> float:
    """‖a − b‖ / ‖a − before‖ over all parameters.

    Adam's first steps are nearly sign(g)·lr, so a coordinate whose gradient is ~0 can
    move by O(lr) on float noise alone; the norm over the whole update is the stable
    measure of "the same update".
    """
    diff = sum(float(((a[k] - b[k]) ** 2).sum()) for k in a)
    step = sum(float(((a[k] - before[k]) ** 2).sum()) for k in a)
    return (diff / step) ** 0.5

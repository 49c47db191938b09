"""``python -m cpe.bench.update [--model smollm2] [--zero-stage 0]``: cpe's policy update
against a plain PyTorch loop (forward, backward, AdamW) on the same tokens, same loss,
same micro-batches and threads, in this process. With ``learner.shared_prefix`` off it
isolates what the learner adds (DeepSpeed, ZeRO, bookkeeping); on, it shows what running
each prompt once for its n answers saves."""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import replace
from functools import partial

import torch

from cpe.batch import TensorBatch
from cpe.config import AlgorithmConfig, LearnerConfig
from cpe.learner.tokens import logits_to_keep, token_logprobs

ROWS, MICRO, N = 32, 8, 4


def bench_batch(vocab: int, seed: int = 0) -> TensorBatch:
    """32 rows as the bench workload makes them: 8 prompts of 136-155 tokens (its chat
    prompts' lengths), each answered N=4 times with 30-48 tokens (ids below ``vocab``),
    random advantages."""
    g = torch.Generator().manual_seed(seed)
    distinct = [
        torch.randint(3, vocab, (136 + (i * 7) % 20,), generator=g).tolist()
        for i in range(ROWS // N)
    ]
    prompts = [p for p in distinct for _ in range(N)]
    responses = [
        torch.randint(3, vocab, (30 + (i * 5) % 19,), generator=g).tolist() for i in range(ROWS)
    ]
    batch = TensorBatch.from_sequences(prompts, responses, pad_id=0)
    advantages = torch.randn(batch.input_ids.shape, generator=g) * batch.response_mask
    return replace(batch, advantages=advantages)


def plain_step(model, optimizer, batch: TensorBatch) -> None:
    """One update as a hand-written trainer does it, with cpe's micro-batch trimming and
    logits from the first response position: the floor for the same math."""
    chunks = batch.chunks(MICRO)
    for micro in chunks:
        micro = micro.trimmed()
        logits = model(
            input_ids=micro.input_ids,
            attention_mask=micro.attention_mask,
            use_cache=False,
            logits_to_keep=logits_to_keep(micro),
        ).logits
        logp = token_logprobs(logits, micro.input_ids, 1.0)
        mask = micro.response_mask
        loss = -(torch.exp(logp - logp.detach()) * micro.advantages * mask).sum() / mask.sum()
        (loss / len(chunks)).backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    optimizer.zero_grad()


def timed(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        out.append(time.perf_counter() - started)
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m cpe.bench.update", description=__doc__)
    p.add_argument("--model", default="smollm2", choices=("tiny", "smollm2"))
    p.add_argument("--zero-stage", type=int, default=0, choices=(0, 1, 2))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args(argv)

    from transformers import AutoModelForCausalLM

    from cpe.learner.dist import RendezvousServer
    from cpe.learner.policy import PolicyWorker
    from cpe.models.paths import resolve_model_path

    os.environ["OMP_NUM_THREADS"] = str(args.threads)  # the learner reads its budget here
    torch.set_num_threads(args.threads)
    path = resolve_model_path(f"fixture:{args.model}")
    from transformers import AutoConfig

    batch = bench_batch(AutoConfig.from_pretrained(path).vocab_size)
    tokens = int(batch.attention_mask.sum())

    algo = AlgorithmConfig(mode="ppo", advantage="grpo", policy_loss="ppo")
    learner_cfg = LearnerConfig(zero_stage=args.zero_stage, micro_batch_size=MICRO, actor_lr=1e-6)
    store = RendezvousServer("127.0.0.1")
    worker = PolicyWorker(0, 1, store.host, store.port, path, learner_cfg, algo)
    cpe_s = {}
    for shared in (False, True):  # one process group per process: the same worker, both ways
        worker.cfg = replace(learner_cfg, shared_prefix=shared)
        cpe_s[shared] = timed(partial(worker.train_step, batch, 1.0, 1, MICRO), args.repeats + 1)[
            1:
        ]
    worker.shutdown()
    store.close()

    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-6, weight_decay=0.01)
    plain_s = timed(lambda: plain_step(model, optimizer, batch), args.repeats + 1)[1:]

    print(
        f"{args.model}: {ROWS} rows, {tokens} tokens, micro-batches of {MICRO}, {args.threads} threads"
    )
    for shared, label in ((False, "each row whole"), (True, "shared prefix")):
        times = ", ".join(f"{s:.1f}s" for s in cpe_s[shared])
        print(f"  cpe learner (ZeRO-{args.zero_stage}, {label}): {times}")
    print("  plain torch loop:                     " + ", ".join(f"{s:.1f}s" for s in plain_s))
    for shared, label in ((False, "each row whole"), (True, "shared prefix")):
        print(f"  cpe ({label}) / plain (best): {min(cpe_s[shared]) / min(plain_s):.2f}x")


if __name__ == "__main__":
    main()

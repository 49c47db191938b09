"""What one GPU can prove without vLLM or Ray: the learner side of the GPU path.

    python -m cpe.tools.gpu_smoke            # CUDA when present, else CPU (what CI runs)
    bash scripts/gpu_smoke.sh                # the same, with a timing and memory summary

For ZeRO-2 and ZeRO-3, a policy and a value worker (rank 0 of 1, in this process; bf16
and NCCL on a GPU, fp32 and gloo on CPU) on the tiny model with gradient checkpointing
and chunked log-probs: one train step with a finite loss that changes the weights, and
the weight export in exactly the order, names, dtypes and shapes of the metadata the
engines receive (``weight_metas``). With CUDA and vLLM both importable, rank 0's packed
NCCL producer (vLLM's) also runs against vLLM's consumer through an in-process stand-in
of the communicator, and every tensor must arrive unchanged. Each check prints one line;
the exit status is 1 when any fails.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from dataclasses import replace

import torch

from cpe.batch import TensorBatch
from cpe.config import AlgorithmConfig, LearnerConfig
from cpe.learner.dist import RendezvousServer
from cpe.net import LOOPBACK

PROMPT, RESPONSE = 6, 10


def synthetic_batch(vocab: int, rows: int = 4, seed: int = 0) -> TensorBatch:
    """Prompts of 6 tokens, responses of 10, rows 1 and 3 edits."""
    g = torch.Generator().manual_seed(seed)
    prompts = torch.randint(3, vocab, (rows, PROMPT), generator=g).tolist()
    responses = torch.randint(3, vocab, (rows, RESPONSE), generator=g).tolist()
    batch = TensorBatch.from_sequences(prompts, responses, pad_id=0)
    is_edit = torch.tensor([i % 2 == 1 for i in range(rows)])
    advantages = torch.randn(batch.input_ids.shape, generator=g) * batch.response_mask
    return replace(batch, is_edit=is_edit, advantages=advantages)


def learner_config(stage: int) -> LearnerConfig:
    return LearnerConfig(
        zero_stage=stage,
        actor_lr=1e-3,
        critic_lr=1e-3,
        micro_batch_size=2,
        gradient_checkpointing=True,
        shared_prefix=False,  # checkpointed layers drop the shared prompt cache
        logprob_chunk=4,
    )


def snapshot(worker) -> dict[str, torch.Tensor]:
    return {n: t.float() for bucket in worker.export_buckets() for n, t in bucket}


def check_policy(worker, batch: TensorBatch) -> str:
    logp = worker.logprobs(batch)
    behaviour = (logp + 0.1) * batch.response_mask
    trained = replace(batch, old_logp=logp, behaviour_logp=behaviour)
    before = snapshot(worker)
    metrics = worker.train_step(trained)
    return _trained(worker, before, metrics["policy_loss"], metrics["grad_norm"])


def check_value(worker, batch: TensorBatch) -> str:
    old = worker.values(batch)
    trained = replace(batch, old_values=old, returns=torch.ones_like(old) * batch.response_mask)
    before = snapshot(worker)
    metrics = worker.train_step(trained)
    return _trained(worker, before, metrics["value_loss"], metrics["grad_norm"])


def _trained(worker, before: dict, loss: float, grad_norm: float) -> str:
    after = snapshot(worker)
    moved = max(float((after[n] - before[n]).abs().max()) for n in before)
    assert math.isfinite(loss) and math.isfinite(grad_norm), (loss, grad_norm)
    assert moved > 0, "the step changed no weight"
    return f"loss {loss:.4f}, grad norm {grad_norm:.3f}, max weight change {moved:.2e}"


def check_export_order(worker) -> str:
    """The export (what the packed producer streams) in the engines' metadata order."""
    exported = [(n, t) for bucket in worker.export_buckets() for n, t in bucket]
    metas = worker.weight_metas()
    assert [n for n, _ in exported] == [n for n, _, _ in metas], "names or order differ"
    for (name, tensor), (_, dtype, shape) in zip(exported, metas, strict=True):
        assert str(tensor.dtype).removeprefix("torch.") == dtype, name
        assert list(tensor.shape) == shape, name
    return f"{len(metas)} tensors in metadata order"


class LoopbackGroup:
    """Stands in for vLLM's NCCL communicator within one process: what the producer
    broadcasts, the consumer receives."""

    def __init__(self) -> None:
        self.sent: list[torch.Tensor] = []
        self.receiving = False

    def broadcast(self, tensor: torch.Tensor, src: int, **_) -> None:
        if self.receiving:
            tensor.copy_(self.sent.pop(0))
        else:
            self.sent.append(tensor.clone())


def check_packed_broadcast(worker) -> str:
    from vllm.distributed.weight_transfer.packed_tensor import (
        packed_nccl_broadcast_consumer,
        packed_nccl_broadcast_producer,
    )

    named = [(n, t.cuda()) for bucket in worker.export_buckets() for n, t in bucket]
    group = LoopbackGroup()
    packed_nccl_broadcast_producer(iter(named), group, 0, post_iter_func=lambda item: item[1])
    group.receiving, chunks = True, len(group.sent)
    received: dict[str, torch.Tensor] = {}
    metas = ((n, (list(t.shape), t.dtype)) for n, t in named)
    packed_nccl_broadcast_consumer(metas, group, 0, lambda pairs: received.update(pairs))
    assert list(received) == [n for n, _ in named]
    for name, tensor in named:
        assert torch.equal(received[name], tensor), name
    assert not group.sent, "the consumer left packed chunks unread"
    return f"{len(named)} tensors arrived unchanged in {chunks} packed chunks"


def run_checks(device: str, model_path: str) -> list[tuple[str, bool, str]]:
    from transformers import AutoConfig

    from cpe.learner.policy import PolicyWorker
    from cpe.learner.value import ValueWorker

    dtype = "bfloat16" if device == "gpu" else "float32"
    batch = synthetic_batch(AutoConfig.from_pretrained(model_path).vocab_size)
    results: list[tuple[str, bool, str]] = []
    workers = []
    # One process group per process: the first worker joins it, the rest reuse it.
    store = RendezvousServer(LOOPBACK)

    def check(name: str, fn: Callable[[], str]) -> None:
        started = time.perf_counter()
        try:
            detail = fn()
            ok = True
        except Exception as exc:  # noqa: BLE001 - every failure is reported, then counted
            detail, ok = f"{type(exc).__name__}: {exc}", False
        detail += f" ({time.perf_counter() - started:.1f} s)"
        results.append((name, ok, detail))
        print(f"{'ok  ' if ok else 'FAIL'} {name}: {detail}", flush=True)

    for stage in (2, 3):
        cfg, algo = learner_config(stage), AlgorithmConfig()
        for cls, train in ((PolicyWorker, check_policy), (ValueWorker, check_value)):
            args = (0, 1, store.host, store.port, model_path, cfg, algo)
            worker = cls(*args, device=device, dtype=dtype, total_optimizer_steps=4)
            label = f"ZeRO-{stage} {cls.__name__}"
            check(f"{label} train step", lambda w=worker, t=train: t(w, batch))
            if cls is PolicyWorker:
                check(f"{label} export order", lambda w=worker: check_export_order(w))
                if device == "gpu" and _has_vllm():
                    check(f"{label} packed broadcast", lambda w=worker: check_packed_broadcast(w))
            # Kept alive: a worker's shutdown ends the process group the next one shares.
            workers.append(worker)
    workers[-1].shutdown()  # the process group ends before the store it joined
    store.close()
    return results


def _has_vllm() -> bool:
    try:
        import vllm  # noqa: F401
    except ImportError:
        print("skip packed broadcast: vLLM is not installed here")
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m cpe.tools.gpu_smoke", description=__doc__)
    p.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto")
    args = p.parse_args(argv)
    device = args.device
    if device == "auto":
        device = "gpu" if torch.cuda.is_available() else "cpu"
    from cpe.models.paths import resolve_model_path

    print(f"device: {device}" + (f" ({torch.cuda.get_device_name()})" if device == "gpu" else ""))
    results = run_checks(device, resolve_model_path("fixture:tiny"))
    if device == "gpu":
        print(f"peak GPU memory: {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")
    failed = [name for name, ok, _ in results if not ok]
    print(f"{len(results) - len(failed)}/{len(results)} checks passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

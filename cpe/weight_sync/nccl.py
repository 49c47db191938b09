"""GPU weight sync through vLLM's native weight-transfer API (NCCL broadcast).

UNTESTED in this repository (no GPU here); written against vLLM 0.32's
``vllm.distributed.weight_transfer`` (``LLM.init_weight_transfer_engine`` /
``start_weight_update`` / ``update_weights`` / ``finish_weight_update``), the version
the GPU extra installs too. Never imported on CPU code paths: ``VLLMEngine`` imports
it lazily from its GPU-only methods.

Setup (once; every side must enter at the same time, they rendezvous in NCCL):
- engines are started with ``weight_transfer_backend="nccl"``;
- engine ``i`` (tensor-parallel size ``tp``) calls
  ``VLLMEngine.init_weight_transfer(master_address=..., master_port=...,
  rank_offset=1 + i * tp, world_size=1 + n_engines * tp)``;
- the learner's rank 0 builds ``NcclWeightSender(master_address, master_port,
  world_size)`` concurrently (rank 0 of the group).

Each sync: ``metas = rank0.weight_metas()`` (``cpe.weight_sync.sender``); launch
``engine.receive_weights.remote(metas, version)`` on every engine, then
``broadcast_weights`` on every learner rank (rank 0 sends), then ``ray.get`` both sides. The
engine side loads through vLLM's layerwise reload, which handles fused q/k/v and a
tied head on GPU (the head reads the shared embedding storage directly). Tensors must
be sent in the order of ``metas``; ``packed`` must agree on both sides.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

WeightMeta = tuple[str, str, list[int]]  # HF name, torch dtype name, shape


# -- engine side (inside the VLLMEngine actor) -----------------------------------
def engine_init(
    llm: Any,
    *,
    master_address: str,
    master_port: int,
    rank_offset: int,
    world_size: int,
    packed: bool = True,
) -> None:
    llm.init_weight_transfer_engine(
        {
            "init_info": {
                "master_address": master_address,
                "master_port": master_port,
                "rank_offset": rank_offset,
                "world_size": world_size,
                "packed": packed,
            }
        }
    )


def engine_receive(llm: Any, metas: list[WeightMeta]) -> None:
    """Blocks until the learner's broadcast of ``metas`` has arrived and is loaded."""
    names, dtypes, shapes = (list(x) for x in zip(*metas, strict=True)) if metas else ([], [], [])
    llm.start_weight_update()
    # On failure vLLM's worker has already closed the session; a finish would only
    # mask the error, and the caller must treat the model as unusable.
    llm.update_weights({"update_info": {"names": names, "dtype_names": dtypes, "shapes": shapes}})
    llm.finish_weight_update()


# -- learner side (rank 0 of the learner group) ----------------------------------
class NcclWeightSender:
    """Rank 0 of the learner<->engines NCCL group; broadcasts full HF-named tensors."""

    def __init__(self, master_address: str, master_port: int, world_size: int, packed: bool = True):
        from vllm.distributed.weight_transfer.nccl_common import trainer_init

        self.packed = packed
        self.group = trainer_init(
            {"master_address": master_address, "master_port": master_port, "world_size": world_size}
        )

    def broadcast(self, named_tensors: Iterable[tuple[str, torch.Tensor]]) -> None:
        pairs = ((n, t.detach().contiguous().cuda()) for n, t in named_tensors)
        if self.packed:
            from vllm.distributed.weight_transfer.packed_tensor import (
                packed_nccl_broadcast_producer,
            )

            packed_nccl_broadcast_producer(
                iterator=pairs, group=self.group, src=0, post_iter_func=lambda item: item[1]
            )
        else:
            stream = torch.cuda.current_stream()
            for _, tensor in pairs:
                self.group.broadcast(tensor, src=0, stream=stream)
        torch.cuda.current_stream().synchronize()

    def close(self) -> None:
        group, self.group = self.group, None
        if group is not None and hasattr(group, "destroy"):
            group.destroy()

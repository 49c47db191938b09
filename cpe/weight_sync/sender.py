"""Learner side of the GPU weight sync (NCCL broadcast into vLLM engines).

UNTESTED here (no GPU in CI); pairs with ``cpe.weight_sync.nccl``. Every policy rank
calls :meth:`broadcast_weights` (under ZeRO-3 the gather is collective); only rank 0
joins the learner<->engines NCCL group and sends.
"""

from __future__ import annotations

import torch


class NcclSenderMixin:
    _sender = None

    def weight_metas(self) -> list[tuple[str, str, list[int]]]:
        """HF name, dtype and FULL shape of every exported parameter, in send order."""
        metas = []
        for name, p in self._named_parameters():
            shape = list(getattr(p, "ds_shape", p.shape))
            metas.append((name, str(p.dtype).removeprefix("torch."), shape))
        return metas

    def node_ip(self) -> str:
        from cpe.learner.dist import node_ip

        return node_ip()

    def init_weight_sender(self, master_address: str, master_port: int, world_size: int) -> None:
        if self.rank != 0:
            return
        from cpe.weight_sync.nccl import NcclWeightSender

        self._sender = NcclWeightSender(master_address, master_port, world_size)

    def broadcast_weights(self, bucket_mb: int = 64) -> None:
        """ONE producer pass over every parameter: vLLM's packed NCCL consumer packs the
        whole manifest into fixed-size chunks, so the sender must do the same."""
        pairs = self._iter_full_parameters(bucket_mb)
        if self._sender is not None:
            self._sender.broadcast(pairs)
            torch.cuda.synchronize()
        else:
            for _ in pairs:  # ranks > 0 still take part in the ZeRO-3 gathers
                pass

    def _iter_full_parameters(self, bucket_mb: int):
        import deepspeed

        from cpe.learner.base import plan_buckets

        zero3 = self.zero_stage == 3
        for bucket in plan_buckets(self._named_parameters(), bucket_mb * 1024**2):
            params = [p for _, p in bucket]
            with deepspeed.zero.GatheredParameters(params, modifier_rank=None, enabled=zero3):
                for name, p in bucket:
                    # A copy: under ZeRO-3 the gathered storage is released on exit.
                    yield name, (p.data.detach().clone() if zero3 else p.data.detach())

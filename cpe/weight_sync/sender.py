"""The learner side of weight sync, mixed into every DeepSpeed rank.

One gather loop (:meth:`WeightSender._gathered_buckets`) feeds both transports:
:meth:`export_buckets` (CPU copies: checkpoints' HF export, and in numpy form
(:meth:`export_wire`) the object store)
and :meth:`broadcast_weights` (NCCL into the engines, GPU). Under ZeRO-3 the gather is
a collective: every rank must run the same calls; only rank 0 keeps or sends data.
The NCCL half is UNTESTED here (no GPU in CI); it pairs with ``cpe.weight_sync.nccl``.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from cpe.weight_sync.buckets import WireEntry, plan_buckets, to_wire

NamedParams = list[tuple[str, torch.nn.Parameter]]


class WeightSender:
    """Needs ``self.rank``, ``self.zero_stage`` and ``self._named_parameters()``."""

    _sender = None

    def _gathered_buckets(self, bucket_mb: int) -> Iterator[NamedParams]:
        """Each bucket's parameters, full (gathered) while the caller holds the bucket."""
        import deepspeed

        zero3 = self.zero_stage == 3
        for bucket in plan_buckets(self._named_parameters(), bucket_mb * 1024**2):
            params = [p for _, p in bucket]
            with deepspeed.zero.GatheredParameters(params, modifier_rank=None, enabled=zero3):
                yield bucket

    def export_buckets(self, bucket_mb: int = 64) -> list[list[tuple[str, torch.Tensor]]]:
        """Full parameters by HF name as CPU copies, in buckets of about ``bucket_mb``
        MiB; rank 0 gets the buckets, the others ``[]``."""
        out = []
        for bucket in self._gathered_buckets(bucket_mb):
            if self.rank == 0:
                out.append([(n, p.data.detach().to("cpu", copy=True)) for n, p in bucket])
        return out

    def export_wire(self, bucket_mb: int = 64) -> list[list[WireEntry]]:
        """:meth:`export_buckets` in the object-store form (``buckets.to_wire``)."""
        return [to_wire(bucket) for bucket in self.export_buckets(bucket_mb)]

    # -- NCCL (GPU) ---------------------------------------------------------------
    def weight_metas(self) -> list[tuple[str, str, list[int]]]:
        """HF name, dtype and FULL shape of every exported parameter, in send order."""
        metas = []
        for name, p in self._named_parameters():
            shape = list(getattr(p, "ds_shape", p.shape))
            metas.append((name, str(p.dtype).removeprefix("torch."), shape))
        return metas

    def rendezvous_address(self) -> tuple[str, int]:
        """The address rank 0 listens on for the weight-sync group (loopback on a
        one-node cluster, else this node's IP; vLLM's store binds exactly it) and a port
        free there, probed here, not on the driver's node."""
        from cpe.learner.dist import rendezvous_host
        from cpe.net import free_port

        host = rendezvous_host()
        return host, free_port(host)

    def init_weight_sender(self, master_address: str, master_port: int, world_size: int) -> None:
        if self.rank != 0:
            return
        from cpe.weight_sync.nccl import NcclWeightSender

        self._sender = NcclWeightSender(master_address, master_port, world_size)

    def broadcast_weights(self, bucket_mb: int = 64) -> None:
        """ONE producer pass over every parameter: vLLM's packed NCCL consumer packs the
        whole manifest into fixed-size chunks, so the sender must do the same."""
        zero3 = self.zero_stage == 3
        pairs = (
            # A copy under ZeRO-3: the gathered storage is released when the bucket closes.
            (name, p.data.detach().clone() if zero3 else p.data.detach())
            for bucket in self._gathered_buckets(bucket_mb)
            for name, p in bucket
        )
        if self._sender is not None:
            self._sender.broadcast(pairs)
            torch.cuda.synchronize()
        else:
            for _ in pairs:  # ranks > 0 still take part in the ZeRO-3 gathers
                pass

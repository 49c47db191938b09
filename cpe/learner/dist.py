"""Process-group set-up for one learner rank (a Ray actor or a plain process)."""

from __future__ import annotations

import os
import socket
from datetime import timedelta

BACKENDS = ("gloo", "nccl")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (the usual race applies: use it soon)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def node_ip() -> str:
    """This node's address as Ray sees it, else loopback (rank 0 calls it for MASTER_ADDR)."""
    try:
        import ray

        if ray.is_initialized():
            return ray.util.get_node_ip_address()
    except ImportError:
        pass
    return "127.0.0.1"


def init_distributed(
    rank: int,
    world_size: int,
    master_addr: str,
    master_port: int,
    backend: str = "gloo",
    timeout_s: float = 1800.0,
) -> None:
    """Join the process group as ``rank`` of ``world_size`` through DeepSpeed's comm layer.

    Idempotent within a process when called again with the same rank and world size.
    LOCAL_SIZE is left unset on purpose: with it equal to the world size DeepSpeed's CPU
    backend switches to a /dev/shm all-reduce whose segments outlive killed actors.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    import deepspeed
    import torch.distributed as tdist

    if tdist.is_initialized():
        if (tdist.get_rank(), tdist.get_world_size()) != (rank, world_size):
            raise RuntimeError(
                f"process group already initialised as rank {tdist.get_rank()} of "
                f"{tdist.get_world_size()}, asked for rank {rank} of {world_size}"
            )
        return
    os.environ.update(
        RANK=str(rank),
        WORLD_SIZE=str(world_size),
        # Each rank owns one device (Ray narrows CUDA_VISIBLE_DEVICES to it).
        LOCAL_RANK=os.environ.get("LOCAL_RANK", "0"),
        MASTER_ADDR=master_addr,
        MASTER_PORT=str(master_port),
    )
    if backend == "nccl":
        import torch

        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    deepspeed.init_distributed(
        dist_backend=backend,
        auto_mpi_discovery=False,
        timeout=timedelta(seconds=timeout_s),
        rank=rank,
        world_size=world_size,
        verbose=False,
    )


def backend_for(device: str) -> str:
    return "nccl" if device == "gpu" else "gloo"

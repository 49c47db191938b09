"""Process-group set-up for one learner rank (a Ray actor or a plain process)."""

from __future__ import annotations

import os
import socket
import sys
from datetime import timedelta

from cpe.net import LOOPBACK, bound_listener, is_loopback, listen_host

BACKENDS = ("gloo", "nccl")


def free_port(host: str = LOOPBACK) -> int:
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
    return LOOPBACK


def rendezvous_host() -> str:
    """The address a rendezvous on this node listens on and is dialled at
    (:func:`cpe.net.listen_host`: loopback while the Ray cluster has one node)."""
    import ray

    nodes = sum(1 for n in ray.nodes() if n.get("Alive")) if ray.is_initialized() else 1
    return listen_host(node_ip(), nodes)


def rendezvous_store(rank: int, world_size: int, host: str, port: int, timeout: timedelta):
    """The group's TCPStore; rank 0 serves it on ``host`` alone. Given only an address,
    torch's server listens on every interface (``::``) and dials ``host`` as a client."""
    import torch.distributed as tdist

    fd = bound_listener(host, port).detach() if rank == 0 else None
    return tdist.TCPStore(
        host, port, world_size, is_master=rank == 0, timeout=timeout, master_listen_fd=fd
    )


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
    timeout = timedelta(seconds=timeout_s)
    options = {}
    if backend == "nccl":
        import torch

        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
        if world_size > 1:  # as DeepSpeed's own init does on CUDA: NCCL bound to the device
            options["device_id"] = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    if backend == "gloo" and is_loopback(master_addr):
        # Gloo's pairs listen on the address the host name resolves to unless told.
        os.environ.setdefault("GLOO_SOCKET_IFNAME", loopback_interface())
    store = rendezvous_store(rank, world_size, master_addr, master_port, timeout)
    # Joined here, with our store; DeepSpeed's comm layer then adopts the group.
    tdist.init_process_group(
        backend, store=store, rank=rank, world_size=world_size, timeout=timeout, **options
    )
    deepspeed.init_distributed(
        dist_backend=backend,
        auto_mpi_discovery=False,
        timeout=timeout,
        rank=rank,
        world_size=world_size,
        verbose=False,
    )


def loopback_interface() -> str:
    return "lo0" if sys.platform == "darwin" else "lo"


def backend_for(device: str) -> str:
    return "nccl" if device == "gpu" else "gloo"

"""Process-group set-up for one learner rank (a Ray actor or a plain process)."""

from __future__ import annotations

import os
import sys
from datetime import timedelta

from cpe.net import LOOPBACK, bound_listener, is_loopback, listen_host

BACKENDS = ("gloo", "nccl")


def node_ip() -> str:
    """This node's address as Ray sees it, else loopback (where a rendezvous is served:
    the driver's for the learner groups, rank 0's for the NCCL weight-sync group)."""
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


class RendezvousServer:
    """A process group's TCPStore, served by the process that starts the group (the
    driver); every rank joins it as a client (:func:`join_store`).

    Its port is bound before any rank learns it (port 0: the kernel picks one), so no
    port is guessed: a port probed in one process and bound seconds later in another
    can be taken in between by any socket on the machine (Ray's gRPC, gloo's pairs), and
    once was. Given only an address, torch's server would listen on every interface
    (``::``); this one listens on ``host`` alone.
    """

    def __init__(self, host: str, timeout: timedelta = timedelta(minutes=30)) -> None:
        import torch.distributed as tdist

        listener = bound_listener(host, 0)
        self.host, self.port = host, listener.getsockname()[1]
        self._store = tdist.TCPStore(
            host,
            self.port,
            is_master=True,
            timeout=timeout,
            wait_for_workers=False,
            master_listen_fd=listener.detach(),
        )

    def close(self) -> None:
        """Stops serving (torch's server stops with its last reference)."""
        self._store = None

    def __enter__(self) -> RendezvousServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def join_store(world_size: int, host: str, port: int, timeout: timedelta):
    """A rank's client of the group's store (:class:`RendezvousServer`)."""
    import torch.distributed as tdist

    return tdist.TCPStore(host, port, world_size, is_master=False, timeout=timeout)


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
    store = join_store(world_size, master_addr, master_port, timeout)
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

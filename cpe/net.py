"""Which addresses cpe's own listeners use, and which URLs stay on this machine.

Every torch.distributed rendezvous cpe starts (the learner groups, the NCCL weight-sync
group) listens on one address: loopback while the Ray cluster is a single node, else the
node's own IP as Ray reports it, never every interface.
"""

from __future__ import annotations

import ipaddress
import random
import socket
from pathlib import Path
from urllib.parse import urlparse

LOOPBACK = "127.0.0.1"
# Above Ray's default worker ports (10002-19999), below Linux's ephemeral range.
FIXED_PORTS_FROM = 20000
EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def is_loopback(host: str | None) -> bool:
    """127.0.0.0/8, ::1 or ``localhost``; a name that needs DNS is not trusted to be."""
    if not host:
        return False
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def is_plaintext_remote(url: str) -> bool:
    """An ``http://`` URL whose host is not this machine: what it carries travels in clear."""
    parsed = urlparse(url.strip())
    return parsed.scheme.lower() == "http" and not is_loopback(parsed.hostname)


def listen_host(node_ip: str, nodes: int) -> str:
    """Where a rendezvous listens: loopback on a one-node cluster (nothing outside this
    machine needs it), else this node's IP, the one address the other nodes dial."""
    return LOOPBACK if nodes <= 1 else node_ip


def bound_listener(host: str, port: int) -> socket.socket:
    """A listening TCP socket on exactly ``host:port`` (IPv4 or IPv6)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host.strip("[]"), port), family=family, backlog=1024)


_RANDOM = random.SystemRandom()  # a seeded global random would give every run the same ports


def free_port(host: str = LOOPBACK, tries: int = 64) -> int:
    """A TCP port free on ``host`` a moment ago, for a server that another process binds
    soon (a Ray head, vLLM's weight-sync store). Picked below the kernel's ephemeral
    range where it can: a port from that range may be handed to any outgoing
    connection before the server binds it, one below it only to another explicit bind.
    Where cpe binds the server itself it asks for port 0 instead (RendezvousServer)."""
    low = _ephemeral_low()
    for _ in range(tries if low > FIXED_PORTS_FROM else 0):
        port = _RANDOM.randrange(FIXED_PORTS_FROM, low)
        try:
            bound_listener(host, port).close()
        except OSError:
            continue
        return port
    with bound_listener(host, 0) as sock:
        return sock.getsockname()[1]


def _ephemeral_low() -> int:
    """The first port of the kernel's ephemeral range (Linux; elsewhere: no fixed pick)."""
    try:
        return int(EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0

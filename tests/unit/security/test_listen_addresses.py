"""cpe's rendezvous listeners bind one address: loopback on one node, the node IP on many.

torch's TCPStore server, given only an address, listens on every interface; a group's
store is therefore served from a socket cpe binds itself (``RendezvousServer``).
"""

from __future__ import annotations

import socket
from datetime import timedelta

import psutil
import pytest

from cpe.learner.dist import RendezvousServer, free_port, join_store
from cpe.net import LOOPBACK, bound_listener, listen_host

TIMEOUT = timedelta(seconds=20)


def _listening(port: int) -> set[str]:
    return {
        c.laddr.ip
        for c in psutil.Process().net_connections("inet")
        if c.status == psutil.CONN_LISTEN and c.laddr.port == port
    }


def _other_ipv4() -> str | None:
    """An address of this machine that is not loopback, if it has one."""
    for addresses in psutil.net_if_addrs().values():
        for a in addresses:
            if a.family == socket.AF_INET and not a.address.startswith("127."):
                return a.address
    return None


@pytest.mark.parametrize(
    "node_ip, nodes, expected",
    [("10.1.2.3", 1, LOOPBACK), ("10.1.2.3", 0, LOOPBACK), ("10.1.2.3", 2, "10.1.2.3")],
)
def test_listen_host_is_loopback_on_one_node_else_the_node_ip(node_ip, nodes, expected):
    assert listen_host(node_ip, nodes) == expected


def test_bound_listener_listens_on_exactly_its_host():
    port = free_port()
    with bound_listener(LOOPBACK, port) as sock:
        assert sock.getsockname() == (LOOPBACK, port)
        assert _listening(port) == {LOOPBACK}


def test_the_store_listens_on_loopback_only_and_serves_every_rank():
    with RendezvousServer(LOOPBACK, TIMEOUT) as server:
        ranks = [join_store(2, LOOPBACK, server.port, TIMEOUT) for _ in range(2)]
        assert _listening(server.port) == {LOOPBACK}
        ranks[0].set("from-rank-0", "hello")
        assert ranks[1].get("from-rank-0") == b"hello"


def test_the_store_is_bound_before_its_port_is_known_and_stops_when_closed():
    """No probed port: the kernel picks it while binding, so nothing can take it first."""
    server = RendezvousServer(LOOPBACK, TIMEOUT)
    assert _listening(server.port) == {LOOPBACK}
    with pytest.raises(OSError):  # in use: bound, not merely probed
        bound_listener(LOOPBACK, server.port)
    server.close()
    assert _listening(server.port) == set()


def test_the_store_is_not_reachable_on_another_interface():
    other = _other_ipv4()
    if other is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    with RendezvousServer(LOOPBACK, TIMEOUT) as server:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((other, server.port), timeout=5).close()
        assert join_store(1, LOOPBACK, server.port, TIMEOUT).num_keys() >= 0  # still serving

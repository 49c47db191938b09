"""cpe's rendezvous listeners bind one address: loopback on one node, the node IP on many.

torch's TCPStore server, given only an address, listens on every interface; rank 0's
store is therefore served from a socket cpe binds itself (``rendezvous_store``).
"""

from __future__ import annotations

import socket
import threading
from datetime import timedelta

import psutil
import pytest

from cpe.learner.dist import free_port, rendezvous_store
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


def test_rank0_store_listens_on_loopback_only_and_serves_the_other_rank():
    port = free_port()
    master = {}
    thread = threading.Thread(
        target=lambda: master.update(store=rendezvous_store(0, 2, LOOPBACK, port, TIMEOUT))
    )
    thread.start()
    client = rendezvous_store(1, 2, LOOPBACK, port, TIMEOUT)
    thread.join(timeout=30)
    assert _listening(port) == {LOOPBACK}
    master["store"].set("from-rank-0", "hello")
    assert client.get("from-rank-0") == b"hello"


def test_rank0_store_is_not_reachable_on_another_interface():
    other = _other_ipv4()
    if other is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    port = free_port()
    store = rendezvous_store(0, 1, LOOPBACK, port, TIMEOUT)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((other, port), timeout=5).close()
    assert store.num_keys() >= 0  # still serving on loopback

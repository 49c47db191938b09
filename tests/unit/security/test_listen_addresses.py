"""cpe's rendezvous listeners bind one address: loopback on one node, the node IP on many.

torch's TCPStore server, given only an address, listens on every interface; a group's
store is therefore served from a socket cpe binds itself (``RendezvousServer``).
"""

from __future__ import annotations

import socket
from datetime import timedelta

import psutil
import pytest

from cpe import net
from cpe.learner.dist import RendezvousServer, join_store
from cpe.net import LOOPBACK, bound_listener, free_port, listen_host

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


def test_free_port_is_below_the_ephemeral_range_and_bindable(tmp_path, monkeypatch):
    ranges = tmp_path / "ip_local_port_range"
    ranges.write_text("32768\t60999\n")
    monkeypatch.setattr(net, "EPHEMERAL_RANGE", ranges)
    ports = {free_port() for _ in range(20)}
    assert all(net.FIXED_PORTS_FROM <= p < 32768 for p in ports)
    with bound_listener(LOOPBACK, ports.pop()):
        pass


def test_free_port_passes_over_a_port_in_use(tmp_path, monkeypatch):
    ranges = tmp_path / "ip_local_port_range"
    ranges.write_text("32768 60999")
    monkeypatch.setattr(net, "EPHEMERAL_RANGE", ranges)
    with bound_listener(LOOPBACK, 0) as taken:
        busy = taken.getsockname()[1]
        picks, real = [busy, busy], net._RANDOM.randrange
        monkeypatch.setattr(
            net._RANDOM, "randrange", lambda lo, hi: picks.pop() if picks else real(lo, hi)
        )
        port = free_port()
    assert picks == [] and port != busy and net.FIXED_PORTS_FROM <= port < 32768


def test_free_port_lets_the_kernel_pick_without_a_known_range(tmp_path, monkeypatch):
    monkeypatch.setattr(net, "EPHEMERAL_RANGE", tmp_path / "absent")
    monkeypatch.setattr(net._RANDOM, "randrange", lambda lo, hi: pytest.fail("no fixed pick"))
    assert free_port() > 0

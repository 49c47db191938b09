"""Where the driver may connect from: a Ray Client address is refused before Ray."""

from __future__ import annotations

import pytest

from cpe.cluster.session import refuse_ray_client


def test_a_ray_client_address_is_refused_naming_it():
    with pytest.raises(ValueError, match=r"^ray://head:10001: a Ray Client address .* node"):
        refuse_ray_client("ray://head:10001")


@pytest.mark.parametrize("address", [None, "", "auto", "10.0.0.1:6379", "127.0.0.1:6379"])
def test_cluster_addresses_pass(address):
    refuse_ray_client(address)

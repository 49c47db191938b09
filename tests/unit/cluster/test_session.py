"""Where the driver may connect from: a Ray Client address is refused before Ray."""

from __future__ import annotations

import pytest

from cpe.cluster.session import init_ray
from cpe.compose import load_config


def test_a_ray_client_address_in_the_environment_is_refused_before_ray(monkeypatch):
    import ray

    monkeypatch.setenv("RAY_ADDRESS", "ray://head:10001")
    with pytest.raises(ValueError, match=r"^ray://head:10001: a Ray Client address .* node"):
        init_ray(load_config(["experiment=tiny_cpu"]))
    assert not ray.is_initialized()

"""The thread budget an actor reads from the environment Ray gives it."""

import pytest

from cpe.cluster.threads import bundle_threads

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("value", "expected"), [("2", 2), ("1", 1), ("0", 1), ("", 1), ("x", 1)])
def test_bundle_threads_reads_omp_num_threads(monkeypatch, value, expected):
    monkeypatch.setenv("OMP_NUM_THREADS", value)
    assert bundle_threads() == expected


def test_outside_ray_one_thread(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert bundle_threads() == 1

"""Shared fixtures for integration tests: a private TMPDIR and cache for Ray/vLLM."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def _quiet_env():
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    os.environ.setdefault("WANDB_SILENT", "true")
    yield


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray for the whole integration session (a second ray.init would fail)."""
    import ray

    from cpe.cluster.session import worker_env

    started = not ray.is_initialized()
    if started:
        ray.init(
            num_cpus=8,
            object_store_memory=400 * 1024**2,
            include_dashboard=False,
            runtime_env={"env_vars": worker_env()},
        )
    yield ray
    if started:
        ray.shutdown()

"""Fixtures of the learner integration tests: the tiny model."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_model() -> str:
    from cpe.models.paths import resolve_model_path

    return resolve_model_path("fixture:tiny")

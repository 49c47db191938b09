"""Fixtures of the learner integration tests: one Ray for the session, the tiny model."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
# DeepSpeed JIT-builds a comm op on first init (~30 s); a stable folder builds it once.
EXTENSIONS = os.environ.setdefault(
    "TORCH_EXTENSIONS_DIR", str(REPO / ".cache" / "torch_extensions")
)


@pytest.fixture(scope="session")
def tiny_model() -> str:
    from cpe.models.paths import resolve_model_path

    return resolve_model_path("fixture:tiny", REPO / ".cache" / "models")

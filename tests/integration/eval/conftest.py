from __future__ import annotations

import pytest

from cpe.compose import load_config


@pytest.fixture
def eval_config():
    """The validated tiny_cpu config with an eval folder and overrides."""

    def build(folder, *overrides):
        return load_config(
            [
                "experiment=tiny_cpu",
                f"eval.output_dir={folder}",
                "logging.wandb_mode=disabled",
                "logging.progress=false",
                *overrides,
            ]
        )

    return build

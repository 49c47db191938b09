from __future__ import annotations

import pytest

from cpe.compose import load_config


def _tiny_config(run_dir, *overrides):
    return load_config(
        [
            "experiment=tiny_cpu",
            f"logging.run_dir={run_dir}",
            "logging.wandb_mode=disabled",
            "logging.progress=false",
            *overrides,
        ]
    )


@pytest.fixture
def tiny_config():
    """Builds the validated tiny_cpu config for a run folder plus overrides."""
    return _tiny_config


def _train(cfg, steps: int) -> None:
    from cpe.trainer.preflight import load_split, resume_checkpoint
    from cpe.trainer.system import build_driver

    train = load_split("bundled:train", None, None, None)
    driver, system = build_driver(cfg, train, steps, resume_checkpoint(cfg))
    try:
        driver.fit()
    finally:
        driver.logger.close()
        system.shutdown()


@pytest.fixture
def train_in_process():
    """Runs a whole training (build, fit, shut down) in this process's Ray session."""
    return _train

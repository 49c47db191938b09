import pytest


@pytest.fixture
def tiny_training() -> list[str]:
    """Overrides for a one-step tiny training with a rule reward (no GRM engine),
    checkpointed, quiet: what each launch test trains."""
    return [
        "experiment=tiny_cpu",
        "grm=python",
        "grm.python_function=cpe.reward.rules:letter_reward",
        "cluster.pools.grm.engines=0",
        "trainer.total_steps=1",
        "trainer.save_every=1",
        "logging.wandb_mode=disabled",
        "logging.progress=false",
    ]

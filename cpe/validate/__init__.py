"""One start-up check of a composed config: impossible combinations fail here, with
the key to change, before Ray, vLLM or DeepSpeed start."""

from __future__ import annotations

from cpe.config import CPEConfig
from cpe.validate import tools, training
from cpe.validate.checks import Checker, ConfigError

__all__ = ["ConfigError", "validate"]


def validate(cfg: CPEConfig) -> None:
    """Raise :class:`ConfigError` listing every problem found in ``cfg``."""
    check = Checker()
    for part in (*training.PARTS, *tools.PARTS):
        part(cfg, check)
    if check.problems:
        raise ConfigError(check.problems)

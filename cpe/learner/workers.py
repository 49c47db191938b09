"""The learner workers in one place (each lives in its own module)."""

from cpe.learner.base import DeepSpeedWorker
from cpe.learner.policy import PolicyWorker
from cpe.learner.value import ValueWorker

__all__ = ["DeepSpeedWorker", "PolicyWorker", "ValueWorker"]

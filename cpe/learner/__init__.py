"""Learner layer: DeepSpeed ranks for the policy and the value model (wrap with ray.remote)."""

from cpe.learner.base import DeepSpeedWorker
from cpe.learner.batch import TensorBatch
from cpe.learner.dist import free_port, init_distributed
from cpe.learner.ds_config import build_ds_config, lr_factor
from cpe.learner.policy import PolicyWorker
from cpe.learner.value import ValueModel, ValueWorker

__all__ = [
    "DeepSpeedWorker",
    "PolicyWorker",
    "TensorBatch",
    "ValueModel",
    "ValueWorker",
    "build_ds_config",
    "free_port",
    "init_distributed",
    "lr_factor",
]

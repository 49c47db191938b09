"""Learner layer: DeepSpeed policy and value ranks (plain classes, wrapped with ray.remote),
their DeepSpeed config, HF export, and the learner group that drives them."""

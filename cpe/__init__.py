"""cpe: Critique-Post-Edit RL."""

__version__ = "0.1.0"

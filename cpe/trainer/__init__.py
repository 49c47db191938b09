"""The driver side: the step loop, experience makers, advantages, metrics, checkpoints and the wiring of the system."""

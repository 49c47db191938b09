"""Pushing learner weights into rollout engines: sender, receivers, backends."""

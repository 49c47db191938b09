"""Placement, actor groups and weight sync: everything that knows about Ray."""

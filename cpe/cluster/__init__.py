"""Placement groups and the Ray session: the only code that knows how actors are laid out."""

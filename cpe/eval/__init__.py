"""Evaluation: answers from policies, a pairwise judge against a reference, win rate and
length-controlled win rate, reward-hacking measures (``python -m cpe.eval``)."""

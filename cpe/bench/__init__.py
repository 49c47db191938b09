"""``make bench`` / ``python -m cpe.bench``: one workload through cpe's trainers and
TRL's GRPOTrainer, side by side, printing step times, phase shares, weight-sync
bandwidth and peak memory (and writing them as JSON). A script that prints figures,
not a timed test: nothing here asserts a speed."""

"""Teacher labelling (``python -m cpe.label``): the configured GRM critiques and scores
both answers of each preference pair with the GRM rubric, giving GRM SFT examples and
teacher-ordered preference pairs (policy SFT, Bradley-Terry training)."""

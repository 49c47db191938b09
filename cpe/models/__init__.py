"""Model folders: local HF paths and fixtures built on demand (tiny, SmolLM2)."""

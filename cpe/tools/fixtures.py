"""Resolve ``model.*.path`` values: plain folders pass through, ``fixture:NAME``
builds (once) and returns a locally generated model folder."""

from __future__ import annotations

from pathlib import Path

FIXTURES = ("tiny", "smollm2")


def resolve_model_path(path: str, cache_dir: str | Path = ".cache/models") -> str:
    if not path.startswith("fixture:"):
        if not Path(path).is_dir():
            raise FileNotFoundError(
                f"model folder {path!r} does not exist (no hub downloads happen at run time; "
                f"point model.*.path at a local Hugging Face folder or use fixture:{'|'.join(FIXTURES)})"
            )
        return path
    name = path.split(":", 1)[1]
    cache = Path(cache_dir)
    if name == "tiny":
        from cpe.tools.tiny_model import build_tiny_model

        return str(build_tiny_model(cache / "tiny").resolve())
    if name == "smollm2":
        from cpe.tools.smollm2 import build_smollm2

        return str(build_smollm2(cache / "smollm2-135m-instruct").resolve())
    raise ValueError(f"unknown model fixture {name!r}; known: {', '.join(FIXTURES)}")

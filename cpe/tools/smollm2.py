"""CLI: ``python -m cpe.tools.smollm2 --out DIR`` (build the smollm2-135m-instruct hf folder; see cpe.models.smollm2)."""

from __future__ import annotations

import argparse

from cpe.models.smollm2 import DEFAULT_OUT, build_smollm2


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Build the SmolLM2-135M-Instruct HF folder")
    parser.add_argument("--out", default=DEFAULT_OUT, help="output folder")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    args = parser.parse_args(argv)
    path = build_smollm2(args.out, dtype=args.dtype)
    print(f"SmolLM2-135M-Instruct ready: {path.resolve()}")


if __name__ == "__main__":
    main()

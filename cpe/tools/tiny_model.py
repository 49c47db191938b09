"""CLI: ``python -m cpe.tools.tiny_model --out DIR`` (build the tiny test model folder; see cpe.models.tiny)."""

from __future__ import annotations

import argparse

from cpe.models.tiny import build_tiny_model


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Build the tiny test model folder")
    parser.add_argument("--out", default=".cache/models/tiny", help="output folder")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    path = build_tiny_model(args.out, seed=args.seed)
    print(f"tiny model ready: {path.resolve()}")


if __name__ == "__main__":
    main()

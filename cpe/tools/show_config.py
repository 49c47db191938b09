"""Print the resolved, validated config (Hydra ``--cfg job`` style).

    python -m cpe.tools.show_config experiment=tiny_cpu learner.actor_lr=1e-5
    python -m cpe.tools.show_config --all      # every preset

Exit status 2 with a one-line error naming the key when the config cannot run.
"""

from __future__ import annotations

import sys

from omegaconf import OmegaConf

from cpe.compose import PRESETS, load_config, one_line_error


def render(overrides: list[str]) -> str:
    return OmegaConf.to_yaml(OmegaConf.structured(load_config(overrides)))


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    runs = [[f"experiment={p}"] + args[1:] for p in PRESETS] if args[:1] == ["--all"] else [args]
    for overrides in runs:
        try:
            text = render(overrides)
        except Exception as exc:  # noqa: BLE001 - every failure becomes one actionable line
            print(f"config error: {one_line_error(exc)}", file=sys.stderr)
            return 2
        print(f"# ---- {' '.join(overrides) or '(defaults)'}")
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``python -m cpe.launch COMMAND ...``: ``submit`` (a training as a Ray job), ``sweep``
(one job per sweep point), ``k8s`` (KubeRay manifests from a config) or ``summary``
(rewrite a sweep folder's table)."""

from __future__ import annotations

import importlib
import sys

#: command -> the module whose main(argv) runs it (imported on use: Ray only for submit)
COMMANDS = {
    "submit": "cpe.launch.submit",
    "sweep": "cpe.launch.sweep_jobs",
    "k8s": "cpe.launch.k8s",
    "summary": "cpe.launch.sweep",
}
USAGE = f"usage: python -m cpe.launch {{{','.join(COMMANDS)}}} ... (each takes -h)"


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in COMMANDS:
        print(USAGE, file=sys.stderr)
        return 2
    return importlib.import_module(COMMANDS[argv[0]]).main(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

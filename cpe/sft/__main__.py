"""``python -m cpe.sft sft.task=grm|policy|bt sft.model=PATH sft.train_path=FILE ...``

Supervised training on the policy pool's DeepSpeed ranks, with the same config tree
and overrides as ``python -m cpe.train``: a GRM on cpe.label's critiques, the policy on
chosen answers, or a Bradley-Terry reward model on pairs. Settings, model and examples
are checked first (seconds); the ranks start after. A killed run continues from its
newest checkpoint when started again with the same ``sft.output_dir``.
"""

from __future__ import annotations

import logging
import sys

from cpe.compose import compose, one_line_error, to_typed
from cpe.data import DataError
from cpe.logs import error_banner, quiet_third_party
from cpe.validate import validate


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    try:
        cfg = to_typed(compose(args))
        validate(cfg)
        from cpe.sft.plan import plan_sft

        plan = plan_sft(cfg)
    except (DataError, ValueError, FileNotFoundError) as exc:
        print(f"error: {one_line_error(exc)}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - report one actionable line, no traceback
        print(f"config error: {one_line_error(exc)}", file=sys.stderr)
        return 2
    from cpe.sft.loop import run_sft

    quiet_third_party(cfg.cluster.device)
    try:
        model = run_sft(plan)
    except KeyboardInterrupt:
        print(
            f"interrupted: run the same command with sft.output_dir={cfg.sft.output_dir} "
            "to continue from its newest checkpoint",
            file=sys.stderr,
        )
        return 130
    except Exception as exc:
        logging.getLogger("cpe").exception("fatal error")
        print(error_banner(exc), file=sys.stderr)
        return 1
    print(f"sft {cfg.sft.task}: model in {model}; metrics in {model.parent / 'metrics.jsonl'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

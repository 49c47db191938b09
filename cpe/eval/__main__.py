"""``python -m cpe.eval [experiment=NAME] eval.policies=[PATH,...] key=value ...``

The same config tree and override syntax as ``python -m cpe.train``; the ``eval`` node
says what to evaluate. Config, eval set, policies, reference and the cache folder are
checked first (seconds); engines start only for what the eval folder lacks.
"""

from __future__ import annotations

import logging
import sys

from cpe.compose import compose, one_line_error, to_typed
from cpe.data import DataError
from cpe.eval.cache import CacheMismatch
from cpe.logs import error_banner, quiet_third_party
from cpe.validate import validate


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    try:
        cfg = to_typed(compose(args))
        validate(cfg)
    except Exception as exc:  # noqa: BLE001 - report one actionable line, no traceback
        print(f"config error: {one_line_error(exc)}", file=sys.stderr)
        return 2
    from cpe.eval.runner import plan_task, run_eval

    quiet_third_party(cfg.cluster.device)
    try:
        plan = plan_task(cfg)
    except (DataError, CacheMismatch, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        run_eval(cfg, plan)
    except KeyboardInterrupt:
        print(
            f"interrupted: finished answers and judgments are kept in {cfg.eval.output_dir}; "
            "run the same command with eval.output_dir set to it to continue",
            file=sys.stderr,
        )
        return 130
    except Exception as exc:
        logging.getLogger("cpe").exception("fatal error")
        print(error_banner(exc), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

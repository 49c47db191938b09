"""``python -m cpe.label [experiment=NAME] label.pairs_path=PATH key=value ...``

The same config tree and override syntax as ``python -m cpe.train``; the ``label`` node
says what to label and the ``grm`` node (with ``model.grm``) is the teacher. Pairs,
personas and the output folder's settings are checked first (seconds); engines start
only for what the folder lacks.
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
    from cpe.label.runner import plan_label, run_label

    quiet_third_party(cfg.cluster.device)
    try:
        plan = plan_label(cfg)
    except (DataError, CacheMismatch, ValueError, FileNotFoundError) as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    try:
        summary = run_label(cfg, plan)
    except KeyboardInterrupt:
        print(
            f"interrupted: finished labels are kept in {plan.folder}/labels.jsonl; run the "
            f"same command with label.output_dir={plan.folder} to continue",
            file=sys.stderr,
        )
        return 130
    except Exception as exc:
        logging.getLogger("cpe").exception("fatal error")
        print(error_banner(exc), file=sys.stderr)
        return 1
    print(summary.line())
    incomplete = summary.unanswered()
    if incomplete is not None:
        print(incomplete, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

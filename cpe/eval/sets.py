"""Eval sets and fixed reference answers, each read and validated before any engine starts.

``EVAL_SETS`` maps ``eval.set`` to a loader ``(EvalConfig) -> list[Record]``; with
``eval.set`` unset the kind is read from the path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from cpe.config import EvalConfig
from cpe.data.alpaca_eval import alpaca_records, load_alpaca_eval
from cpe.data.paths import is_persona_feedback_dir, load_path
from cpe.data.persona_feedback import load_persona_feedback_dir
from cpe.data.records import Record

MAX_LISTED = 3


def _records(cfg: EvalConfig) -> list[Record]:
    return load_path(cfg.data_path, cfg.personas_path)


def _persona_feedback(cfg: EvalConfig) -> list[Record]:
    return load_persona_feedback_dir(cfg.data_path)


def _alpaca_eval(cfg: EvalConfig) -> list[Record]:
    return alpaca_records(load_alpaca_eval(cfg.data_path))


EVAL_SETS: dict[str, Callable[[EvalConfig], list[Record]]] = {
    "records": _records,
    "persona_feedback": _persona_feedback,
    "alpaca_eval": _alpaca_eval,
}


def detect_set(path: str) -> str:
    """``persona_feedback`` for a folder in the published layout, ``alpaca_eval`` for a
    ``.json`` file holding an array, else ``records``."""
    p = Path(path)
    if is_persona_feedback_dir(path):
        return "persona_feedback"
    if p.suffix.lower() == ".json" and p.is_file():
        with p.open("rb") as fh:
            head = fh.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
        if head.startswith(b"["):
            return "alpaca_eval"
    return "records"


def load_eval_set(cfg: EvalConfig) -> list[Record]:
    kind = cfg.set or detect_set(cfg.data_path)
    records = EVAL_SETS[kind](cfg)
    return records[: cfg.max_records] if cfg.max_records else records


def reference_from_dataset(records: Sequence[Record]) -> dict[str, str]:
    """The eval set's own reference answers (e.g. PersonaFeedback's chosen answers)."""
    lacking = [r.id for r in records if not r.reference]
    if lacking:
        raise ValueError(
            f"eval.reference=dataset but {len(lacking)} records have no reference answer "
            f"(e.g. {', '.join(repr(i) for i in lacking[:MAX_LISTED])})"
        )
    return {r.id: r.reference for r in records}


def reference_from_file(path: str, records: Sequence[Record]) -> dict[str, str]:
    """Reference outputs in AlpacaEval format, matched to records by instruction text."""
    by_instruction = {item.instruction.strip(): item.output for item in load_alpaca_eval(path)}
    lacking = [r.id for r in records if r.question.strip() not in by_instruction]
    if lacking:
        raise ValueError(
            f"eval.reference={path!r} has no output for {len(lacking)} eval records "
            f"(matched by instruction; e.g. record {lacking[0]!r})"
        )
    return {r.id: by_instruction[r.question.strip()] for r in records}

"""The files a labelling run publishes, each written whole (tmp + rename), so a reader
never sees half of one:

* ``grm_sft.jsonl`` / ``grm_sft_eval.jsonl``: ``{"id": "<pair id>:<side>", "messages":
  [...the GRM's chat...], "response": "<teacher output>"}`` per valid label;
* ``pairs.jsonl`` / ``pairs_eval.jsonl``: records as ``cpe.data.load_records`` reads them
  (``id``, inline ``persona``, ``question``, ``chosen``, ``rejected``, ``meta`` with the
  teacher's ``chosen_reward`` / ``rejected_reward``);
* ``summary.json``: the counts of :class:`Summary`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cpe.label.assemble import Assembly, Split
from cpe.label.store import write_atomic
from cpe.label.teacher import TeacherRun

SUMMARY_FILE = "summary.json"
OUTPUT_FILES = (
    "grm_sft.jsonl",
    "grm_sft_eval.jsonl",
    "pairs.jsonl",
    "pairs_eval.jsonl",
    SUMMARY_FILE,
    "labels.jsonl",
)


@dataclass(frozen=True)
class SplitFiles:
    grm_sft: str
    pairs: str


SPLIT_FILES = {
    "train": SplitFiles(OUTPUT_FILES[0], OUTPUT_FILES[2]),
    "eval": SplitFiles(OUTPUT_FILES[1], OUTPUT_FILES[3]),
}


@dataclass(frozen=True)
class Written:
    grm_sft: int
    pairs: int


@dataclass
class Summary:
    output_dir: str
    preference: str
    pairs_read: int
    answers_labelled: int  # asked this run
    answers_reused: int  # already in labels.jsonl
    invalid_answers: int
    first_errors: list[str]
    dropped_equal_rewards: int
    dropped_consistency_filter: int
    dropped_invalid_side: int
    dropped_unlabelled: int  # a side got no reply (transport failure)
    # Answers the teacher never answered (connection errors, timeouts, HTTP errors after
    # the client's retries): not in labels.jsonl, so the same command asks again.
    transport_failures: int
    first_transport_errors: list[str]
    # Teacher ranks the data's chosen answer higher (preference=dataset; else null).
    teacher_agreement: float | None
    written: dict[str, Written] = field(default_factory=dict)

    def line(self) -> str:
        t, e = self.written["train"], self.written["eval"]
        return (
            f"labelled {self.answers_labelled} answers ({self.answers_reused} reused, "
            f"{self.invalid_answers} invalid, {self.transport_failures} unanswered) of "
            f"{self.pairs_read} pairs -> GRM SFT {t.grm_sft} + {e.grm_sft} held out, pairs "
            f"{t.pairs} + {e.pairs} held out (dropped: {self.dropped_equal_rewards} ties, "
            f"{self.dropped_consistency_filter} inconsistent, {self.dropped_invalid_side} "
            f"invalid, {self.dropped_unlabelled} unlabelled) -> {self.output_dir}/"
            f"{{{','.join(OUTPUT_FILES)}}}"
        )

    def unanswered(self) -> str | None:
        """One line for an incomplete run: what failed and how to finish."""
        if not self.transport_failures:
            return None
        return (
            f"incomplete: {self.transport_failures} answers got no reply from the teacher "
            f"(first: {self.first_transport_errors[0]}); run the same command with "
            f"label.output_dir={self.output_dir} to ask for them again"
        )


def summarize(
    folder: Path, preference: str, pairs_read: int, run: TeacherRun, built: Assembly
) -> Summary:
    return Summary(
        output_dir=str(folder),
        preference=preference,
        pairs_read=pairs_read,
        answers_labelled=run.labelled,
        answers_reused=run.reused,
        invalid_answers=built.invalid,
        first_errors=built.first_errors,
        dropped_equal_rewards=built.dropped.equal_rewards,
        dropped_consistency_filter=built.dropped.consistency_filter,
        dropped_invalid_side=built.dropped.invalid_side,
        dropped_unlabelled=built.dropped.unlabelled,
        transport_failures=run.transport_failures,
        first_transport_errors=run.first_transport_errors,
        teacher_agreement=built.agreement.rate if preference == "dataset" else None,
    )


def write_outputs(folder: Path, built: Assembly, summary: Summary) -> None:
    for name, split in (("train", built.train), ("eval", built.eval)):
        summary.written[name] = _write_split(folder, SPLIT_FILES[name], split)
    write_atomic(folder / SUMMARY_FILE, json.dumps(asdict(summary), indent=1) + "\n")


def _write_split(folder: Path, files: SplitFiles, split: Split) -> Written:
    _write_jsonl(folder / files.grm_sft, (asdict(e) for e in split.grm_sft))
    _write_jsonl(folder / files.pairs, (r.to_json() for r in split.pairs))
    return Written(len(split.grm_sft), len(split.pairs))


def _write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    write_atomic(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))

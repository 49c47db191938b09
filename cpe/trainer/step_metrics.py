"""What a step reports about its samples: rewards and scores per kind, lengths,
selection, invalid GRM results; and the sample table a person reads."""

from __future__ import annotations

import json
from statistics import fmean

from cpe.algo.grm_parse import DIMENSIONS as GRM_DIMENSIONS
from cpe.batch import TensorBatch
from cpe.trainer.experience import Experience, Sample

# Score fields in the order of Judgement.scores (H, P, N).
DIMENSIONS = tuple(name for name, _, _ in GRM_DIMENSIONS)


def _kind_metrics(prefix: str, samples: list[Sample]) -> dict[str, float]:
    out: dict[str, float] = {f"{prefix}/count": float(len(samples))}
    if not samples:
        return out
    valid = [s for s in samples if s.valid]
    out[f"{prefix}/invalid_share"] = 1.0 - len(valid) / len(samples)
    out[f"{prefix}/length_tokens"] = fmean(len(s.response_ids) for s in samples)
    out[f"{prefix}/truncated_share"] = fmean(s.finish_reason == "length" for s in samples)
    if valid:
        out[f"{prefix}/reward_mean"] = fmean(s.reward for s in valid)
        scored = [s for s in valid if s.scores]
        for i, dim in enumerate(DIMENSIONS):
            if scored:
                out[f"{prefix}/{dim}"] = fmean(s.scores[i] for s in scored)
    return out


def experience_metrics(exp: Experience, batch: TensorBatch) -> dict[str, float]:
    selected = [exp.edits[i] for i in exp.selected]
    metrics = {
        **_kind_metrics("original", exp.originals),
        **_kind_metrics("edit", exp.edits),
        **_kind_metrics("selected_edit", selected),
        "batch/rows": float(len(batch)),
        "batch/selected_edits": float(len(exp.selected)),
        "batch/valid_tokens": float(batch.response_mask.sum()),
        **exp.grm_stats,
    }
    valid = batch.response_mask > 0
    if batch.advantages is not None and valid.any():
        metrics["advantage/mean"] = float(batch.advantages[valid].mean())
        metrics["advantage/abs_mean"] = float(batch.advantages[valid].abs().mean())
        metrics["returns/mean"] = float(batch.returns[valid].mean())
        metrics["values/mean"] = float(batch.old_values[valid].mean())
        if batch.kl is not None:
            metrics["kl/mean"] = float(batch.kl[valid].mean())
    pairs = [
        (exp.originals[e.pair_id], e)
        for e in exp.edits
        if e.valid and exp.originals[e.pair_id].valid
    ]
    if pairs:
        metrics["edit/gain_mean"] = fmean(e.reward - o.reward for o, e in pairs)
        metrics["edit/improved_share"] = fmean(e.reward > o.reward for o, e in pairs)
    return metrics


def sample_rows(exp: Experience, limit: int) -> list[dict]:
    """persona, question, original, critique, edit, scores — one row per original."""
    edit_of = {e.pair_id: e for e in exp.edits}
    chosen = {exp.edits[i].pair_id for i in exp.selected}
    rows = []
    for original in exp.originals[:limit]:
        edit = edit_of.get(original.pair_id)
        rows.append(
            {
                "id": original.record.id,
                "persona": json.dumps(original.record.persona, ensure_ascii=False),
                "question": original.record.question,
                "original": original.text,
                "original_scores": original.scores,
                "original_reward": original.reward,
                "critique": original.critique,
                "edit": edit.text if edit else None,
                "edit_scores": edit.scores if edit else None,
                "edit_reward": edit.reward if edit else None,
                "edit_selected": original.pair_id in chosen,
            }
        )
    return rows

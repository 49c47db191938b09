"""Per-policy evaluation metrics, and the results files (``results.json``, ``results.md``).

Win rates are in percent. ``invalid`` counts items with no valid judgment in any
order (left out of both rates); ``invalid_orders`` counts single invalid verdicts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from statistics import fmean
from typing import Any

from cpe.algo import lc_win_rate, win_rate
from cpe.data.records import Record
from cpe.eval.answers import DEFAULT_VARIANT, PROBE_VARIANTS
from cpe.eval.measures import addresses_by_name, mentions_persona_field

LENGTH_ONLY = "length_only"
TABLE_COLUMNS = (
    ("win_rate", "win rate"),
    ("win_rate_se", "± se"),
    ("lc_win_rate", "LC win rate"),
    ("lc_length_only", "LC (length only)"),
    ("judged", "judged"),
    ("invalid", "invalid"),
    ("length_tokens", "tokens"),
    ("length_chars", "chars"),
    ("persona_mention_share", "persona mention"),
    ("name_address_share", "by name"),
    ("probe_shift_tokens", "probe shift"),
    ("grm_reward", "GRM reward"),
    ("grm_helpfulness", "GRM H"),
    ("grm_personalization", "GRM P"),
    ("grm_naturalness", "GRM N"),
)


def policy_metrics(
    records: Sequence[Record],
    answers: Mapping[tuple[str, str], Mapping[str, Any]],
    reference: Mapping[str, str],
    preferences: Mapping[str, float | None],
    lc_method: str,
    invalid_orders: int = 0,
) -> dict[str, Any]:
    """Metrics of one policy: rates over validly judged items, measures over all."""
    texts = [answers[(r.id, DEFAULT_VARIANT)]["answer"] for r in records]
    judged = [r for r in records if preferences.get(r.id) is not None]
    out: dict[str, Any] = {"records": len(records), "judged": len(judged)}
    out["invalid"] = len(records) - len(judged)
    out["invalid_orders"] = invalid_orders
    out.update(_rates(judged, answers, reference, preferences, lc_method))
    out["length_tokens"] = fmean(answers[(r.id, DEFAULT_VARIANT)]["tokens"] for r in records)
    out["length_chars"] = fmean(len(t) for t in texts)
    out["reference_length_chars"] = fmean(len(reference[r.id]) for r in records)
    pairs = list(zip(records, texts, strict=True))
    out["persona_mention_share"] = fmean(mentions_persona_field(t, r.persona) for r, t in pairs)
    out["name_address_share"] = fmean(addresses_by_name(t, r.persona) for r, t in pairs)
    out.update(probe_metrics(records, answers))
    return out


def _rates(judged, answers, reference, preferences, lc_method) -> dict[str, float | None]:
    if not judged:
        return dict.fromkeys(("win_rate", "win_rate_se", "lc_win_rate", "lc_win_rate_se"))
    prefs = [preferences[r.id] for r in judged]
    lengths = [len(answers[(r.id, DEFAULT_VARIANT)]["answer"]) for r in judged]
    ref_lengths = [len(reference[r.id]) for r in judged]
    raw = win_rate(prefs)
    lc = lc_win_rate(prefs, lengths, ref_lengths, method=lc_method)
    out = {
        "win_rate": raw.value,
        "win_rate_se": raw.se,
        "lc_win_rate": lc.value,
        "lc_win_rate_se": lc.se,
    }
    if lc_method != LENGTH_ONLY:
        # Beside the configured method: the L1-fitted GLM often shrinks to exactly 50 on
        # eval sets of tens of items, where the plain fit still gives an estimate.
        alt = lc_win_rate(prefs, lengths, ref_lengths, method=LENGTH_ONLY)
        out["lc_length_only"] = alt.value
    return out


def probe_metrics(
    records: Sequence[Record], answers: Mapping[tuple[str, str], Mapping[str, Any]]
) -> dict[str, float]:
    """Mean answer tokens under each probe suffix and the brief -> detailed shift."""
    means = {}
    for variant in PROBE_VARIANTS:
        rows = [answers.get((r.id, variant)) for r in records]
        if all(row is not None for row in rows):
            means[variant] = fmean(row["tokens"] for row in rows)
    if len(means) < len(PROBE_VARIANTS):
        return {}
    return {
        "probe_brief_tokens": means["brief"],
        "probe_detailed_tokens": means["detailed"],
        "probe_shift_tokens": means["detailed"] - means["brief"],
    }


Columns = Sequence[tuple[str, str]] | None


def markdown_table(
    policies: Mapping[str, Mapping[str, Any]], columns: Columns = TABLE_COLUMNS
) -> str:
    """One row per policy; ``columns`` (key, header) shown when present, or every
    numeric key when None."""
    if columns is None:
        keys = dict.fromkeys(k for m in policies.values() for k, v in m.items() if _numeric(v))
        columns = [(k, k.replace("_", " ")) for k in keys]
    present = [(k, h) for k, h in columns if any(k in m for m in policies.values())]
    lines = [
        "| policy | " + " | ".join(h for _, h in present) + " |",
        "|---" * (len(present) + 1) + "|",
    ]
    for name, metrics in policies.items():
        cells = [_cell(metrics.get(k)) for k, _ in present]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _numeric(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 1 else f"{value:.1f}"
    return str(value)


def write_results(
    folder: Path,
    header: Mapping[str, Any],
    policies: Mapping[str, Any],
    columns: Columns = TABLE_COLUMNS,
) -> Path:
    """``results.json`` (header + per-policy metrics) and ``results.md``; returns the JSON path."""
    folder.mkdir(parents=True, exist_ok=True)
    document = {**header, "policies": dict(policies)}
    path = folder / "results.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(document, indent=1))
    tmp.replace(path)
    described = ", ".join(f"{k}: {header[k]}" for k in ("eval_set", "reference", "judge"))
    (folder / "results.md").write_text(
        f"# Evaluation {header.get('name', '')}\n\n{described}\n\n"
        f"{markdown_table(policies, columns)}\n"
    )
    return path

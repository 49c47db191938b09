"""The record type every loader produces and every prompt renders from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Record:
    """One (persona, question) prompt, optionally with evaluation answers.

    ``persona`` is a structured profile (demographics, personality, preferences,
    interests ...) kept as a JSON object; prompts decide how to show it.
    """

    id: str
    persona: dict[str, Any]
    question: str
    reference: str | None = None
    chosen: str | None = None
    rejected: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "persona": self.persona, "question": self.question}
        for key in ("reference", "chosen", "rejected"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.meta:
            out["meta"] = self.meta
        return out

"""Small fakes of the two things an Evaluation is handed: an answer function (the
policy's engines) and a pairwise judge."""

from __future__ import annotations

from cpe.eval.judges import Verdict


class FakeAnswers:
    """Answers ``"<tag> answer to <question>"``; counts the items it was asked for."""

    def __init__(self, tag: str, tokens: int = 5):
        self.tag = tag
        self.tokens = tokens
        self.asked: list[tuple[str, str]] = []

    def __call__(self, chunk):
        self.asked += [(r.id, v) for r, v in chunk]
        return [
            {
                "id": r.id,
                "variant": v,
                "answer": f"{self.tag} answer to {r.question}",
                "tokens": self.tokens * (2 if v == "detailed" else 1),
                "finish_reason": "stop",
            }
            for r, v in chunk
        ]


class FakeJudge:
    """P(A better) = ``strong`` when A holds ``winner_tag``, else ``weak``; records whose
    id is in ``invalid`` get invalid verdicts (in the orders listed there)."""

    description = "fake"

    def __init__(self, winner_tag: str, strong=0.9, weak=0.3, invalid=None):
        self.winner_tag, self.strong, self.weak = winner_tag, strong, weak
        self.invalid = invalid or {}
        self.calls = 0

    def judge(self, items):
        self.calls += len(items)
        out = []
        for record, a, _b in items:
            order = "pr" if self.winner_tag in a else "rp"
            if order in self.invalid.get(record.id, ()):
                out.append(Verdict(None, "invalid", "no letter", 3))
            else:
                out.append(Verdict(self.strong if self.winner_tag in a else self.weak, "text"))
        return out

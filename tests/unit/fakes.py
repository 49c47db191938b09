"""In-process fakes of the actor interfaces in ``cpe.protocols``, for unit tests of the glue.

They fake the *actors* only (rollout engines, learner ranks, weight sync), never the math:
tests use the real makers, driver, batch, selection and advantage code around them.

- :class:`CharTokenizer`: one token per character (id = code point), so a prompt's ids
  decode back to its exact text and a fake engine can read what it was asked.
- :class:`FakeRollout` (``RolloutPool``): replies ``respond(prompt_text, sample_index)``.
- :class:`FakeLearners` (``LearnerGroup``): constant pi_old / V / reference / mu tensors.
- :class:`FakeSync` (``WeightSync``): records the pushed versions.

Every fake appends what it was asked to ``log`` (a list shared between fakes, so a test
can check the order of calls across them).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from cpe.batch import ForwardPasses, TensorBatch
from cpe.data.records import Record
from cpe.types import Generation, SamplingSpec


class CharTokenizer:
    """A tokenizer whose ids are the characters' code points; has a trivial chat template."""

    chat_template = "char"
    name_or_path = "char"

    def apply_chat_template(self, messages, tokenize=False, add_generation_prompt=True) -> str:
        text = "".join(f"<|{m['role']}|>{m['content']}\n" for m in messages)
        return text + ("<|assistant|>" if add_generation_prompt else "")

    def __call__(self, text: str, add_special_tokens: bool = False) -> dict[str, list[int]]:
        return {"input_ids": self.encode(text)}

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return [ord(c) for c in text]

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(chr(i) for i in ids)


CHARS = CharTokenizer()


def make_records(count: int) -> list[Record]:
    """``r0 .. r{count-1}``; record ``i`` asks "What is item i?"."""
    return [
        Record(id=f"r{i}", persona={"name": f"Persona {i}"}, question=f"What is item {i}?")
        for i in range(count)
    ]


@dataclass
class GenerateCall:
    prompts: list[list[int]]
    spec: SamplingSpec


Respond = Callable[[str, int], str | Generation]


@dataclass
class FakeRollout:
    """``RolloutPool``: sample ``j`` of a prompt is ``respond(decoded prompt, j)``.

    ``respond`` returns the text (tokenized one char per token, every token at
    ``logprob``) or a whole :class:`Generation`."""

    respond: Respond
    logprob: float = -0.5
    log: list = field(default_factory=list)
    calls: list[GenerateCall] = field(default_factory=list)
    loads: list[tuple[Any, int | None]] = field(default_factory=list)

    def generate(
        self, prompt_ids: Sequence[Sequence[int]], spec: SamplingSpec
    ) -> list[list[Generation]]:
        prompts = [list(p) for p in prompt_ids]
        self.calls.append(GenerateCall(prompts, spec))
        self.log.append(("generate", len(prompts), spec.n))
        return [[self._one(p, j) for j in range(spec.n)] for p in prompts]

    def _one(self, prompt: list[int], index: int) -> Generation:
        reply = self.respond(CHARS.decode(prompt), index)
        if isinstance(reply, Generation):
            return reply
        ids = CHARS.encode(reply)
        return Generation(prompt, ids, reply, [self.logprob] * len(ids), finish_reason="stop")

    def load_weight_buckets(self, buckets_ref: Any, version: int | None = None) -> list[dict]:
        self.loads.append((buckets_ref, version))
        self.log.append(("load_weight_buckets", version))
        return [{"version": version}]

    def load_adapter(self, files_ref: Any, version: int) -> list[dict]:
        self.loads.append((files_ref, version))
        self.log.append(("load_adapter", version))
        return [{"bytes": 3 * 2**20, "load_s": 0.25}, {"bytes": 3 * 2**20, "load_s": 0.5}]

    def shutdown(self) -> None:
        self.log.append(("shutdown",))


@dataclass
class FakeLearners:
    """``LearnerGroup`` returning constant tensors: pi_old = ``old_logp`` and
    V = ``value`` on every position; the reference (if set) = ``ref_logp``; mu on the
    edit-prompt layout = ``edit_logp`` on response tokens and ``EDIT_PAD`` elsewhere
    (so a test can see that only the response positions are moved).
    ``logprobs`` (the sync check's call) uses ``logprob_fn`` when given."""

    EDIT_PAD = -9.0

    log: list = field(default_factory=list)
    old_logp: float = -1.0
    value: float = 0.5
    ref_logp: float | None = None
    edit_logp: float = -2.0
    train_metrics: dict[str, float] = field(
        default_factory=lambda: {"policy/loss": 0.25, "value/loss": 0.125}
    )
    logprob_fn: Callable[[TensorBatch, float], torch.Tensor] | None = None
    export: Any = "rank0-buckets"
    forward_inputs: list[tuple[TensorBatch, TensorBatch | None, float]] = field(
        default_factory=list
    )
    logprob_inputs: list[tuple[TensorBatch, float]] = field(default_factory=list)
    old_logp_asked: list[bool] = field(default_factory=list)  # with_old_logp of each call
    forward_steps: list[int] = field(default_factory=list)  # the step of each forward call
    train_inputs: list[tuple[TensorBatch, int]] = field(default_factory=list)

    def forward_passes(
        self,
        batch: TensorBatch,
        edits: TensorBatch | None,
        temperature: float,
        step: int,
        with_old_logp: bool = True,
    ) -> ForwardPasses:
        self.log.append(("forward_passes", len(batch), None if edits is None else len(edits)))
        self.forward_inputs.append((batch, edits, temperature))
        self.old_logp_asked.append(with_old_logp)
        self.forward_steps.append(step)
        shape = tuple(batch.input_ids.shape)
        edit_logp = None
        if edits is not None:
            edit_logp = torch.where(
                edits.response_mask > 0,
                torch.tensor(self.edit_logp),
                torch.tensor(self.EDIT_PAD),
            )
        return ForwardPasses(
            old_logp=torch.full(shape, self.old_logp) if with_old_logp else None,
            old_values=torch.full(shape, self.value),
            ref_logp=None if self.ref_logp is None else torch.full(shape, self.ref_logp),
            edit_logp=edit_logp,
        )

    def logprobs(self, batch: TensorBatch, temperature: float) -> torch.Tensor:
        self.log.append(("logprobs", len(batch), temperature))
        self.logprob_inputs.append((batch, temperature))
        if self.logprob_fn is not None:
            return self.logprob_fn(batch, temperature)
        return torch.full(tuple(batch.input_ids.shape), self.old_logp)

    def train(self, batch: TensorBatch, step: int) -> dict[str, float]:
        self.log.append(("train", step))
        self.train_inputs.append((batch, step))
        return dict(self.train_metrics)

    def save(self, folder: Path) -> None:
        self.log.append(("save", Path(folder).name))
        (Path(folder) / "learners.txt").write_text("saved")

    def load(self, folder: Path) -> None:
        self.log.append(("load", Path(folder).name))

    def export_ref(self, bucket_mb: int = 64) -> Any:
        self.log.append(("export_ref", bucket_mb))
        return self.export

    def export_adapter_ref(self) -> Any:
        self.log.append(("export_adapter_ref",))
        return "rank0-adapter"

    def shutdown(self) -> None:
        self.log.append(("shutdown",))


@dataclass
class FakeSync:
    """``WeightSync``: records each pushed version, reports fixed metrics."""

    log: list = field(default_factory=list)
    metrics: dict[str, float] = field(
        default_factory=lambda: {"sync/logprob_gap_max": 0.0, "sync/logprob_gap_mean": 0.0}
    )
    versions: list[int] = field(default_factory=list)

    def push(self, version: int) -> dict[str, float]:
        self.log.append(("push", version))
        self.versions.append(version)
        return dict(self.metrics)


def tiny_llama(vocab_size: int = 64):
    """A 2-layer Llama with tied embeddings, random weights (seed 0), built in memory."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        tie_word_embeddings=True,
    )
    return LlamaForCausalLM(config)

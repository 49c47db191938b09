"""Build a tiny random Qwen2-architecture causal LM with a locally trained tokenizer.

Deterministic from a seed, built in seconds, a few MB on disk: the model every test
and the ``tiny_cpu`` preset run on. Usage::

    python -m cpe.tools.tiny_model --out .cache/models/tiny --seed 0
"""

from __future__ import annotations

import json
from pathlib import Path

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# A small English corpus so the BPE merges look like words; content does not matter.
_CORPUS = """
The user asked a question about cooking, travel, money, health, study and work.
A helpful answer is short, clear and fits the person who asks it.
I am a nurse who works night shifts and I want to sleep better during the day.
My daughter is learning to read; which books would you suggest for a six year old?
Explain inflation in simple words, with one example from everyday shopping.
How do I plan a cheap weekend trip by train with two children and a dog?
What is a good vegetarian dinner that takes less than thirty minutes to cook?
Critique: the answer is too long, it repeats the profile and ignores the budget.
Helpfulness: 3 Personalization: 2 Naturalness: 4 scores critique improved answer.
system user assistant profile persona question answer brief detailed
""".strip()


def train_tokenizer(vocab_size: int = 512):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_CORPUS.splitlines() * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_tiny_model(out: str | Path, seed: int = 0, hidden: int = 128, layers: int = 2) -> Path:
    """Write a tiny Qwen2 model + tokenizer to ``out`` (idempotent for the same seed)."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    out = Path(out)
    marker = out / "cpe_fixture.json"
    spec = {
        "kind": "tiny-qwen2",
        "seed": seed,
        "hidden": hidden,
        "layers": layers,
        "max_positions": 8192,
    }
    if marker.exists() and json.loads(marker.read_text()) == spec:
        return out
    tokenizer = train_tokenizer()
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=8192,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        torch_dtype="float32",
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    _write_generation_config(out, config.eos_token_id)
    marker.write_text(json.dumps(spec))
    return out


def _write_generation_config(out: Path, eos_token_id: int) -> None:
    (out / "generation_config.json").write_text(
        json.dumps({"eos_token_id": eos_token_id, "do_sample": True}, indent=2)
    )

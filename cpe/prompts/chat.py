"""The one place where a model's chat template turns messages into a prompt."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

Message = dict[str, str]


def apply_chat_template(
    tokenizer: Any, messages: Sequence[Message], add_generation_prompt: bool = True
) -> str:
    """Render ``messages`` with the tokenizer's chat template into a prompt string.

    With ``add_generation_prompt`` the assistant header is appended so that the model
    continues with its reply. Raises ``ValueError`` when the tokenizer has no template.
    """
    if not getattr(tokenizer, "chat_template", None):
        name = getattr(tokenizer, "name_or_path", None) or type(tokenizer).__name__
        raise ValueError(
            f"tokenizer {name!r} has no chat template; use an instruction-tuned model's "
            "tokenizer or set tokenizer.chat_template"
        )
    text = tokenizer.apply_chat_template(
        list(messages), tokenize=False, add_generation_prompt=add_generation_prompt
    )
    if not isinstance(text, str):  # defensive: some versions wrap the result
        raise TypeError(f"apply_chat_template returned {type(text).__name__}, expected str")
    return text


def to_token_ids(
    tokenizer: Any, messages: Sequence[Message], add_generation_prompt: bool = True
) -> list[int]:
    """Token ids of the rendered prompt.

    The rendered string already contains the template's special tokens (BOS, turn
    markers), so it is tokenized with ``add_special_tokens=False`` to avoid doubling them.
    """
    text = apply_chat_template(tokenizer, messages, add_generation_prompt=add_generation_prompt)
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])

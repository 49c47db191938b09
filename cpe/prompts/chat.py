"""The one place where a model's chat template turns messages into a prompt."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

Message = dict[str, str]

# Stands in for a special token's text inside a message while the template renders;
# private-use characters, so the template and the tokenizer leave it alone.
_STAND_IN = "\ue000cpe:{}\ue001"
_STAND_IN_SPLIT = re.compile("\ue000cpe:([0-9]+)\ue001")


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
    Special-token text inside a message (a question or a model's answer that contains
    ``<|im_end|>``) is tokenized as plain text: only the template opens and closes turns.
    """
    # The stand-in's own first character is replaced too, so a stand-in found in the
    # rendered prompt is always one of ours.
    texts = [*_special_texts(tokenizer), _STAND_IN[0]]
    pattern = re.compile("|".join(re.escape(text) for text in texts))
    found: list[str] = []
    safe = [_with_stand_ins(message, pattern, found) for message in messages]
    text = apply_chat_template(tokenizer, safe, add_generation_prompt=add_generation_prompt)
    if not found:
        return _encode(tokenizer, text)
    ids: list[int] = []
    for position, piece in enumerate(_STAND_IN_SPLIT.split(text)):
        if position % 2 == 0:
            ids += _encode(tokenizer, piece)
        else:
            ids += _encode_as_text(tokenizer, found[int(piece)])
    return ids


def _special_texts(tokenizer: Any) -> list[str]:
    """The text of every special token, longest first (so the longest one matches)."""
    added = getattr(tokenizer, "added_tokens_decoder", {}) or {}
    texts = {getattr(token, "content", str(token)) for token in added.values() if token.special}
    texts.update(getattr(tokenizer, "all_special_tokens", []) or [])
    return sorted((text for text in texts if text), key=len, reverse=True)


def _with_stand_ins(message: Message, pattern: re.Pattern[str], found: list[str]) -> Message:
    content = message.get("content")
    if not isinstance(content, str):
        return message

    def stand_in(match: re.Match[str]) -> str:
        found.append(match.group())
        return _STAND_IN.format(len(found) - 1)

    return {**message, "content": pattern.sub(stand_in, content)}


def _encode(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"]) if text else []


def _encode_as_text(tokenizer: Any, text: str) -> list[int]:
    """``text`` as ordinary characters even where it spells a special token."""
    return list(tokenizer(text, add_special_tokens=False, split_special_tokens=True)["input_ids"])

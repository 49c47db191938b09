from __future__ import annotations

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

from cpe.prompts import apply_chat_template, policy_messages, to_token_ids

SPECIALS = ["<unk>", "<s>", "<|im_start|>", "<|im_end|>"]
CHAT_TEMPLATE = (
    "<s>{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _tiny_tokenizer(chat_template: str | None = CHAT_TEMPLATE) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    corpus = [
        "system user assistant how can i sleep better after a night shift",
        "you are a helpful assistant answer the question",
    ]
    tok.train_from_iterator(corpus, trainers.WordLevelTrainer(special_tokens=SPECIALS))
    # like many real tokenizers, it would add a BOS token unless told not to
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", special_tokens=[("<s>", tok.token_to_id("<s>"))]
    )
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="<unk>",
        bos_token="<s>",
        additional_special_tokens=SPECIALS[2:],
        name_or_path="tiny-test-tokenizer",
    )
    if chat_template is not None:
        wrapped.chat_template = chat_template
    return wrapped


MESSAGES = [
    {"role": "system", "content": "you are a helpful assistant"},
    {"role": "user", "content": "how can i sleep better"},
]


def test_apply_chat_template_renders_with_generation_prompt():
    tokenizer = _tiny_tokenizer()
    text = apply_chat_template(tokenizer, MESSAGES)
    assert text == (
        "<s><|im_start|>system\nyou are a helpful assistant<|im_end|>\n"
        "<|im_start|>user\nhow can i sleep better<|im_end|>\n<|im_start|>assistant\n"
    )
    assert not apply_chat_template(tokenizer, MESSAGES, add_generation_prompt=False).endswith(
        "assistant\n"
    )


def test_to_token_ids_does_not_double_special_tokens():
    tokenizer = _tiny_tokenizer()
    ids = to_token_ids(tokenizer, MESSAGES)
    bos = tokenizer.convert_tokens_to_ids("<s>")
    im_start = tokenizer.convert_tokens_to_ids("<|im_start|>")
    assert ids.count(bos) == 1 and ids[0] == bos
    assert ids.count(im_start) == 3
    assert tokenizer.unk_token_id not in ids
    text = apply_chat_template(tokenizer, MESSAGES)
    assert ids == tokenizer.encode(text, add_special_tokens=False)
    assert tokenizer.encode(text)[:2] == [bos, bos]  # what add_special_tokens=True would do


def test_real_prompt_goes_through(record):
    tokenizer = _tiny_tokenizer()
    text = apply_chat_template(tokenizer, policy_messages(record))
    assert "How can I sleep better after a night shift?" in text
    assert isinstance(to_token_ids(tokenizer, policy_messages(record))[0], int)


def test_missing_chat_template_names_the_tokenizer():
    tokenizer = _tiny_tokenizer(chat_template=None)
    with pytest.raises(ValueError, match="tiny-test-tokenizer"):
        apply_chat_template(tokenizer, MESSAGES)

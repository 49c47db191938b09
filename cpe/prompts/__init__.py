"""Prompts: template sets, the renderers built on them, and the chat-template step.

``policy_messages`` / ``grm_messages`` / ``edit_messages`` / ``judge_messages`` turn a
:class:`~cpe.data.records.Record` into chat messages; :func:`apply_chat_template` and
:func:`to_token_ids` turn messages into a model prompt.
"""

from cpe.prompts.chat import apply_chat_template, to_token_ids
from cpe.prompts.render import (
    BUILTIN_ROOT,
    CRITIQUE_TAG,
    DEFAULT,
    DIMENSIONS,
    SCORE_MAX,
    SCORE_MIN,
    SCORES_TAG,
    SUFFIXES,
    TEMPLATE_NAMES,
    PromptSet,
    builtin_sets,
    choice_messages,
    edit_messages,
    format_persona,
    grm_messages,
    judge_messages,
    policy_messages,
    policy_user_content,
)

__all__ = [
    "BUILTIN_ROOT",
    "CRITIQUE_TAG",
    "DEFAULT",
    "DIMENSIONS",
    "SCORE_MAX",
    "SCORE_MIN",
    "SCORES_TAG",
    "SUFFIXES",
    "TEMPLATE_NAMES",
    "PromptSet",
    "apply_chat_template",
    "builtin_sets",
    "choice_messages",
    "edit_messages",
    "format_persona",
    "grm_messages",
    "judge_messages",
    "policy_messages",
    "policy_user_content",
    "to_token_ids",
]

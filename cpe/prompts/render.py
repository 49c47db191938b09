"""Prompt sets (a folder of Jinja2 templates) and the renderers that turn records into chats.

Every renderer returns a list of chat messages ``[{"role": ..., "content": ...}]``;
the model's chat template is applied elsewhere, in one place (:mod:`cpe.prompts.chat`).

Template variables available to every template: ``record``, ``persona`` (the raw dict),
``profile`` (:func:`format_persona` of it) and ``question``. Per template:

- ``policy_user``: ``suffix`` (rendered brief/detailed instruction, or ``""``)
- ``grm``: ``answer``
- ``edit``: ``original_user_turn`` (the policy user message, verbatim),
  ``original_answer``, ``critique``
- ``judge``: ``answer_a``, ``answer_b``
- ``choice``: ``question``, ``options`` (a multiple-choice question after a conversation;
  it gets only these two variables)

Message contents are stripped of leading and trailing whitespace.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import jinja2

from cpe.prompts.persona import format_persona

BUILTIN_ROOT = Path(__file__).parent / "templates"

#: Template role -> default file name inside a prompt-set folder.
TEMPLATE_FILES: dict[str, str] = {
    "policy_system": "policy_system.jinja",
    "policy_user": "policy_user.jinja",
    "grm": "grm.jinja",
    "edit": "edit.jinja",
    "judge": "judge.jinja",
    "choice": "choice.jinja",
    "brief_suffix": "brief_suffix.jinja",
    "detailed_suffix": "detailed_suffix.jinja",
}
TEMPLATE_NAMES = tuple(TEMPLATE_FILES)

#: Suffix variants for the controllability probe: ``suffix=<key>`` -> template role.
SUFFIXES = {"brief": "brief_suffix", "detailed": "detailed_suffix"}

#: The GRM output format the default rubric asks for (shared with the GRM parser).
DIMENSIONS = ("Helpfulness", "Personalization", "Naturalness")
SCORE_MIN, SCORE_MAX = -5, 5
CRITIQUE_TAG, SCORES_TAG = "critique", "scores"

Message = dict[str, str]


def builtin_sets() -> list[str]:
    """Names of the prompt sets that ship with the package."""
    return sorted(
        p.name for p in BUILTIN_ROOT.iterdir() if p.is_dir() and not p.name.startswith("_")
    )


def _available(folder: Path) -> str:
    names = sorted(p.name for p in folder.glob("*.jinja")) if folder.is_dir() else []
    return ", ".join(names) or "(none)"


@dataclass(frozen=True)
class PromptSet:
    """A template folder plus the file used for each template role.

    A role's value is a file name inside ``template_dir`` or a path to a file anywhere
    (absolute, or relative to the working directory when it contains a separator).
    Overrides given to :meth:`load` / :meth:`with_overrides` are always file paths.
    """

    template_dir: Path
    policy_system: str = TEMPLATE_FILES["policy_system"]
    policy_user: str = TEMPLATE_FILES["policy_user"]
    grm: str = TEMPLATE_FILES["grm"]
    edit: str = TEMPLATE_FILES["edit"]
    judge: str = TEMPLATE_FILES["judge"]
    choice: str = TEMPLATE_FILES["choice"]
    brief_suffix: str = TEMPLATE_FILES["brief_suffix"]
    detailed_suffix: str = TEMPLATE_FILES["detailed_suffix"]

    @classmethod
    def load(cls, name_or_dir: str | Path = "default", **overrides: str | Path | None) -> PromptSet:
        """Load a built-in set by name or a folder by path; ``overrides`` map roles to files.

        ``PromptSet.load("default", grm="/path/my_rubric.jinja")`` keeps every default
        template except the rubric. Override values are file paths (relative ones are
        resolved against the working directory); ``None`` values are ignored. All files
        are checked to exist.
        """
        text = str(name_or_dir)
        if "/" not in text and "\\" not in text and (BUILTIN_ROOT / text).is_dir():
            folder = BUILTIN_ROOT / text
        else:
            folder = Path(text).expanduser()
            if not folder.is_dir():
                raise FileNotFoundError(
                    f"prompt set {text!r} is neither a built-in set ({', '.join(builtin_sets())}) "
                    f"nor an existing directory"
                )
        return cls(template_dir=folder.resolve()).with_overrides(**overrides)

    @classmethod
    def from_config(cls, cfg: Any) -> PromptSet:
        """Build from ``None``, a name or folder, a PromptSet, or a config node
        ``{set: default|<dir>, overrides: {<role>: <file>}}`` (``cpe.config.PromptsConfig``,
        as a mapping or a dataclass); roles may also sit beside ``set``."""
        if cfg is None:
            return DEFAULT
        if isinstance(cfg, PromptSet):
            return cfg
        if isinstance(cfg, str | Path):
            return cls.load(cfg)
        options = dict(cfg) if isinstance(cfg, Mapping) else dict(vars(cfg))
        name = options.pop("set", None) or "default"
        overrides = options.pop("overrides", None) or {}
        options.update(overrides if isinstance(overrides, Mapping) else vars(overrides))
        return cls.load(name, **options)

    def with_overrides(self, **overrides: str | Path | None) -> PromptSet:
        """A copy with some roles pointing at other files (paths resolved against the cwd)."""
        unknown = sorted(set(overrides) - set(TEMPLATE_NAMES))
        if unknown:
            raise KeyError(
                f"unknown template role(s) {', '.join(unknown)}; "
                f"known roles: {', '.join(TEMPLATE_NAMES)}"
            )
        chosen = {
            k: str(Path(v).expanduser().resolve()) for k, v in overrides.items() if v is not None
        }
        out = replace(self, **chosen)
        out.validate()
        return out

    def path(self, role: str) -> Path:
        """The file that renders ``role``."""
        if role not in TEMPLATE_FILES:
            raise KeyError(
                f"unknown template role {role!r}; known roles: {', '.join(TEMPLATE_NAMES)}"
            )
        value = getattr(self, role)
        candidate = Path(value)
        if candidate.is_absolute() or len(candidate.parts) > 1:
            return candidate.resolve()
        return self.template_dir / value

    def validate(self) -> None:
        """Raise ``FileNotFoundError`` naming the first missing template file."""
        for role in TEMPLATE_NAMES:
            path = self.path(role)
            if not path.is_file():
                message = (
                    f"template {role!r}: file {path} not found; "
                    f"available in {path.parent}: {_available(path.parent)}"
                )
                if path.parent != self.template_dir:
                    message += f"; in {self.template_dir}: {_available(self.template_dir)}"
                raise FileNotFoundError(message)

    def render(self, role: str, **context: Any) -> str:
        """Render one template role with ``context``; the result is stripped."""
        return _environment(self).get_template(role).render(**context).strip()

    def describe(self) -> dict[str, str]:
        """Role -> resolved file, for logging the exact prompts a run used."""
        return {f.name: str(self.path(f.name)) for f in fields(self) if f.name in TEMPLATE_FILES}


@functools.lru_cache(maxsize=32)
def _environment(prompts: PromptSet) -> jinja2.Environment:
    def load(role: str):
        if role in TEMPLATE_FILES:
            path = prompts.path(role)
        else:  # {% include "x.jinja" %} from inside a template
            path = prompts.template_dir / role
        if not path.is_file():
            return None
        mtime = path.stat().st_mtime
        return path.read_text(encoding="utf-8"), str(path), lambda: path.stat().st_mtime == mtime

    return jinja2.Environment(
        loader=jinja2.FunctionLoader(load),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )


DEFAULT = PromptSet(template_dir=BUILTIN_ROOT / "default")


# --------------------------------------------------------------------------- renderers


def _base_context(record: Any) -> dict[str, Any]:
    return {
        "record": record,
        "persona": record.persona,
        "profile": format_persona(record.persona),
        "question": record.question.strip(),
    }


def policy_user_content(
    record: Any, prompts: PromptSet = DEFAULT, suffix: str | None = None
) -> str:
    """The policy's user turn (profile + question [+ brief/detailed instruction])."""
    context = _base_context(record)
    suffix_text = ""
    if suffix is not None:
        if suffix not in SUFFIXES:
            raise ValueError(f"unknown suffix {suffix!r}; choose one of {', '.join(SUFFIXES)}")
        suffix_text = prompts.render(SUFFIXES[suffix], **context, suffix="")
    return prompts.render("policy_user", **context, suffix=suffix_text)


def policy_messages(
    record: Any, prompts: PromptSet = DEFAULT, suffix: str | None = None
) -> list[Message]:
    """System + user chat for the policy. ``suffix``: ``None``, ``"brief"`` or ``"detailed"``."""
    messages = []
    system = prompts.render("policy_system", **_base_context(record))
    if system:
        messages.append({"role": "system", "content": system})
    messages.append({"role": "user", "content": policy_user_content(record, prompts, suffix)})
    return messages


def grm_messages(record: Any, answer: str, prompts: PromptSet = DEFAULT) -> list[Message]:
    """Single user turn asking the GRM for ``<critique>`` and ``<scores>`` of ``answer``."""
    content = prompts.render("grm", **_base_context(record), answer=answer.strip())
    return [{"role": "user", "content": content}]


def edit_messages(
    record: Any, original_answer: str, critique: str, prompts: PromptSet = DEFAULT
) -> list[Message]:
    """New single-turn chat: original user turn, original answer, critique -> one better answer."""
    content = prompts.render(
        "edit",
        **_base_context(record),
        original_user_turn=policy_user_content(record, prompts),
        original_answer=original_answer.strip(),
        critique=critique.strip(),
    )
    return [{"role": "user", "content": content}]


def judge_messages(
    record: Any, answer_a: str, answer_b: str, prompts: PromptSet = DEFAULT
) -> list[Message]:
    """Pairwise judge; the expected reply is the single token ``A`` or ``B``."""
    content = prompts.render(
        "judge", **_base_context(record), answer_a=answer_a.strip(), answer_b=answer_b.strip()
    )
    return [{"role": "user", "content": content}]


def choice_messages(
    conversation: list[Message], question: str, options: list[str], prompts: PromptSet = DEFAULT
) -> list[Message]:
    """A multiple-choice question as the next user turn of ``conversation`` (PersonaMem);
    the expected reply ends with the chosen option's letter, e.g. ``(b)``."""
    content = prompts.render("choice", question=question.strip(), options=options)
    return [*conversation, {"role": "user", "content": content}]

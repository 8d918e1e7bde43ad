"""Which token a chat template closes an assistant turn with, found by rendering it as transformers does.

Rendered by transformers' own ``render_jinja_template`` (what ``apply_chat_template``
calls), so the gate judges the template exactly as inference will run it. Importing
it loads transformers' utilities but not torch (measured: about 0.9 s, no torch in
sys.modules); it happens only when a merged model's files are checked, and a
merged model means the training stack (``pubctl[train]``) is installed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline.errors import UsageError

# Stands in for an answer's text: what the template writes right after it closes the assistant turn.
ANSWER = "pubctl-answer-7f3a"


@dataclass(frozen=True)
class TurnEnd:
    """What rendering a user/assistant exchange showed."""

    token: str | None = None
    """The token written right after the answer; None when none of the added tokens follows it."""
    error: str | None = None
    """Why the template cannot render the exchange ("TemplateError: ..."), or None."""


def default_template(template: Any) -> str | None:
    """The default template from a JSON config's ``chat_template`` value (a string or named templates)."""
    if isinstance(template, list):  # named templates: [{"name": "default", "template": "..."}, ...]
        template = next(
            (t.get("template") for t in template if isinstance(t, dict) and t.get("name") == "default"), None
        )
    return template if isinstance(template, str) and template.strip() else None


def token_text(token: Any) -> str | None:
    """A special token as tokenizer_config.json writes it: a string or an AddedToken dict."""
    if isinstance(token, dict):
        token = token.get("content")
    return token if isinstance(token, str) else None


def closing_tokens(tokenizer: dict[str, Any], tokenizer_config: dict[str, Any]) -> list[str]:
    """Tokens a template can close a turn with: tokenizer.json's added tokens and the configured eos."""
    tokens = [t.get("content") for t in tokenizer.get("added_tokens", []) if isinstance(t, dict)]
    eos = token_text(tokenizer_config.get("eos_token"))
    return [t for t in [*tokens, eos] if isinstance(t, str)]


def token_id(tokenizer: dict[str, Any], token: str) -> int | None:
    """The id tokenizer.json gives ``token``: an added token's, else the vocabulary's."""
    for added in tokenizer.get("added_tokens", []):
        if added.get("content") == token:
            return added.get("id")
    vocab = (tokenizer.get("model") or {}).get("vocab")
    return vocab.get(token) if isinstance(vocab, dict) else None


def turn_end(template: str, tokenizer_config: dict[str, Any], tokens: list[str]) -> TurnEnd:
    """The token the chat template writes right after an assistant answer, before the next turn.

    First with the answer last, as in training data (gpt-oss closes a final answer with
    <|return|>, an earlier one with <|end|>); when nothing follows it there, with a user
    turn after it (GLM closes a turn only by opening the next, with <|user|>). No token
    when the answer is not in the text or no added token follows it.
    """
    import jinja2

    try:
        from transformers.utils.chat_template_utils import render_jinja_template
    except ImportError as exc:
        raise UsageError(
            f"checking the merged model's chat template needs transformers ({exc}); "
            "install the training stack with: pip install 'pubctl[train]'."
        ) from None

    # apply_chat_template passes the special tokens as template variables (bos_token, eos_token, ...).
    special = {key: token_text(value) for key, value in tokenizer_config.items() if key.endswith("_token")}
    variables = {key: value for key, value in special.items() if value is not None}
    answer = [{"role": "user", "content": "Hello."}, {"role": "assistant", "content": ANSWER}]
    for messages in (answer, [*answer, {"role": "user", "content": "Thanks."}]):
        try:
            rendered, _ = render_jinja_template(
                conversations=[messages], chat_template=template, add_generation_prompt=False, **variables
            )
        except (jinja2.TemplateError, TypeError) as exc:  # TypeError: e.g. a template adding None to a string
            return TurnEnd(error=f"{type(exc).__name__}: {exc}")
        text = rendered[0]
        if ANSWER not in text:
            return TurnEnd()
        rest = text.split(ANSWER, 1)[1].lstrip(" \n")
        token = max((token for token in tokens if token and rest.startswith(token)), key=len, default=None)
        if token is not None:
            return TurnEnd(token)
    return TurnEnd()

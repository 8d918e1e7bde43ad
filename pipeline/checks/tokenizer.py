"""Tokenizer gates: the merged model can chat, and generation stops where the chat template ends a turn."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.checks.chat_template import token_id, token_text
from pipeline.checks.registry import check

if TYPE_CHECKING:
    from pipeline.checks.context import CheckContext
    from pipeline.checks.report import Outcome


@check("chat_template", "the tokenizer ships a chat template that renders a user/assistant conversation")
def chat_template(ctx: CheckContext, out: Outcome) -> None:
    if ctx.without_model(out):
        return
    if ctx.chat_template is None:
        out.fail(f"no chat template in {ctx.model_dir}", "tokenizer_config.json chat_template or chat_template.jinja")
    elif ctx.turn_end.error is not None:
        out.fail(
            f"a chat template that fails on a user/assistant exchange ({ctx.turn_end.error})",
            "a template apply_chat_template can render",
        )


@check(
    "generation_eos",
    "generation_config.json stops at the tokenizer's eos and at the token the chat template ends "
    "an assistant turn with",
)
def generation_eos(ctx: CheckContext, out: Outcome) -> None:
    if ctx.without_model(out):
        return
    eos_token = token_text(ctx.model_json("tokenizer_config.json").get("eos_token"))
    eos_id = token_id(ctx.model_json("tokenizer.json"), eos_token) if eos_token is not None else None
    gen_eos = ctx.model_json("generation_config.json").get("eos_token_id")
    gen_ids = set(gen_eos if isinstance(gen_eos, list) else [gen_eos] if gen_eos is not None else [])
    end_of_turn = ctx.turn_end.token
    turn_id = token_id(ctx.model_json("tokenizer.json"), end_of_turn) if end_of_turn is not None else None
    if not (ctx.model_dir / "generation_config.json").is_file():
        out.fail("no generation_config.json", "a generation config whose eos stops a chat turn")
    elif eos_id is None:
        out.fail(f"tokenizer eos_token {eos_token!r} with no id", "an eos token in the vocabulary")
    elif eos_id not in gen_ids:
        out.fail(f"generation eos_token_id {gen_eos!r}", f"to include the tokenizer's eos {eos_token!r} (id {eos_id})")
    elif turn_id is not None and turn_id not in gen_ids:
        # Llama 3's first release: eos <|end_of_text|> in the generation config, turns closed by <|eot_id|>,
        # so generate() ran past the end of the answer.
        out.fail(
            f"generation eos_token_id {gen_eos!r}",
            f"to include the chat template's end-of-turn token {end_of_turn!r} (id {turn_id})",
        )
